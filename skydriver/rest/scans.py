"""Routes of one scan: launch, read, delete, manifest, event, status."""

from __future__ import annotations

from typing import Any

from skymap_scanner.events import InvalidEvent as EventError
from skymap_scanner.events import event_metadata, parse_event
from skymap_scanner.nsides import InvalidNsides, NSideProgression
from skymap_scanner.recos import RECOS, get_reco

from ..errors import InvalidEvent, InvalidRequest, ScanNotFound
from ..ids import new_scan_id
from ..models.api import ManifestPatchBody, ScanPostBody
from ..status import status_doc
from .base import BaseHandler


def project(manifest: dict[str, Any], projection: Any) -> dict[str, Any]:
    if projection in (None, "", "*") or (
        isinstance(projection, list) and ("*" in projection or not projection)
    ):
        return manifest
    return {k: v for k, v in manifest.items() if k in projection}


def scanner_server_args(body: ScanPostBody, nsides: NSideProgression) -> str:
    return (
        f"python -m skymap_scanner.server --reco-algo {body.reco_algo} --cache-dir /common-space "
        f"--client-startup-json /common-space/startup.json --nsides {nsides} "
        f"{'--real-event' if body.is_real_event else '--simulated-event'} "
        f"--predictive-scanning-threshold {body.predictive_scanning_threshold}"
    )


def check_event(event: dict[str, Any], reco_algo: str) -> None:
    """The event must be readable for the requested algorithm (pulses for physics recos)."""
    try:
        if get_reco(reco_algo).needs_pulses:
            parsed = parse_event(event)
            if type(parsed).__name__ == "I3LiveEvent":
                raise InvalidEvent(
                    f"reco_algo {reco_algo!r} needs a pulse-event/1 event: an i3live event's pulses are "
                    "IceTray binaries that cannot be read here; use dummy/crash_dummy or send a pulse event"
                )
        else:
            event_metadata(event)
    except EventError as e:
        raise InvalidEvent(f"event_i3live_json: {e}") from e


class ScanLaunchHandler(BaseHandler):
    async def post(self) -> None:
        body = self.parse(ScanPostBody)
        if body.reco_algo not in RECOS:
            raise InvalidRequest(
                f"'reco_algo': unknown algorithm {body.reco_algo!r} (available: {', '.join(sorted(RECOS))})"
            )
        try:
            nsides = NSideProgression.parse(body.nsides)
        except InvalidNsides as e:
            raise InvalidRequest(str(e)) from e
        for name, _ in body.clusters:
            if name not in self.ctx.settings.clusters:
                raise InvalidRequest(
                    f"requested unknown cluster: {name} (available: {', '.join(self.ctx.settings.clusters)})"
                )
        event: dict[str, Any] | None = None
        if body.event_i3live_json:
            assert isinstance(body.event_i3live_json, dict)
            event = body.event_i3live_json
            check_event(event, body.reco_algo)
        elif body.i3_event_id:
            stored = await self.ctx.scans.get_event(body.i3_event_id)
            if stored is None:
                raise InvalidRequest("i3 event not found")
            check_event(stored, body.reco_algo)
        debug_mode = (
            [body.debug_mode] if isinstance(body.debug_mode, str) else list(body.debug_mode)
        )
        request_doc = {
            "rescan_ids": [],
            "docker_tag": body.docker_tag.removeprefix("v"),
            "scanner_server_memory_bytes": body.scanner_server_memory_bytes,
            "reco_algo": body.reco_algo,
            "nsides": nsides.to_json_dict(),
            "real_or_simulated_event": body.real_or_simulated_event,
            "predictive_scanning_threshold": body.predictive_scanning_threshold,
            "classifiers": body.classifiers,
            "request_clusters": [list(c) for c in body.clusters],
            "worker_memory_bytes": body.worker_memory_bytes,
            "worker_disk_bytes": body.worker_disk_bytes,
            "max_pixel_reco_time": body.max_pixel_reco_time,
            "priority": body.priority,
            "debug_mode": debug_mode,
            "scanner_server_env_from_user": body.scanner_server_env_from_user,
        }
        manifest = await self.ctx.scans.create_scan(
            scan_id=new_scan_id(),
            request_doc=request_doc,
            event=event,
            i3_event_id=body.i3_event_id,
            scanner_server_args=scanner_server_args(body, nsides),
            classifiers=body.classifiers,
            priority=body.priority,
        )
        self.ctx.wake_backlog.set()
        self.send(project(manifest, body.manifest_projection))


class ScanHandler(BaseHandler):
    async def get(self, scan_id: str) -> None:
        include_deleted = self.bool_arg("include_deleted")
        manifest = await self.ctx.scans.get_manifest(scan_id, include_deleted=include_deleted)
        result = await self.ctx.scans.get_result(scan_id)
        self.send({"manifest": manifest, "result": result})

    async def delete(self, scan_id: str) -> None:
        delete_completed = self.bool_arg("delete_completed_scan")
        body = self.json_body()
        await self.ctx.scans.get_manifest(scan_id, include_deleted=True)
        result = await self.ctx.scans.get_result(scan_id)
        if result.get("is_final") and not delete_completed:
            raise InvalidRequest(
                "Attempted to delete a completed scan (must use `delete_completed_scan=True`)"
            )
        manifest = await self.ctx.scans.mark_deleted(scan_id)
        self.send(
            {"manifest": project(manifest, body.get("manifest_projection")), "result": result}
        )


class ManifestHandler(BaseHandler):
    async def get(self, scan_id: str) -> None:
        include_deleted = self.bool_arg("include_deleted")
        projection = self.get_query_argument("projection", "*")
        manifest = await self.ctx.scans.get_manifest(scan_id, include_deleted=include_deleted)
        fields = projection.split("|") if projection and projection != "*" else "*"
        self.send(project(manifest, fields))

    async def patch(self, scan_id: str) -> None:
        body = self.parse(ManifestPatchBody)
        patch = body.model_dump(exclude_none=True)
        self.send(await self.ctx.scans.patch_manifest(scan_id, patch))


class I3EventHandler(BaseHandler):
    async def get(self, scan_id: str) -> None:
        manifest = await self.ctx.scans.get_manifest(
            scan_id, include_deleted=self.bool_arg("include_deleted")
        )
        event = await self.ctx.scans.get_event(manifest["i3_event_id"])
        if event is None:
            raise ScanNotFound(f"No i3 event document found with id '{manifest['i3_event_id']}'")
        self.send({"i3_event_id": manifest["i3_event_id"], "i3_event": event})


class StatusHandler(BaseHandler):
    async def get(self, scan_id: str) -> None:
        manifest = await self.ctx.scans.get_manifest(scan_id, include_deleted=True)
        is_final = await self.ctx.scans.result_is_final(scan_id)
        logs = f"{self.ctx.settings.url}/scan/{scan_id}/logs"
        self.send(status_doc(manifest, is_final, logs))
