"""The MongoDB database: collections of the original (Manifests, Results, ScanBacklog, ScanRequests,
I3Events) through PyMongo's asyncio API, and their unique indexes."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

LOG = logging.getLogger(__name__)

Doc = dict[str, Any]


@dataclass
class Database:
    client: AsyncMongoClient[Doc]
    db: AsyncDatabase[Doc]

    @property
    def manifests(self) -> AsyncCollection[Doc]:
        return self.db["Manifests"]

    @property
    def results(self) -> AsyncCollection[Doc]:
        return self.db["Results"]

    @property
    def backlog(self) -> AsyncCollection[Doc]:
        return self.db["ScanBacklog"]

    @property
    def scan_requests(self) -> AsyncCollection[Doc]:
        return self.db["ScanRequests"]

    @property
    def i3_events(self) -> AsyncCollection[Doc]:
        return self.db["I3Events"]

    @property
    def events(self) -> AsyncCollection[Doc]:
        """What happened to scans, in order (ours: the event streams and webhooks)."""
        return self.db["ScanEvents"]

    @property
    def counters(self) -> AsyncCollection[Doc]:
        return self.db["Counters"]

    @property
    def webhooks(self) -> AsyncCollection[Doc]:
        return self.db["Webhooks"]

    @property
    def deliveries(self) -> AsyncCollection[Doc]:
        return self.db["WebhookDeliveries"]

    async def ensure_indexes(self) -> None:
        await self.manifests.create_index("scan_id", name="scan_id_index", unique=True)
        await self.manifests.create_index("ewms_workflow_id", name="ewms_workflow_id_index")
        await self.manifests.create_index(
            [("event_metadata.event_id", DESCENDING), ("event_metadata.run_id", DESCENDING)],
            name="event_run_index",
        )
        await self.results.create_index("scan_id", name="scan_id_index", unique=True)
        await self.backlog.create_index("scan_id", name="scan_id_index", unique=True)
        await self.backlog.create_index([("timestamp", ASCENDING)], name="timestamp_index")
        await self.backlog.create_index([("priority", DESCENDING)], name="priority_index")
        await self.scan_requests.create_index("scan_id", name="scan_id_index", unique=True)
        await self.i3_events.create_index("i3_event_id", name="i3_event_id_index", unique=True)
        await self.events.create_index([("seq", ASCENDING)], name="seq_index", unique=True)
        await self.events.create_index("scan_id", name="scan_id_index")
        await self.webhooks.create_index("id", name="id_index", unique=True)
        await self.deliveries.create_index(
            [("subscription_id", ASCENDING), ("seq", ASCENDING)], name="delivery_index", unique=True
        )

    async def ping(self) -> None:
        """Raises if the database does not answer."""
        await self.db.command("ping")

    async def close(self) -> None:
        await self.client.close()


def redacted_uri(uri: str) -> str:
    """A MongoDB URI fit for a message: its password, if any, replaced by `***`."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", uri)


def connect(uri: str, database: str) -> Database:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=10000, tz_aware=False
    )
    return Database(client, client[database])
