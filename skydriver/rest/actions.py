"""Actions on a scan: rescan (optionally replacing it) and adding workers."""

from __future__ import annotations

import time

from skyscan_contract.documents import InstanceState, WorkerRequest
from skyscan_contract.errors import InvalidRequest, UnprocessableAction

from ..auth import DenialReason, Role, authorization_failed, requires
from ..ids import new_scan_id
from ..models.api import AddWorkersBody, RescanBody
from ..scanning import scanner_server_args
from .base import BaseHandler
from .openapi import Op
from .scans import project


class RescanHandler(BaseHandler):
    API = {
        "post": Op(
            "Scan the same event again",
            body=RescanBody,
            responses={404: "unknown scan"},
        )
    }

    @requires(Role.USER, Role.SYSTEM)
    async def post(self, scan_id: str) -> None:
        """Order for crash safety: the new scan is recorded in the request and created first, and only
        then (abort_first) is the old one deleted: a crash in between never loses the old scan without
        its replacement (at worst the request lists a rescan id that was never created)."""
        body = self.parse(RescanBody)
        principal = await self.current_principal()
        if principal.scan_id is not None:  # a scan instance's token: never starts or deletes scans
            raise authorization_failed(DenialReason.SCOPED_TOKEN)
        if not body.no_redirect and await self.redirected(scan_id):
            return
        old = await self.ctx.scans.get_manifest(scan_id, include_deleted=True)
        # a completed scan has nothing to abort: abort_first never deletes it (DELETE does, with
        # delete_completed_scan=True)
        abort = body.abort_first and not await self.ctx.scans.result_is_final(scan_id)
        new_id = new_scan_id()
        request = await self.ctx.scans.add_rescan_id(scan_id, new_id)
        manifest = await self.ctx.scans.create_scan(
            scan_id=new_id,
            request=None,
            event=None,
            i3_event_id=old.i3_event_id,
            scanner_server_args=scanner_server_args(request),
            classifiers={**request.classifiers, "rescan": True, "origin_scan_id": scan_id},
            priority=request.priority,
            clusters=request.cluster_names,
            created_by=principal.subject,
            event_metadata=old.event_metadata,
        )
        if abort:
            await self.ctx.scans.mark_deleted(scan_id, principal.subject)
        if body.replace_scan:
            await self.ctx.scans.set_replaced_by(scan_id, new_id)
        self.ctx.wake_backlog.set()
        self.send(project(manifest.api_dict(), body.manifest_projection))


class AddWorkersHandler(BaseHandler):
    API = {
        "post": Op(
            "Ask for more workers",
            body=AddWorkersBody,
            responses={404: "unknown scan", 422: "scan not running"},
        )
    }

    @requires(Role.USER)
    async def post(self, scan_id: str) -> None:
        body = self.parse(AddWorkersBody)
        if not body.no_redirect and await self.redirected(scan_id):
            return
        manifest = await self.ctx.scans.get_manifest(scan_id, include_deleted=True)
        if manifest.is_deleted:
            raise UnprocessableAction("this scan has been deleted--cannot add workers")
        if manifest.instance_state is not InstanceState.RUNNING:
            raise UnprocessableAction(
                "an EWMS workflow has not been assigned--cannot add workers"
                " (the scan instance is not running)"
            )
        if await self.ctx.scans.result_is_final(scan_id):
            raise UnprocessableAction("this scan has a final result--cannot add workers")
        if body.cluster_location not in self.ctx.settings.clusters:
            raise UnprocessableAction(
                f"unknown cluster_location {body.cluster_location!r} "
                f"(available: {', '.join(self.ctx.settings.clusters)})"
            )
        request = await self.ctx.scans.get_request(scan_id)
        on_cluster = body.n_workers + sum(
            c.n_workers for c in request.request_clusters if c.cluster == body.cluster_location
        )
        in_all = body.n_workers + request.n_workers
        for r in manifest.worker_requests:
            in_all += r.n_workers
            on_cluster += r.n_workers if r.cluster == body.cluster_location else 0
        settings = self.ctx.settings
        cluster_cap = settings.max_workers_per_cluster.get(body.cluster_location)
        if in_all > settings.max_workers_per_scan or (
            cluster_cap is not None and on_cluster > cluster_cap
        ):
            raise InvalidRequest(
                f"Too many workers: the scan would have {in_all} in all and {on_cluster} on "
                f"'{body.cluster_location}' (at most {settings.max_workers_per_scan} per scan, "
                f"{cluster_cap if cluster_cap is not None else settings.max_workers_per_scan} on "
                "this cluster)"
            )
        now = time.time()
        request_id = f"{scan_id}-{int(now * 1000):x}"
        await self.ctx.scans.request_workers(
            scan_id,
            WorkerRequest(
                id=request_id, cluster=body.cluster_location, n_workers=body.n_workers, at=now
            ),
        )
        self.send({"taskforce_uuid": request_id, "n_workers": body.n_workers})
