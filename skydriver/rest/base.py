"""The one base handler: JSON in and out, pydantic validation with messages that name the field, and
errors rendered as the original's `{"code": n, "error": msg}` with the message as the reason phrase."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, TypeVar

import bson.errors
import tornado.web
from pydantic import BaseModel, ValidationError
from pymongo.errors import OperationFailure

from skyscan_contract.errors import InvalidRequest, PayloadTooLarge, SkyDriverError

from ..auth import Authenticator, Principal, Role
from ..settings import Settings
from ..store.backlog import BacklogStore
from ..store.scans import ScanStore

LOG = logging.getLogger(__name__)
BAD_VALUE = 2  # MongoDB/FerretDB error code for a value it cannot store
M = TypeVar("M", bound=BaseModel)


@dataclass
class AppContext:
    settings: Settings
    scans: ScanStore
    backlog: BacklogStore
    wake_backlog: Any  # asyncio.Event set when a scan is queued
    authenticator: Authenticator


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def validation_message(err: ValidationError) -> str:
    """OpenAPI-validator-like reasons, joined with '; '."""
    parts: list[str] = []
    for e in err.errors():
        loc = tuple(
            p
            for p in e["loc"]
            if not (isinstance(p, str) and p.startswith(("function-", "literal[")))
        )
        # union members appear as extra loc parts; keep the field path only
        field = _loc(loc[:1]) if loc else ""
        if e["type"] == "missing":
            parts.append(f"'{field}' is a required property")
        elif e["type"] == "extra_forbidden":
            parts.append(f"Additional properties are not allowed ('{field}' was unexpected)")
        elif e["type"] == "value_error":  # our validators' messages stand as they are
            parts.append(str(e["ctx"]["error"]) if "ctx" in e else e["msg"])
        else:
            parts.append(f"'{_loc(loc)}': {e['msg']}")
    return "; ".join(dict.fromkeys(parts))


class BaseHandler(tornado.web.RequestHandler):
    ctx: AppContext
    _principal: Principal | None = None

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def current_principal(self) -> Principal:
        """Who is calling (403 `authentication failed` without a valid bearer token); cached."""
        if self._principal is None:
            self._principal = await self.ctx.authenticator.authenticate(
                self.request.headers.get("Authorization")
            )
        return self._principal

    def is_system(self) -> bool:
        """The original's "first role is system": a system token (the scanner server, client manager)."""
        p = self._principal
        return p is not None and Role.SYSTEM in p.roles and Role.USER not in p.roles

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")

    async def prepare(self) -> None:
        length = self.request.headers.get("Content-Length")
        limit = self.ctx.settings.max_request_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(
                f"request body of {length} bytes is larger than the limit of {limit}"
            )
        if len(self.request.body or b"") > limit:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")

    # -- redirects for replaced scans ----------------------------------------------------------
    async def redirected(self, scan_id: str) -> bool:
        """404 for an unknown scan; for a scan replaced by a rescan, answer a user 302 to the same URL
        with the new id (unless `no_redirect`) and return True. System callers are never redirected."""
        manifest = await self.ctx.scans.get_manifest_cached(scan_id, include_deleted=True)
        new_id = manifest.replaced_by_scan_id
        if not new_id or self.is_system() or self.bool_arg("no_redirect"):
            return False
        self.redirect(self.request.full_url().replace(scan_id, new_id, 1), status=302)
        return True

    # -- input --------------------------------------------------------------------------------
    def json_body(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InvalidRequest(f"request body is not valid JSON: {e}") from e
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object")
        return body

    def parse(self, model: type[M], data: dict[str, Any] | None = None) -> M:
        try:
            return model.model_validate(self.json_body() if data is None else data)
        except ValidationError as e:
            raise InvalidRequest(validation_message(e)) from e

    def bool_arg(self, name: str, default: bool = False) -> bool:
        """A boolean from the query string ("True"/"true"/"1") or the JSON body."""
        raw: Any = self.get_query_argument(name, None)
        if raw is None and self.request.body and self.request.method != "GET":
            raw = self.json_body().get(name)
        if raw is None:
            return default
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "1", "yes"):
            return True
        if str(raw).lower() in ("false", "0", "no"):
            return False
        raise InvalidRequest(f"'{name}': must be a boolean, got {raw!r}")

    # -- output -------------------------------------------------------------------------------
    def send(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, allow_nan=True, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, SkyDriverError):
            message = exc.message
        elif isinstance(exc, tornado.web.HTTPError):
            message = exc.reason or exc.log_message or self._reason
        else:
            message = self._reason
        self.finish(json.dumps({"code": status_code, "error": message}))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, bson.errors.InvalidDocument | OverflowError) or (
            isinstance(e, OperationFailure) and e.code == BAD_VALUE
        ):  # data the database cannot hold
            e = InvalidRequest(f"a value in the request cannot be stored: {e}")
        if isinstance(e, SkyDriverError) and not self._finished:
            reason = " ".join(e.message.split())[:500]
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__), reason=reason)
            return
        super()._handle_request_exception(e)


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        raise tornado.web.HTTPError(404, reason="Not Found")
