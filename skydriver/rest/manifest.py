"""A scan's manifest, event, status and logs."""

from __future__ import annotations

from skyscan_contract.errors import ScanNotFound
from skyscan_contract.messages import ManifestPatchBody

from ..auth import Role, requires
from ..status import status_doc
from .base import BaseHandler
from .openapi import Op
from .scans import project


class ManifestHandler(BaseHandler):
    API = {
        "get": Op(
            "A scan's manifest",
            query=("include_deleted", "projection", "no_redirect"),
            responses={404: "unknown scan"},
        ),
        "patch": Op(
            "Report progress and metadata (scanner server)",
            body=ManifestPatchBody,
            responses={404: "unknown scan"},
        ),
    }

    @requires(Role.USER, Role.SYSTEM)
    async def get(self, scan_id: str) -> None:
        if await self.redirected(scan_id):
            return
        include_deleted = self.bool_arg("include_deleted")
        projection = self.get_query_argument("projection", "*")
        fields = projection.split("|") if projection and projection != "*" else "*"
        manifest = await self.ctx.scans.get_manifest(scan_id, include_deleted=include_deleted)
        answer = project(manifest.api_dict(), fields)
        if self.is_system() and "event_i3live_json_dict" in answer and manifest.i3_event_id:
            event = await self.ctx.scans.get_event(manifest.i3_event_id)
            if event is None:
                raise ScanNotFound(
                    f"No i3 event document found with id '{manifest.i3_event_id}'--if other fields "
                    "are wanted, re-request using 'projection'"
                )
            answer["event_i3live_json_dict"] = event
        self.send(answer)

    @requires(Role.SYSTEM)
    async def patch(self, scan_id: str) -> None:
        body = self.parse(ManifestPatchBody)
        await self.writable_scan(scan_id, final_too=True)
        manifest = await self.ctx.scans.patch_manifest(scan_id, body)
        self.send(manifest.api_dict())


class I3EventHandler(BaseHandler):
    API = {
        "get": Op(
            "The scan's event",
            query=("include_deleted", "no_redirect"),
            responses={404: "unknown scan"},
        )
    }

    @requires(Role.USER, Role.SYSTEM)
    async def get(self, scan_id: str) -> None:
        if await self.redirected(scan_id):
            return
        manifest = await self.ctx.scans.get_manifest(
            scan_id, include_deleted=self.bool_arg("include_deleted")
        )
        event = await self.ctx.scans.get_event(manifest.i3_event_id)
        if event is None:
            raise ScanNotFound(f"No i3 event document found with id '{manifest.i3_event_id}'")
        self.send({"i3_event_id": manifest.i3_event_id, "i3_event": event})


class StatusHandler(BaseHandler):
    API = {
        "get": Op(
            "The scan's state",
            query=("no_redirect",),
            responses={404: "unknown scan"},
        )
    }

    @requires(Role.USER, Role.SYSTEM)
    async def get(self, scan_id: str) -> None:
        if await self.redirected(scan_id):
            return
        manifest = await self.ctx.scans.get_manifest_cached(scan_id, include_deleted=True)
        is_final = await self.ctx.scans.result_is_final(scan_id)
        self.send(status_doc(manifest, is_final, f"{self.ctx.settings.url}/scan/{scan_id}/logs"))


class LogsHandler(BaseHandler):
    """Where this deployment keeps the scan's logs (local launcher: files in its state directory)."""

    API = {
        "get": Op(
            "Where the scan's logs are", query=("no_redirect",), responses={404: "unknown scan"}
        )
    }

    @requires(Role.USER)
    async def get(self, scan_id: str) -> None:
        if await self.redirected(scan_id):
            return
        manifest = await self.ctx.scans.get_manifest(scan_id, include_deleted=True)
        state = manifest.instance.launcher_state if manifest.instance else {}
        directory = state.get("dir")
        if not directory:
            self.send(
                {
                    "scanner_server": {"url": None},
                    "client_manager": {"url": None},
                    "workers": {"url": None},
                }
            )
            return
        self.send(
            {
                "scanner_server": {"url": f"file://{directory}/server.log"},
                "client_manager": {"url": f"file://{directory}/client-manager.log"},
                "workers": {"url": f"file://{directory}/workers/"},
            }
        )
