"""Push instead of poll: server-sent events of one scan (`GET /scan/{id}/events`) or of all scans
(`GET /scans/events`).

Each event is `id: <seq>`, `event: <type>` (queued, started, nside_finished, partial_result, final_result,
failed, deleted) and `data: <JSON>`. A client that reconnects sends `Last-Event-ID` (or
`?last_event_id=`) and gets every event after it, from the database: none lost, none twice. A scan's stream
ends after its last event (final_result, failed, deleted); a comment line keeps idle streams alive."""

from __future__ import annotations

import json
import logging

from tornado.iostream import StreamClosedError

from skyscan_contract.documents import ScanEvent
from skyscan_contract.errors import InvalidRequest

from ..auth import Role, requires
from .base import BaseHandler
from .openapi import Op

LOG = logging.getLogger(__name__)


def event_text(event: ScanEvent) -> str:
    """One event in the text/event-stream format."""
    data = json.dumps({"scan_id": event.scan_id, "at": event.at, **event.data})
    return f"id: {event.seq}\nevent: {event.type.value}\ndata: {data}\n\n"


class _EventStream(BaseHandler):
    _closed = False

    def on_connection_close(self) -> None:
        self._closed = True

    def _last_event_id(self) -> int:
        raw = self.request.headers.get("Last-Event-ID") or self.get_query_argument(
            "last_event_id", "0"
        )
        if not raw.isdigit():
            raise InvalidRequest(f"'Last-Event-ID': must be an event id (an integer), got {raw!r}")
        return int(raw)

    async def stream(self, scan_id: str | None) -> None:
        last = self._last_event_id()
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Accel-Buffering", "no")  # proxies: do not hold events back
        store = self.ctx.scans.events
        keepalive_s = self.ctx.settings.events_keepalive_s
        try:
            self.write(f"retry: {int(keepalive_s * 1000)}\n\n")
            await self.flush()
            while not self._closed:
                events = await store.since(last, scan_id)
                for event in events:
                    self.write(event_text(event))
                    last = event.seq
                    if scan_id is not None and event.type.is_last:
                        self.finish()
                        return
                if events:
                    await self.flush()
                    continue
                if not await store.wait(keepalive_s):
                    self.write(": keepalive\n\n")
                    await self.flush()
        except StreamClosedError:
            LOG.debug("event stream closed by the client after event %d", last)
            return
        if not self._finished:
            self.finish()


class ScanEventsHandler(_EventStream):
    API = {
        "get": Op(
            "The scan's events as server-sent events (Last-Event-ID resumes)",
            query=("last_event_id", "no_redirect"),
            responses={404: "unknown scan"},
            media_type="text/event-stream",
        )
    }

    @requires(Role.USER, Role.SYSTEM)
    async def get(self, scan_id: str) -> None:
        if await self.redirected(scan_id):
            return
        await self.ctx.scans.get_manifest(scan_id, include_deleted=True)  # 404 for an unknown scan
        await self.stream(scan_id)


class AllEventsHandler(_EventStream):
    API = {
        "get": Op(
            "Every scan's events as server-sent events (Last-Event-ID resumes)",
            query=("last_event_id",),
            media_type="text/event-stream",
        )
    }

    @requires(Role.USER)
    async def get(self) -> None:
        await self.stream(None)
