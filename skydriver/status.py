"""Scan state, computed on each request from stored facts and never stored (reference §3.6).

Our launcher and client manager stand where EWMS stands: the backlog is "cleared" once the launcher has
started the scan instance; the instance is "deactivated" when the scan was deleted (ABORTED) or when the
instance ended (FINISHED after a clean exit, ABORTED otherwise); the workforce is the client manager's report."""

from __future__ import annotations

from typing import Any

from .store.scans import NOT_YET_REQUESTED

Doc = dict[str, Any]


def deactivated(manifest: Doc) -> str | None:
    if manifest.get("is_deleted"):
        return "ABORTED"
    instance = manifest.get("instance") or {}
    if instance.get("state") == "ended":
        return "FINISHED" if instance.get("exit_code") == 0 else "ABORTED"
    if instance.get("state") == "failed":
        return "ABORTED"
    return None


def scan_state(manifest: Doc, has_final_result: bool) -> str:
    if has_final_result:
        return "SCAN_HAS_FINAL_RESULT"
    workflow = manifest.get("ewms_workflow_id")
    cleared = workflow not in (None, NOT_YET_REQUESTED)
    progress = manifest.get("progress")
    if not cleared:
        base = "PENDING__PRESTARTUP"
    elif not progress:
        base = "PENDING__WAITING_ON_SCANNER_SERVER_STARTUP"
    elif not (progress.get("processing_stats") or {}).get("rate"):
        base = "IN_PROGRESS__WAITING_ON_FIRST_PIXEL_RECO"
    else:
        base = "IN_PROGRESS__PARTIAL_RESULT_GENERATED"
    stopped = deactivated(manifest)
    if stopped:
        return f"{stopped}__{base.split('__', 1)[1]}"
    return base


def workforce(manifest: Doc) -> Doc:
    """The `ewms_workforce` object: {workflow_id, statuses, n_running, top_errors}."""
    report = manifest.get("workforce") or {}
    workflow = manifest.get("ewms_workflow_id")
    statuses = report.get("statuses") or {}
    return {
        "workflow_id": workflow,
        "statuses": {report["backend"]: statuses} if report.get("backend") else {},
        "n_running": int(report.get("n_running", 0)),
        "top_errors": report.get("top_errors") or {},
    }


def status_doc(manifest: Doc, has_final_result: bool, logs_url: str | None) -> Doc:
    state = scan_state(manifest, has_final_result)
    return {
        "scan_state": state,
        "is_deleted": bool(manifest.get("is_deleted")),
        "ewms_deactivated": deactivated(manifest),
        "scan_complete": state == "SCAN_HAS_FINAL_RESULT",
        "scanner_server_logs": {"url": logs_url},
        # our addition: why a scan's instance could not start or ended badly
        "instance": {
            k: v
            for k, v in (manifest.get("instance") or {}).items()
            if k in ("state", "reason", "exit_code")
        },
        "ewms_workforce": workforce(manifest),
    }
