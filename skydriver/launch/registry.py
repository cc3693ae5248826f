"""Launchers by short name (`SKYDRIVER_LAUNCHER`), and the per-scan factory the runners use. The k8s
launcher (and the kubernetes client it needs) is imported only when a deployment chooses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..settings import Settings
from .base import Launcher
from .local import LocalLauncher

LAUNCHER_NAMES = ("local", "k8s")


def builtin_launcher(name: str) -> type[Launcher] | None:
    """The launcher class of a short name, or None for an unknown one."""
    if name == "local":
        return LocalLauncher
    if name == "k8s":
        from .k8s import K8sLauncher

        return K8sLauncher
    return None


def launcher_factory(settings: Settings, launcher_cls: type[Launcher]) -> Callable[[str], Launcher]:
    """One launcher object per scan. The k8s launchers share one settings object and one API client,
    made at the first launch (so SkyDriver starts even where no cluster config is present)."""
    if launcher_cls.name != "k8s":
        return lambda scan_id: launcher_cls(settings, scan_id)
    from .k8s import K8sLauncher, load_apis
    from .k8s_settings import K8sLauncherSettings

    assert issubclass(launcher_cls, K8sLauncher)
    cfg = K8sLauncherSettings()
    shared: dict[str, Any] = {}

    def make_k8s(scan_id: str) -> Launcher:
        if "apis" not in shared:
            shared["apis"] = load_apis()
        batch, core = shared["apis"]
        return launcher_cls(settings, scan_id, api=batch, core_api=core, k8s_settings=cfg)

    return make_k8s
