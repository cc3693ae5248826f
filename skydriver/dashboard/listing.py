"""The scan list: the newest scans as summary rows, from memory.

A database read of a thousand manifests, sorted, takes seconds on FerretDB, so the list is read once (the
newest `SKYDRIVER_FIND_MAX_RESULTS` scans, deleted ones too), then kept current from the store's change
marks (`EventStore.touch`, made by every write to a manifest or result in this process): a changed scan's
row is rebuilt from the write-through manifest cache when the list is next asked for. The whole list is read
again in the background every `refresh_s` (a safety net; every write goes through this process, which is
also why several SkyDriver replicas are not supported, README "Security model")."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from skyscan_contract.errors import ScanNotFound

from ..store.scans import ScanStore
from . import summary

#: manifest fields the list never needs (large, or not shown)
UNUSED_FIELDS = {"scan_metadata_json": 0, "worker_requests": 0}


class ScanList:
    def __init__(self, scans: ScanStore, capacity: int, refresh_s: float = 60.0) -> None:
        self.scans = scans
        self.capacity = capacity
        self.refresh_s = refresh_s
        self._changes = scans.events.subscribe(None, changes=True)
        self._rows: dict[str, dict[str, Any]] | None = None
        self._read_at = 0.0
        self._reading: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()

    async def _read_all(self) -> None:
        self._changes.take_changed()  # the read below sees every change made before it
        manifests = await self.scans.find_manifests({}, UNUSED_FIELDS, self.capacity)
        finals = await self.scans.final_among([m.scan_id for m in manifests])
        self._rows = {m.scan_id: summary.row(m, m.scan_id in finals) for m in manifests}
        self._read_at = time.monotonic()

    def _start_read(self) -> asyncio.Future[None]:
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read_all())
            self._reading.add_done_callback(lambda _: setattr(self, "_reading", None))
        return self._reading

    async def newest(self, limit: int, include_deleted: bool) -> dict[str, Any]:
        """{"scans": [row, ...] newest first, "last_event_id": an event id no newer than the rows}."""
        last = await self.scans.events.last_seq()  # first: the rows are at least this new
        if self._rows is None:
            await asyncio.shield(self._start_read())
        elif time.monotonic() - self._read_at > self.refresh_s:
            self._start_read()  # in the background; answer from memory meanwhile
        async with self._lock:
            await self._apply_changes()
        assert self._rows is not None
        rows = sorted(self._rows.values(), key=lambda r: -float(r["created"]))
        if not include_deleted:
            rows = [r for r in rows if not r["is_deleted"]]
        return {"scans": rows[:limit], "last_event_id": last}

    async def _apply_changes(self) -> None:
        assert self._rows is not None
        for scan_id in self._changes.take_changed():
            try:
                manifest = await self.scans.get_manifest_cached(
                    scan_id, include_deleted=True, max_age_s=summary.MAX_AGE_S
                )
            except ScanNotFound:
                self._rows.pop(scan_id, None)
                continue
            final = bool(await self.scans.final_among([scan_id]))
            self._rows[scan_id] = summary.row(manifest, final)
        if len(self._rows) > self.capacity:
            keep = sorted(self._rows.values(), key=lambda r: -float(r["created"]))[: self.capacity]
            self._rows = {r["scan_id"]: r for r in keep}
