"""Turning a validated `POST /scan` body into the stored request: shared by `POST /scan` and rescans.

The checks here use the contract (reconstruction names, the nside progression) and the scanner's event
reader; no reconstruction or physics code is imported into the REST process."""

from __future__ import annotations

from typing import Any

from skymap_scanner.events import InvalidEvent as EventError
from skymap_scanner.events import check_event_for_reco
from skyscan_contract.documents import ClusterRequest, ScanRequestDoc
from skyscan_contract.errors import Forbidden, InvalidEvent, InvalidRequest
from skyscan_contract.messages import EventMetadataBody
from skyscan_contract.nsides import InvalidNsides, NSideProgression
from skyscan_contract.recos import RECOS, reco_info
from skyscan_contract.settings import check_user_settings

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


def check_event(event: dict[str, Any], reco_algo: str) -> EventMetadataBody:
    """The event must be readable for the requested algorithm (pulses for physics recos); returns its
    metadata, stored in the manifest at once so that `scans find` knows the scan before its scanner
    starts (the scanner later reports the same, from the same reader)."""
    try:
        meta = check_event_for_reco(
            event, reco_algo, needs_pulses=reco_info(reco_algo).needs_pulses
        )
    except EventError as e:
        raise InvalidEvent(f"event_i3live_json: {e}") from e
    return EventMetadataBody.model_validate(meta.to_dict())


#: scans with at least this priority are realtime alerts: they start at once, whatever the global cap
SCAN_MIN_PRIORITY_TO_START_ASAP = 100


def check_limits(body: ScanPostBody, settings: Settings, subject: str) -> None:
    """The deployment's maxima (workers, sizes) and who may use the realtime lane."""
    total = sum(n for _, n in body.clusters)
    if total > settings.max_workers_per_scan:
        raise InvalidRequest(
            f"Too many workers: {total} requested, a scan may have at most "
            f"{settings.max_workers_per_scan} (SKYDRIVER_MAX_WORKERS_PER_SCAN)"
        )
    per_cluster: dict[str, int] = {}
    for name, n in body.clusters:
        per_cluster[name] = per_cluster.get(name, 0) + n
    for name, n in per_cluster.items():
        cap = settings.max_workers_per_cluster.get(name)
        if cap is not None and n > cap:
            raise InvalidRequest(
                f"Too many workers: Cluster '{name}' can have at most {cap} workers per scan"
            )
    for field, value, cap in (
        (
            "scanner_server_memory",
            body.scanner_server_memory_bytes,
            settings.max_scanner_server_memory_bytes,
        ),
        ("worker_memory", body.worker_memory_bytes, settings.max_worker_memory_bytes),
        ("worker_disk", body.worker_disk_bytes, settings.max_worker_disk_bytes),
    ):
        if value > cap:
            raise InvalidRequest(f"'{field}': {value} bytes is more than the maximum, {cap}")
    if body.priority >= SCAN_MIN_PRIORITY_TO_START_ASAP and subject not in settings.realtime_users:
        raise Forbidden(
            f"authorization failed: priority >= {SCAN_MIN_PRIORITY_TO_START_ASAP} is the realtime "
            "lane, for the users this deployment names (SKYDRIVER_REALTIME_USERS)"
        )


def normalize_request(
    body: ScanPostBody, settings: Settings, scan_id: str, subject: str
) -> ScanRequestDoc:
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
    try:
        check_user_settings(body.scanner_server_env_from_user)
    except ValueError as e:
        raise InvalidRequest(f"'scanner_server_env': {e}") from None
    check_limits(body, settings, subject)
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
