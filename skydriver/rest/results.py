"""Results (written by the scanner server) and the workforce (written by the client manager)."""

from __future__ import annotations

from skyscan_contract.messages import ResultPutBody, WorkforcePutBody

from ..auth import Role, requires
from .base import BaseHandler
from .openapi import Op
from .scans import result_dict


class ResultHandler(BaseHandler):
    API = {
        "get": Op(
            "The scan's result ({} before the first)",
            query=("include_deleted", "no_redirect"),
            responses={404: "unknown scan"},
        ),
        "put": Op(
            "Store a partial or final result (scanner server)",
            body=ResultPutBody,
            responses={404: "unknown scan"},
        ),
    }

    @requires(Role.USER, Role.SYSTEM)
    async def get(self, scan_id: str) -> None:
        if await self.redirected(scan_id):
            return
        await self.ctx.scans.get_manifest(scan_id, include_deleted=self.bool_arg("include_deleted"))
        self.send(result_dict(await self.ctx.scans.get_result(scan_id)))

    @requires(Role.SYSTEM)
    async def put(self, scan_id: str) -> None:
        body = self.parse(ResultPutBody)
        await self.writable_scan(scan_id, final_too=True)
        self.send(result_dict(await self.ctx.scans.put_result(scan_id, body)))


class WorkforceHandler(BaseHandler):
    API = {
        "get": Op("The workforce report and worker requests (client manager)"),
        "put": Op("Report the workforce (client manager)", body=WorkforcePutBody),
    }

    @requires(Role.SYSTEM)
    async def get(self, scan_id: str) -> None:
        """The client manager's view: its last report and the worker requests made through the API."""
        manifest = await self.ctx.scans.get_manifest(scan_id, include_deleted=True)
        self.send(
            {
                "workforce": manifest.workforce and manifest.workforce.model_dump(mode="json"),
                "worker_requests": [r.model_dump(mode="json") for r in manifest.worker_requests],
            }
        )

    @requires(Role.SYSTEM)
    async def put(self, scan_id: str) -> None:
        body = self.parse(WorkforcePutBody)
        await self.writable_scan(scan_id, final_too=False)
        manifest = await self.ctx.scans.set_workforce(scan_id, body)
        workforce = manifest.workforce if manifest else None
        self.send(workforce.model_dump(mode="json") if workforce else {})


class RootHandler(BaseHandler):
    API = {"get": Op("Ping")}

    @requires(Role.USER)
    async def get(self) -> None:
        self.send({})
