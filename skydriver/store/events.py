"""The scans' event log: what happened, in order, for the server-sent-event streams and the webhooks.

Events are numbered by one sequence for all scans (a counter document, `$inc`), stored in `ScanEvents`, and
announced to the streams of this process as they are appended. A stream that reconnects with
`Last-Event-ID: n` gets every event after n from the database, so nothing is lost or repeated."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from skyscan_contract.documents import ScanEvent, ScanEventType

from .db import Database

COUNTER_ID = "scan-events"


class EventStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._appended = asyncio.Condition()

    async def append(
        self, scan_id: str, type: ScanEventType, data: dict[str, Any] | None = None
    ) -> ScanEvent:
        counter = await self.db.counters.find_one_and_update(
            {"_id": COUNTER_ID},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert counter is not None
        event = ScanEvent(
            seq=int(counter["seq"]), scan_id=scan_id, type=type, at=time.time(), data=data or {}
        )
        await self.db.events.insert_one(event.model_dump(mode="json"))
        async with self._appended:
            self._appended.notify_all()
        return event

    async def since(
        self, seq: int, scan_id: str | None = None, limit: int = 1000
    ) -> list[ScanEvent]:
        """Events after `seq`, oldest first (of one scan, or of all)."""
        query: dict[str, Any] = {"seq": {"$gt": seq}}
        if scan_id is not None:
            query["scan_id"] = scan_id
        cursor = self.db.events.find(query, {"_id": 0}).sort("seq", ASCENDING).limit(limit)
        return [ScanEvent.model_validate(d) async for d in cursor]

    async def of_type(self, scan_id: str, type: ScanEventType) -> list[ScanEvent]:
        cursor = self.db.events.find({"scan_id": scan_id, "type": type.value}, {"_id": 0})
        return [ScanEvent.model_validate(d) async for d in cursor]

    async def last_seq(self) -> int:
        counter = await self.db.counters.find_one({"_id": COUNTER_ID})
        return int(counter["seq"]) if counter else 0

    async def wait(self, timeout_s: float) -> bool:
        """Until an event is appended in this process (True), or `timeout_s` (False)."""
        async with self._appended:
            try:
                await asyncio.wait_for(self._appended.wait(), timeout_s)
            except TimeoutError:
                return False
        return True
