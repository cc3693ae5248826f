"""The startup data every worker of a scan reads once: the event, the algorithm and its settings.

Kept free of the server's heavier imports (healpy) so that a local scan can start its workers while the
server is still importing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .events import EventMetadata, I3LiveEvent, InvalidEvent, event_metadata, parse_event
from .recos import StartupData, get_reco


def check_event_for_reco(event: dict[str, Any], reco_algo: str) -> EventMetadata:
    """Validate the event for the algorithm (physics recos need a pulse event); return its metadata."""
    reco_cls = get_reco(reco_algo)
    if reco_cls.needs_pulses and isinstance(parse_event(event), I3LiveEvent):
        raise InvalidEvent(
            "event",
            f"reco_algo {reco_algo!r} needs a pulse-event/1 event: an i3live event's pulses are "
            "IceTray binaries that cannot be read here (use dummy/crash_dummy, or convert the event)",
        )
    return event_metadata(event)


def realtime_format_version(event: dict[str, Any]) -> str:
    value = event.get("value")
    return str(value.get("version", "")) if isinstance(value, dict) else ""


def make_startup_data(scan_id: str, reco_algo: str, event: dict[str, Any]) -> StartupData:
    reco_cls = get_reco(reco_algo)
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
