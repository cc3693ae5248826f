"""The startup data every worker of a scan reads once: the event, the algorithm and its settings.

Kept free of the server's heavier imports (healpy) so that a local scan can start its workers while the
server is still importing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from skyscan_contract.recos import reco_info

from .events import EventMetadata
from .events import check_event_for_reco as _check_event
from .recos import Reconstruction, StartupData, get_reco


def check_event_for_reco(event: dict[str, Any], reco_algo: str) -> EventMetadata:
    """Validate the event for the algorithm (physics recos need a pulse event); return its metadata."""
    return _check_event(event, reco_algo, needs_pulses=reco_info(reco_algo).needs_pulses)


def realtime_format_version(event: dict[str, Any]) -> str:
    value = event.get("value")
    return str(value.get("version", "")) if isinstance(value, dict) else ""


def make_startup_data(
    scan_id: str,
    reco_algo: str,
    event: dict[str, Any],
    reco_cls: type[Reconstruction] | None = None,
) -> StartupData:
    """The startup data of a scan (`reco_cls`: the algorithm's class, if the caller resolved it)."""
    reco_cls = reco_cls or get_reco(reco_algo)
    return StartupData(
        scan_id=scan_id,
        reco_algo=reco_algo,
        realtime_format_version=realtime_format_version(event),
        event=event,
        fallback_seed=reco_cls.fallback_seed(event),
        reco_config=reco_cls.config_from_env(),
    )


def write_startup_data(startup: StartupData, path: Path) -> None:
    """Write atomically (workers may be polling for the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(startup.model_dump_json())
    tmp.replace(path)
