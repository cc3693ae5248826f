"""The scan backlog: entries waiting for a scan instance, claimed atomically by the backlog runner."""

from __future__ import annotations

import time

from pymongo import ASCENDING, DESCENDING, ReturnDocument

from skyscan_contract.documents import BacklogEntry

from .db import Database, Doc


class BacklogStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(
        self,
        revive_after_s: float,
        *,
        min_priority: int | None = None,
        exclude_clusters: list[str] | None = None,
    ) -> BacklogEntry | None:
        """Claim the most urgent entry (priority desc, then oldest) that nobody holds, or whose claim is
        older than `revive_after_s` (its claimer died). Atomic: two runners never claim the same entry.
        `min_priority` and `exclude_clusters` apply the concurrency caps."""
        now = time.time()
        query: Doc = {"pending_timestamp": {"$lt": now - revive_after_s}}
        if min_priority is not None:
            query["priority"] = {"$gte": min_priority}
        if exclude_clusters:
            query["clusters"] = {"$nin": exclude_clusters}
        doc = await self.db.backlog.find_one_and_update(
            query,
            {"$set": {"pending_timestamp": now}, "$inc": {"next_attempt": 1}},
            sort=[("priority", DESCENDING), ("timestamp", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        doc.pop("_id", None)
        return BacklogEntry.model_validate(doc)

    async def enqueue(self, entry: BacklogEntry) -> bool:
        """Add an entry unless the scan has one; True if added."""
        if await self.db.backlog.find_one({"scan_id": entry.scan_id}, {"_id": 1}):
            return False
        await self.db.backlog.insert_one(entry.model_dump(mode="json"))
        return True

    async def claimable_now(self, scan_id: str) -> None:
        """Forget the entry's claim (its claimer died): the next runner pass takes it."""
        await self.db.backlog.update_one({"scan_id": scan_id}, {"$set": {"pending_timestamp": 0.0}})

    async def remove(self, scan_id: str) -> None:
        await self.db.backlog.delete_one({"scan_id": scan_id})

    async def retry_later(
        self, scan_id: str, delay_s: float, revive_after_s: float, *, count_attempt: bool
    ) -> None:
        """Make a claimed entry claimable again after `delay_s` (a start failed). A refusal that is not
        the scan's fault (a quota) does not count as an attempt."""
        update: Doc = {"$set": {"pending_timestamp": time.time() - revive_after_s + delay_s}}
        if not count_attempt:
            update["$inc"] = {"next_attempt": -1}
        await self.db.backlog.update_one({"scan_id": scan_id}, update)

    async def entries(self) -> list[BacklogEntry]:
        cursor = self.db.backlog.find({}, {"_id": 0}).sort("timestamp", ASCENDING)
        return [BacklogEntry.model_validate(d) async for d in cursor]
