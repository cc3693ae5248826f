"""Routes of one scan: launch (`POST /scan`), read and delete (`/scan/{id}`)."""

from __future__ import annotations

from typing import Any

from skyscan_contract.documents import ResultDoc
from skyscan_contract.errors import InvalidRequest

from ..auth import Role, requires
from ..ids import new_scan_id
from ..models.api import DeleteBody, ScanPostBody
from ..scanning import check_event, normalize_request, scanner_server_args
from .base import BaseHandler
from .openapi import Op


def project(manifest: dict[str, Any], projection: Any) -> dict[str, Any]:
    """`"*"`, empty, or a list containing `"*"` → every field; a list → those top-level fields."""
    if projection in (None, "", "*") or (
        isinstance(projection, list) and ("*" in projection or not projection)
    ):
        return manifest
    return {k: v for k, v in manifest.items() if k in projection}


def result_dict(result: ResultDoc | None) -> dict[str, Any]:
    """A Result as the API answers it: `{scan_id, skyscan_result, is_final}`, or `{}` before the first."""
    return {} if result is None else result.model_dump(mode="python")


class ScanLaunchHandler(BaseHandler):
    API = {
        "post": Op(
            "Launch a scan",
            body=ScanPostBody,
            responses={413: "body too large", 422: "unreadable event"},
        )
    }

    @requires(Role.USER)
    async def post(self) -> None:
        body = self.parse(ScanPostBody)
        scan_id = new_scan_id()
        principal = await self.current_principal()
        request = normalize_request(body, self.ctx.settings, scan_id, principal.subject)
        event: dict[str, Any] | None = None
        if body.event_i3live_json:
            assert isinstance(body.event_i3live_json, dict)
            event = body.event_i3live_json
            meta = check_event(event, body.reco_algo)
        else:
            stored = await self.ctx.scans.get_event(body.i3_event_id)
            if stored is None:
                raise InvalidRequest("i3 event not found")
            meta = check_event(stored, body.reco_algo)
        manifest = await self.ctx.scans.create_scan(
            scan_id=scan_id,
            request=request,
            event=event,
            i3_event_id=body.i3_event_id,
            scanner_server_args=scanner_server_args(request),
            classifiers=body.classifiers,
            priority=body.priority,
            clusters=[name for name, _ in body.clusters],
            created_by=principal.subject,
            event_metadata=meta,
        )
        self.ctx.wake_backlog.set()
        self.send(project(manifest.api_dict(), body.manifest_projection))


class ScanHandler(BaseHandler):
    API = {
        "get": Op(
            "The manifest and result of a scan",
            query=("include_deleted", "no_redirect"),
            responses={404: "unknown scan"},
        ),
        "delete": Op(
            "Abort and soft-delete a scan", body=DeleteBody, responses={404: "unknown scan"}
        ),
    }

    @requires(Role.USER, Role.SYSTEM)
    async def get(self, scan_id: str) -> None:
        if await self.redirected(scan_id):
            return
        include_deleted = self.bool_arg("include_deleted")
        manifest = await self.ctx.scans.get_manifest(scan_id, include_deleted=include_deleted)
        result = await self.ctx.scans.get_result(scan_id)
        self.send({"manifest": manifest.api_dict(), "result": result_dict(result)})

    @requires(Role.USER)
    async def delete(self, scan_id: str) -> None:
        args = {
            **self.json_body(),
            **{k: v[-1].decode() for k, v in self.request.query_arguments.items()},
        }
        body = self.parse(DeleteBody, args)
        if not body.no_redirect and await self.redirected(scan_id):
            return
        await self.ctx.scans.get_manifest(scan_id, include_deleted=True)
        result = await self.ctx.scans.get_result(scan_id)
        if result is not None and result.is_final and not body.delete_completed_scan:
            raise InvalidRequest(
                "Attempted to delete a completed scan (must use `delete_completed_scan=True`)"
            )
        manifest = await self.ctx.scans.mark_deleted(
            scan_id, (await self.current_principal()).subject
        )
        self.send(
            {
                "manifest": project(manifest.api_dict(), body.manifest_projection),
                "result": result_dict(result),
            }
        )
