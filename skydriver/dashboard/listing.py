"""The scan list: the newest scans as summary rows, read at most once per `ttl_s` however many viewers ask
(they share one read in flight, as the status cache does), so that 50 people on shift reloading the list
cost one database read a second, not fifty."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..store.scans import ScanStore
from . import summary


class ScanList:
    def __init__(self, scans: ScanStore, ttl_s: float) -> None:
        self.scans = scans
        self.ttl_s = ttl_s
        self._cached: dict[tuple[int, bool], tuple[float, dict[str, Any]]] = {}
        self._flights: dict[tuple[int, bool], asyncio.Future[dict[str, Any]]] = {}

    async def newest(self, limit: int, include_deleted: bool) -> dict[str, Any]:
        """{"scans": [row, ...] newest first, "last_event_id": the last event before they were read}."""
        key = (limit, include_deleted)
        hit = self._cached.get(key)
        if hit is not None and time.monotonic() - hit[0] <= self.ttl_s:
            return hit[1]
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._read(limit, include_deleted))
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
        answer = await asyncio.shield(flight)
        self._cached[key] = (time.monotonic(), answer)
        return answer

    async def _read(self, limit: int, include_deleted: bool) -> dict[str, Any]:
        # the event id first: whatever happens after it reaches the page through its event stream
        last = await self.scans.events.last_seq()
        query: dict[str, Any] = {} if include_deleted else {"is_deleted": False}
        manifests = await self.scans.find_manifests(
            query, {"scan_metadata_json": 0, "worker_requests": 0}, limit
        )
        finals = await self.scans.final_among([m.scan_id for m in manifests])
        return {
            "scans": [summary.row(m, m.scan_id in finals) for m in manifests],
            "last_event_id": last,
        }
