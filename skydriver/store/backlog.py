"""The scan backlog: entries waiting for a scan instance, claimed atomically by the backlog runner."""

from __future__ import annotations

import time

from pymongo import ASCENDING, DESCENDING, ReturnDocument

from .db import Database, Doc


class BacklogStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(self, revive_after_s: float) -> Doc | None:
        """Claim the most urgent entry (priority desc, then oldest) that nobody holds, or whose claim is
        older than `revive_after_s` (its claimer died). Atomic: two runners never claim the same entry."""
        now = time.time()
        doc = await self.db.backlog.find_one_and_update(
            {"pending_timestamp": {"$lt": now - revive_after_s}},
            {"$set": {"pending_timestamp": now}, "$inc": {"next_attempt": 1}},
            sort=[("priority", DESCENDING), ("timestamp", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            doc.pop("_id", None)
        return doc

    async def remove(self, scan_id: str) -> None:
        await self.db.backlog.delete_one({"scan_id": scan_id})

    async def release(self, scan_id: str) -> None:
        """Give a claimed entry back at once (a start failed and may be retried)."""
        await self.db.backlog.update_one({"scan_id": scan_id}, {"$set": {"pending_timestamp": 0.0}})

    async def entries(self) -> list[Doc]:
        cursor = self.db.backlog.find({}, {"_id": 0, "pickled_k8s_job": 0}).sort(
            "timestamp", ASCENDING
        )
        return [d async for d in cursor]
