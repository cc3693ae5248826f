"""Print the README's configuration table from the settings models (the one source of truth).

Run: .venv/bin/python scripts/settings_table.py"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic_settings import BaseSettings

from skydriver.auth import AuthSettings
from skydriver.launch.k8s_settings import K8sLauncherSettings
from skydriver.settings import Settings
from skydriver_client._cli import ClientSettings
from skyscan_contract.settings import (
    CondorWorkerSettings,
    DummySettings,
    K8sWorkerSettings,
    ManagerSettings,
    ServerSettings,
    WorkerSettings,
)

PROGRAMS: list[tuple[str, type[BaseSettings]]] = [
    ("SkyDriver (`skydriver serve`)", Settings),
    ("SkyDriver authentication", AuthSettings),
    ("SkyDriver's k8s launcher (`SKYDRIVER_LAUNCHER=k8s`)", K8sLauncherSettings),
    ("Scanner server (`skymap-scanner server`)", ServerSettings),
    ("Worker (`skymap-scanner worker`)", WorkerSettings),
    ("`dummy` / `crash_dummy` (set on the server; handed to workers)", DummySettings),
    ("Client manager (`client-manager`)", ManagerSettings),
    ("Client manager, `k8s` worker backend", K8sWorkerSettings),
    ("Client manager, `condor` worker backend", CondorWorkerSettings),
    ("Client library and CLI (`skydriver scan ...`)", ClientSettings),
]


def env_names(model: type[BaseSettings], name: str) -> list[str]:
    field = model.model_fields[name]
    alias = field.validation_alias
    if alias is not None and hasattr(alias, "choices"):
        return [str(c) for c in alias.choices if str(c).isupper()]
    prefix = model.model_config.get("env_prefix", "")
    return [f"{prefix}{name}".upper()]


def table() -> str:
    lines: list[str] = []
    for title, model in PROGRAMS:
        lines += [f"**{title}**", "", "| variable | default | meaning |", "|---|---|---|"]
        for name, field in model.model_fields.items():
            default = field.get_default(call_default_factory=True)
            if field.is_required():
                shown = "(required)"
            elif hasattr(default, "get_secret_value"):
                shown = '"" (secret)'
            elif isinstance(
                default, Path
            ):  # the reader's home, not the machine that made the table
                home = Path.home()
                shown = (
                    f"~/{default.relative_to(home)}"
                    if default.is_relative_to(home)
                    else str(default)
                )
            else:
                shown = json.dumps(default, default=str)
            names = " / ".join(f"`{n}`" for n in env_names(model, name))
            lines.append(f"| {names} | `{shown}` | {field.description or ''} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
