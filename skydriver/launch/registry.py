"""Launchers by short name (`SKYDRIVER_LAUNCHER`), and the per-scan factory the runners use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..settings import Settings
from .base import Launcher
from .k8s import K8sLauncher, load_batch_api
from .k8s_settings import K8sLauncherSettings
from .local import LocalLauncher

LAUNCHERS: dict[str, type[Launcher]] = {"local": LocalLauncher, "k8s": K8sLauncher}


def launcher_factory(settings: Settings, launcher_cls: type[Launcher]) -> Callable[[str], Launcher]:
    """One launcher object per scan. The k8s launchers share one settings object and one API client,
    made at the first launch (so SkyDriver starts even where no cluster config is present)."""
    if not issubclass(launcher_cls, K8sLauncher):
        return lambda scan_id: launcher_cls(settings, scan_id)
    cfg = K8sLauncherSettings()
    shared: dict[str, Any] = {}

    def make_k8s(scan_id: str) -> Launcher:
        if "api" not in shared:
            shared["api"] = load_batch_api()
        return K8sLauncher(settings, scan_id, api=shared["api"], k8s_settings=cfg)

    return make_k8s
