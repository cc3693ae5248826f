"""Turning a validated request into a queued scan: shared by `POST /scan` and rescans."""

from __future__ import annotations

from typing import Any

from skymap_scanner.events import I3LiveEvent, event_metadata, parse_event
from skymap_scanner.events import InvalidEvent as EventError
from skymap_scanner.nsides import InvalidNsides, NSideProgression
from skymap_scanner.recos import RECOS, get_reco

from .errors import InvalidEvent, InvalidRequest
from .models.api import ScanPostBody
from .settings import Settings
from .versions import resolve_docker_tag


def scanner_server_args(request: dict[str, Any]) -> str:
    """The original's `scanner_server_args` string (informational; kept for compatibility)."""
    nsides = " ".join(f"{n}:{e}" for n, e in request["nsides"].items())
    kind = (
        "--real-event"
        if str(request["real_or_simulated_event"]).startswith("real")
        else "--simulated-event"
    )
    return (
        f"python -m skymap_scanner.server --reco-algo {request['reco_algo']} --cache-dir /common-space "
        f"--client-startup-json /common-space/startup.json --nsides {nsides} {kind} "
        f"--predictive-scanning-threshold {request['predictive_scanning_threshold']}"
    )


def check_event(event: dict[str, Any], reco_algo: str) -> None:
    """The event must be readable for the requested algorithm (pulses for physics recos)."""
    try:
        if get_reco(reco_algo).needs_pulses:
            if isinstance(parse_event(event), I3LiveEvent):
                raise InvalidEvent(
                    f"reco_algo {reco_algo!r} needs a pulse-event/1 event: an i3live event's pulses are "
                    "IceTray binaries that cannot be read here; use dummy/crash_dummy or send a "
                    "pulse-event/1 event (see the event format in the README)"
                )
        else:
            event_metadata(event)
    except EventError as e:
        raise InvalidEvent(f"event_i3live_json: {e}") from e


def normalize_request(body: ScanPostBody, settings: Settings) -> dict[str, Any]:
    """Validate what the models cannot, and build the stored ScanRequest document (without ids)."""
    if body.reco_algo not in RECOS:
        raise InvalidRequest(
            f"'reco_algo': unknown algorithm {body.reco_algo!r} (available: {', '.join(sorted(RECOS))})"
        )
    try:
        nsides = NSideProgression.parse(body.nsides)
    except InvalidNsides as e:
        raise InvalidRequest(str(e)) from e
    if not 0.1 < body.predictive_scanning_threshold <= 1.0:
        raise InvalidRequest(
            "'predictive_scanning_threshold': must be in (0.1, 1.0], got "
            f"{body.predictive_scanning_threshold}"
        )
    debug_mode = [body.debug_mode] if isinstance(body.debug_mode, str) else list(body.debug_mode)
    for name, n in body.clusters:
        if name not in settings.clusters:
            raise InvalidRequest(
                f"requested unknown cluster: {name} (available: {', '.join(settings.clusters)})"
            )
        cap = settings.max_workers_debug_mode.get(name)
        if "client-logs" in debug_mode and cap is not None and n > cap:
            raise InvalidRequest(
                f"Too many workers: Cluster '{name}' can only have {cap} workers when "
                "'debug_mode' includes 'client-logs'"
            )
    docker_tag = resolve_docker_tag(
        body.docker_tag, settings.scanner_versions, settings.min_scanner_version
    )
    return {
        "rescan_ids": [],
        "docker_tag": docker_tag,
        "scanner_server_memory_bytes": body.scanner_server_memory_bytes,
        "reco_algo": body.reco_algo,
        "nsides": nsides.to_json_dict(),
        "real_or_simulated_event": body.real_or_simulated_event,
        "predictive_scanning_threshold": body.predictive_scanning_threshold,
        "classifiers": body.classifiers,
        "request_clusters": [[name, n] for name, n in body.clusters],
        "worker_memory_bytes": body.worker_memory_bytes,
        "worker_disk_bytes": body.worker_disk_bytes,
        "max_pixel_reco_time": body.max_pixel_reco_time,
        "priority": body.priority,
        "debug_mode": debug_mode,
        "scanner_server_env_from_user": body.scanner_server_env_from_user,
    }
