"""The scans' event log: what happened, in order, for the server-sent-event streams and the webhooks.

Events are numbered by one sequence for all scans (a counter document, `$inc`), stored in `ScanEvents`, and
announced to the streams of this process as they are appended. A stream that reconnects with
`Last-Event-ID: n` gets every event after n from the database, so nothing is lost or repeated.

Besides the stored events, a stream may subscribe to changes (`subscribe`): every write to a scan's manifest or
result marks the scan changed for the subscribers of this process (`touch`). Changes are not stored and carry
no event id: they tell a dashboard to show the scan's current state again (progress, workforce), which it
reads afresh. A subscriber keeps a set of changed scans, so a slow one holds at most one mark per scan."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from skyscan_contract.documents import ScanEvent, ScanEventType

from .db import Database

COUNTER_ID = "scan-events"
#: draws of a sequence number per event before giving up (see `_insert_numbered`)
APPEND_ATTEMPTS = 20


class Subscriber:
    """One stream's wake-up: set when an event is appended or a scan (of its interest) changes."""

    def __init__(self, scan_id: str | None, wants_changes: bool) -> None:
        self.scan_id = scan_id
        self.wants_changes = wants_changes
        self.changed: set[str] = set()
        self.wake = asyncio.Event()

    def take_changed(self) -> list[str]:
        changed, self.changed = sorted(self.changed), set()
        return changed

    async def wait(self, timeout_s: float) -> bool:
        """Until woken (True) or `timeout_s` (False). Clear `wake` before reading what to send, so a
        wake-up that comes while sending is not lost."""
        try:
            await asyncio.wait_for(self.wake.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


class EventStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._appended = asyncio.Condition()
        self._subscribers: set[Subscriber] = set()
        self._last_seq: int | None = None
        # FerretDB can give two concurrent `$inc`s of one document the same result: number one at a time
        self._numbering = asyncio.Lock()

    def subscribe(self, scan_id: str | None, *, changes: bool) -> Subscriber:
        """A stream's subscriber (of one scan, or of all); `changes`: also collect changed scans."""
        sub = Subscriber(scan_id, changes)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def touch(self, scan_id: str) -> None:
        """A scan's manifest or result changed (not stored; see the module docstring)."""
        for sub in self._subscribers:
            if sub.wants_changes and sub.scan_id in (None, scan_id):
                sub.changed.add(scan_id)
                sub.wake.set()

    async def append(
        self, scan_id: str, type: ScanEventType, data: dict[str, Any] | None = None
    ) -> ScanEvent:
        async with self._numbering:
            event = await self._insert_numbered(scan_id, type, data or {})
        if self._last_seq is not None:
            self._last_seq = max(self._last_seq, event.seq)
        for sub in self._subscribers:
            if sub.scan_id in (None, scan_id):
                sub.wake.set()
        async with self._appended:
            self._appended.notify_all()
        return event

    async def _insert_numbered(
        self, scan_id: str, type: ScanEventType, data: dict[str, Any]
    ) -> ScanEvent:
        for attempt in range(1, APPEND_ATTEMPTS + 1):
            try:
                counter = await self.db.counters.find_one_and_update(
                    {"_id": COUNTER_ID},
                    {"$inc": {"seq": 1}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                assert counter is not None
                event = ScanEvent(
                    seq=int(counter["seq"]), scan_id=scan_id, type=type, at=time.time(), data=data
                )
                await self.db.events.insert_one(event.model_dump(mode="json"))
                return event
            except DuplicateKeyError:
                # FerretDB's findAndModify is not atomic: appends of two processes (or a lost
                # increment) can draw a number already stored, and two first appends both create the
                # counter. The unique indexes refuse the second; it moves the counter past the stored
                # events and draws again, a little later than its rivals.
                if attempt == APPEND_ATTEMPTS:
                    raise
                await self._catch_up()
                await asyncio.sleep(random.uniform(0, 0.01 * attempt))
        raise AssertionError("unreachable")

    async def _catch_up(self) -> None:
        """Move the counter to the highest stored event number, if it is behind."""
        last = await self.db.events.find_one({}, {"seq": 1}, sort=[("seq", DESCENDING)])
        if last is not None:
            await self.db.counters.update_one(
                {"_id": COUNTER_ID}, {"$max": {"seq": int(last["seq"])}}
            )

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
        """The last event's id. Read once, then kept as this process appends (every event is appended
        here): a page load must not wait for the database behind a write."""
        if self._last_seq is None:
            counter = await self.db.counters.find_one({"_id": COUNTER_ID})
            found = int(counter["seq"]) if counter else 0
            self._last_seq = max(found, self._last_seq or 0)
        return self._last_seq

    async def wait(self, timeout_s: float) -> bool:
        """Until an event is appended in this process (True), or `timeout_s` (False)."""
        async with self._appended:
            try:
                await asyncio.wait_for(self._appended.wait(), timeout_s)
            except TimeoutError:
                return False
        return True
