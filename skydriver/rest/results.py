"""Routes that the scan instance writes to: results and the workforce report; plus the backlog listing."""

from __future__ import annotations

from ..models.api import ResultPutBody, WorkforcePutBody
from .base import BaseHandler


class ResultHandler(BaseHandler):
    async def get(self, scan_id: str) -> None:
        await self.ctx.scans.get_manifest(scan_id, include_deleted=self.bool_arg("include_deleted"))
        self.send(await self.ctx.scans.get_result(scan_id))

    async def put(self, scan_id: str) -> None:
        body = self.parse(ResultPutBody)
        self.send(await self.ctx.scans.put_result(scan_id, body.skyscan_result, body.is_final))


class WorkforceHandler(BaseHandler):
    async def put(self, scan_id: str) -> None:
        body = self.parse(WorkforcePutBody)
        await self.ctx.scans.get_manifest(scan_id, include_deleted=True)
        manifest = await self.ctx.scans.update_manifest(scan_id, {"workforce": body.model_dump()})
        self.send(manifest["workforce"] if manifest else {})


class BacklogHandler(BaseHandler):
    async def get(self) -> None:
        self.send({"entries": await self.ctx.backlog.entries()})


class RootHandler(BaseHandler):
    async def get(self) -> None:
        self.send({})
