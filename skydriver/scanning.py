"""Turning a validated `POST /scan` body into the stored request: shared by `POST /scan` and rescans.

The checks here use the contract (reconstruction names, the nside progression) and the scanner's event
reader; no reconstruction or physics code is imported into the REST process."""

from __future__ import annotations

from typing import Any

from skymap_scanner.events import InvalidEvent as EventError
from skymap_scanner.events import check_event_for_reco
from skyscan_contract.documents import ClusterRequest, ScanRequestDoc
from skyscan_contract.errors import InvalidEvent, InvalidRequest
from skyscan_contract.nsides import InvalidNsides, NSideProgression
from skyscan_contract.recos import RECOS, reco_info

from .models.api import ScanPostBody
from .settings import Settings
from .versions import resolve_docker_tag


def scanner_server_args(request: ScanRequestDoc) -> str:
    """The original's `scanner_server_args` string (informational; kept for compatibility)."""
    kind = "--real-event" if request.is_real_event else "--simulated-event"
    return (
        f"python -m skymap_scanner.server --reco-algo {request.reco_algo} --cache-dir /common-space "
        f"--client-startup-json /common-space/startup.json --nsides {request.nsides} {kind} "
        f"--predictive-scanning-threshold {request.predictive_scanning_threshold}"
    )


def check_event(event: dict[str, Any], reco_algo: str) -> None:
    """The event must be readable for the requested algorithm (pulses for physics recos)."""
    try:
        check_event_for_reco(event, reco_algo, needs_pulses=reco_info(reco_algo).needs_pulses)
    except EventError as e:
        raise InvalidEvent(f"event_i3live_json: {e}") from e


def normalize_request(body: ScanPostBody, settings: Settings, scan_id: str) -> ScanRequestDoc:
    """Validate what the models cannot, and build the stored ScanRequest document."""
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
    return ScanRequestDoc(
        scan_id=scan_id,
        docker_tag=docker_tag,
        scanner_server_memory_bytes=body.scanner_server_memory_bytes,
        reco_algo=body.reco_algo,
        nsides=nsides,
        real_or_simulated_event=body.real_or_simulated_event,
        predictive_scanning_threshold=body.predictive_scanning_threshold,
        classifiers=body.classifiers,
        request_clusters=[ClusterRequest(cluster=name, n_workers=n) for name, n in body.clusters],
        worker_memory_bytes=body.worker_memory_bytes,
        worker_disk_bytes=body.worker_disk_bytes,
        max_pixel_reco_time=body.max_pixel_reco_time,
        priority=body.priority,
        debug_mode=debug_mode,
        scanner_server_env_from_user=body.scanner_server_env_from_user,
    )
