"""Finding scans, the backlog, and stored requests."""

from __future__ import annotations

from typing import Any

from pymongo.errors import OperationFailure

from skyscan_contract.errors import InvalidRequest

from ..auth import Role, requires
from ..models.api import FindBody
from .base import BaseHandler
from .openapi import Op

#: large fields never returned by /scans/find (they took the original's REST pod down, PR #133)
BLOCKED_FIELDS = {"ewms_task", "event_i3live_json_dict", "event_i3live_json_dict__hash"}
#: what others than a scan's creator see of its `scanner_server_env` values
REDACTED = "<redacted>"
#: query operators that would run code on the database
FORBIDDEN_OPERATORS = {"$where", "$function", "$accumulator"}


def _check_filter(value: Any, path: str = "filter") -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            if key in FORBIDDEN_OPERATORS:
                raise InvalidRequest(f"'{path}': operator {key} is not allowed")
            _check_filter(sub, f"{path}.{key}")
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _check_filter(sub, f"{path}[{i}]")


class FindHandler(BaseHandler):
    API = {
        "post": Op(
            "Find scans with a MongoDB query on manifests (newest first, at most "
            "SKYDRIVER_FIND_MAX_RESULTS)",
            body=FindBody,
        )
    }

    @requires(Role.USER)
    async def post(self) -> None:
        body = self.parse(FindBody)
        _check_filter(body.filter)
        query = dict(body.filter)
        if not body.include_deleted and "is_deleted" not in query:
            query["is_deleted"] = False
        if isinstance(body.manifest_projection, list) and "*" not in body.manifest_projection:
            blocked = BLOCKED_FIELDS & set(body.manifest_projection)
            if blocked:
                raise InvalidRequest(
                    f"'manifest_projection' cannot include any of the following: {sorted(BLOCKED_FIELDS)}"
                )
            wanted = set(body.manifest_projection)
        else:
            wanted = None
        try:
            found = await self.ctx.scans.find_manifests(
                query, {f: 0 for f in BLOCKED_FIELDS}, self.ctx.settings.find_max_results
            )
        except OperationFailure as e:
            raise InvalidRequest(
                f"'filter': the database refused it: {(e.details or {}).get('errmsg', e)}"
            ) from e
        manifests = [
            {
                k: v
                for k, v in m.api_dict().items()
                if k not in BLOCKED_FIELDS and (wanted is None or k in wanted)
            }
            for m in found
        ]
        self.send({"manifests": manifests})


class BacklogHandler(BaseHandler):
    API = {"get": Op("Scans waiting to start")}

    @requires(Role.USER)
    async def get(self) -> None:
        self.send({"entries": [e.api_dict() for e in await self.ctx.backlog.entries()]})


class ScanRequestHandler(BaseHandler):
    """The stored request; a rescan id resolves to the request it was made from."""

    API = {"get": Op("The stored scan request", responses={404: "Scan request not found"})}

    @requires(Role.USER)
    async def get(self, scan_id: str) -> None:
        request = await self.ctx.scans.get_request(scan_id)
        answer = request.api_dict()
        creator = (
            await self.ctx.scans.get_manifest(request.scan_id, include_deleted=True)
        ).created_by
        if creator != (await self.current_principal()).subject:  # others see names, not values
            answer["scanner_server_env_from_user"] = {
                k: REDACTED for k in request.scanner_server_env_from_user
            }
        self.send(answer)
