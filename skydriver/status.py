"""Scan state, computed on each request from stored facts and never stored (the original's v2 states:
`skyscan_contract.documents.ScanPhase`).

Our launcher and client manager stand where EWMS stands: the backlog is "cleared" once the launcher has
started the scan instance; the instance is "deactivated" when the scan was deleted (ABORTED) or when the
instance ended (FINISHED after a clean exit, ABORTED otherwise); the workforce is the client manager's report."""

from __future__ import annotations

from typing import Any

from skyscan_contract.documents import (
    NOT_YET_REQUESTED,
    Deactivation,
    InstanceState,
    Manifest,
    ScanPhase,
    scan_state_text,
)


def deactivated(manifest: Manifest) -> Deactivation | None:
    if manifest.is_deleted:
        return Deactivation.ABORTED
    instance = manifest.instance
    if instance is None:
        return None
    if instance.state is InstanceState.ENDED:
        return Deactivation.FINISHED if instance.exit_code == 0 else Deactivation.ABORTED
    if instance.state is InstanceState.FAILED:
        return Deactivation.ABORTED
    return None


def scan_phase(manifest: Manifest, has_final_result: bool) -> ScanPhase:
    if has_final_result:
        return ScanPhase.HAS_FINAL_RESULT
    if manifest.ewms_workflow_id in (None, NOT_YET_REQUESTED):
        return ScanPhase.PRESTARTUP
    progress = manifest.progress
    if progress is None:
        return ScanPhase.WAITING_ON_SCANNER_SERVER_STARTUP
    if not progress.processing_stats.get("rate"):
        return ScanPhase.WAITING_ON_FIRST_PIXEL_RECO
    return ScanPhase.PARTIAL_RESULT_GENERATED


def scan_state(manifest: Manifest, has_final_result: bool) -> str:
    return scan_state_text(scan_phase(manifest, has_final_result), deactivated(manifest))


def workforce(manifest: Manifest) -> dict[str, Any]:
    """The `ewms_workforce` object: {workflow_id, statuses, n_running, top_errors}."""
    report = manifest.workforce
    return {
        "workflow_id": manifest.ewms_workflow_id,
        "statuses": {report.backend: report.statuses} if report and report.backend else {},
        "n_running": report.n_running if report else 0,
        "top_errors": report.top_errors if report else {},
    }


def status_doc(manifest: Manifest, has_final_result: bool, logs_url: str | None) -> dict[str, Any]:
    """The `/status` answer (the JSON edge)."""
    state = scan_state(manifest, has_final_result)
    stopped = deactivated(manifest)
    instance = manifest.instance
    return {
        "scan_state": state,
        "is_deleted": manifest.is_deleted,
        "ewms_deactivated": None if stopped is None else stopped.value,
        "scan_complete": state == ScanPhase.HAS_FINAL_RESULT,
        "scanner_server_logs": {"url": logs_url},
        # our addition: why a scan's instance could not start or ended badly
        "instance": (
            {}
            if instance is None
            else instance.model_dump(
                mode="json", include={"state", "reason", "exit_code"}, exclude_none=True
            )
        ),
        "ewms_workforce": workforce(manifest),
    }
