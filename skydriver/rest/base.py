"""The one base handler: JSON in and out, pydantic validation with messages that name the field, and
errors rendered as the original's `{"code": n, "error": msg}` with the message as the reason phrase.

Bodies are streamed (`stream_request_body`): `prepare()` runs once the headers are in, so a request without
valid credentials, or announcing a body over the limit, is refused before its body is read; the body is
then collected up to the limit (chunked uploads too) and parsed as strict JSON (no NaN/Infinity, bounded
nesting, valid Unicode), so that what cannot be stored is a 400, never a 500."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, TypeVar

import bson.errors
import tornado.web
from pydantic import BaseModel, ValidationError
from pymongo.errors import OperationFailure

from skyscan_contract.documents import InstanceState
from skyscan_contract.errors import (
    InvalidRequest,
    PayloadTooLarge,
    ScanConflict,
    ScanNotFound,
    SkyDriverError,
)

from ..auth import (
    Authenticator,
    DenialReason,
    Principal,
    Role,
    authorization_failed,
    declared_roles,
)
from ..settings import Settings
from ..store.backlog import BacklogStore
from ..store.db import Database
from ..store.scans import ScanStore
from ..store.webhooks import WebhookStore

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
    db: Database
    webhooks: WebhookStore
    #: the background runners (backlog runner, instance watcher): /healthz checks they are alive
    background: list[asyncio.Task[None]] = field(default_factory=list)


#: a scan-scoped token stops working once its scan's instance is in one of these states
ENDED_INSTANCE = (InstanceState.ENDED, InstanceState.FAILED)
#: JSON nested deeper than this is refused (nothing we accept is deeper than a handful of levels)
MAX_JSON_DEPTH = 64


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (JSON has no NaN or Infinity)")


def _check_json_tree(value: Any) -> None:
    """Depth and Unicode of a parsed body, iteratively (a deep body must not exhaust the stack)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidRequest(f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                raise InvalidRequest(
                    f"request body: '{path or '.'}' holds an invalid Unicode character ({e.reason})"
                ) from None
        elif isinstance(item, dict):
            for key, sub in item.items():
                stack.append((key, path, depth + 1))
                stack.append((sub, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(item, list):
            stack.extend((sub, f"{path}[{i}]", depth + 1) for i, sub in enumerate(item))


def parse_json_body(raw: bytes) -> Any:
    """Strict JSON: InvalidRequest (400) naming the problem for anything we could not store."""
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidRequest(
            f"request body is nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"request body is not valid JSON: {e}") from e
    except ValueError as e:  # NaN/Infinity, integers beyond Python's 4300 digits
        raise InvalidRequest(f"request body is not valid JSON: {e}") from e
    _check_json_tree(body)
    return body


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


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    ctx: AppContext
    _principal: Principal | None = None

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._chunks: list[bytes] = []
        self._size = 0
        self._body: bytes | None = None

    async def current_principal(self) -> Principal:
        """Who is calling (403 `authentication failed` without a valid bearer token); cached.

        A token scoped to a scan (a scan instance's) stops working once that scan's instance has ended:
        nothing may act for a scan whose processes are gone."""
        if self._principal is None:
            principal = await self.ctx.authenticator.authenticate(
                self.request.headers.get("Authorization")
            )
            if principal.scan_id is not None:
                try:
                    manifest = await self.ctx.scans.get_manifest_cached(
                        principal.scan_id, include_deleted=True
                    )
                except ScanNotFound:
                    LOG.info("authorization failed: %r acts for an unknown scan", principal.subject)
                    raise authorization_failed(DenialReason.WRONG_SCAN) from None
                if manifest.instance_state in ENDED_INSTANCE:
                    LOG.info(
                        "authorization failed: %r acts for scan %s, whose instance has ended",
                        principal.subject,
                        principal.scan_id,
                    )
                    raise authorization_failed(DenialReason.INSTANCE_ENDED)
            self._principal = principal
        return self._principal

    async def writable_scan(self, scan_id: str, *, final_too: bool) -> None:
        """A scan instance's write (progress, result, workforce) is refused for a deleted scan and, if
        `final_too`, for a scan with its final result: a final result is never overwritten."""
        manifest = await self.ctx.scans.get_manifest(scan_id, include_deleted=True)
        if manifest.is_deleted:
            raise ScanConflict(f"scan {scan_id} is deleted: nothing more is written to it")
        if final_too and await self.ctx.scans.result_is_final(scan_id):
            raise ScanConflict(f"scan {scan_id} has its final result: it cannot change")

    def is_system(self) -> bool:
        """The original's "first role is system": a system token (the scanner server, client manager)."""
        p = self._principal
        return p is not None and Role.SYSTEM in p.roles and Role.USER not in p.roles

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        if hasattr(self, "ctx"):  # (tornado sets them once before initialize(), and after errors)
            self._cors_headers()

    def _cors_headers(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin and origin in self.ctx.settings.cors_origins:  # an external dashboard
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Expose-Headers", "ETag, Location")
            self.set_header("Vary", "Origin")

    def _preflight(self) -> None:
        """A browser's CORS preflight (OPTIONS): the methods and headers a configured origin may use."""
        self.set_status(204)
        if "Access-Control-Allow-Origin" in self._headers:
            self.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
            self.set_header(
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type, If-None-Match, Last-Event-ID",
            )
            self.set_header("Access-Control-Max-Age", "600")
        self.finish()

    async def prepare(self) -> None:
        """Headers are in, the body is not: refuse an oversized body and a caller without valid
        credentials now (a route's roles are checked by `@requires` once the body is in)."""
        self._cors_headers()
        if self.request.method == "OPTIONS":
            self._preflight()
            return
        if self.request.remote_ip in self.ctx.settings.trusted_proxies:
            forwarded = (
                self.request.headers.get("X-Real-Ip")
                or self.request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
            )
            if forwarded:
                self.request.remote_ip = forwarded  # for the logs; nothing else trusts it
        length = self.request.headers.get("Content-Length")
        limit = self.ctx.settings.max_request_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(
                f"request body of {length} bytes is larger than the limit of {limit}"
            )
        method = getattr(self, (self.request.method or "").lower(), None)
        if declared_roles(method):  # not a public route
            await self.current_principal()

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        limit = self.ctx.settings.max_request_body_bytes
        if self._size > limit:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
        self._chunks.append(chunk)

    @property
    def body(self) -> bytes:
        """The request body (read in full before the handler method runs)."""
        if self._body is None:
            self._body = b"".join(self._chunks)
            self._chunks = []
        return self._body

    # -- redirects for replaced scans ----------------------------------------------------------
    async def redirected(self, scan_id: str) -> bool:
        """404 for an unknown scan; for a scan replaced by a rescan, answer a user 302 to the same URL
        with the new id (unless `no_redirect`) and return True. System callers are never redirected."""
        manifest = await self.ctx.scans.get_manifest_cached(scan_id, include_deleted=True)
        new_id = manifest.replaced_by_scan_id
        if not new_id or self.is_system() or self.bool_arg("no_redirect"):
            return False
        # to this deployment's own URL (never the Host header the client sent)
        path = self.request.uri or self.request.path
        self.redirect(self.ctx.settings.url + path.replace(scan_id, new_id, 1), status=302)
        return True

    # -- input --------------------------------------------------------------------------------
    def json_body(self) -> dict[str, Any]:
        if not self.body:
            return {}
        body = parse_json_body(self.body)
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
        if raw is None and self.body and self.request.method != "GET":
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
        if isinstance(e, bson.errors.InvalidDocument | OverflowError | UnicodeEncodeError) or (
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
