"""Webhook subscriptions and their deliveries (what the webhook runner sends, and what users see of it)."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from skyscan_contract.documents import (
    DeliveryState,
    ScanEvent,
    WebhookDelivery,
    WebhookSubscription,
)
from skyscan_contract.errors import ScanNotFound

from .db import Database

CURSOR_ID = "webhook-cursor"  # the last event turned into deliveries


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def subscribe(
        self, url: str, scan_id: str | None, created_by: str, secret: str | None = None
    ) -> WebhookSubscription:
        sub = WebhookSubscription(
            id=uuid.uuid4().hex,
            url=url,
            scan_id=scan_id,
            created_by=created_by,
            created_at=time.time(),
            secret=secret or secrets.token_urlsafe(32),
        )
        await self.db.webhooks.insert_one(sub.model_dump(mode="json"))
        return sub

    async def get(self, sub_id: str) -> WebhookSubscription:
        doc = await self.db.webhooks.find_one({"id": sub_id}, {"_id": 0})
        if doc is None:
            raise ScanNotFound("no such webhook subscription")
        return WebhookSubscription.model_validate(doc)

    async def subscriptions(self, created_by: str | None = None) -> list[WebhookSubscription]:
        query: dict[str, Any] = {} if created_by is None else {"created_by": created_by}
        cursor = self.db.webhooks.find(query, {"_id": 0}).sort("created_at", ASCENDING)
        return [WebhookSubscription.model_validate(d) async for d in cursor]

    async def unsubscribe(self, sub_id: str) -> None:
        await self.db.webhooks.delete_one({"id": sub_id})
        await self.db.deliveries.delete_many({"subscription_id": sub_id})

    # -- deliveries ---------------------------------------------------------------------------------
    async def cursor(self) -> int:
        doc = await self.db.counters.find_one({"_id": CURSOR_ID})
        return int(doc["seq"]) if doc else 0

    async def advance(self, seq: int) -> None:
        await self.db.counters.update_one({"_id": CURSOR_ID}, {"$set": {"seq": seq}}, upsert=True)

    async def queue(self, events: list[ScanEvent], subs: list[WebhookSubscription]) -> None:
        """One pending delivery per event and subscription that wants it (idempotent per pair)."""
        for event, sub in ((e, s) for e in events for s in subs):
            if sub.scan_id not in (None, event.scan_id):
                continue
            delivery = WebhookDelivery(
                subscription_id=sub.id, seq=event.seq, scan_id=event.scan_id, type=event.type
            )
            try:
                await self.db.deliveries.insert_one(delivery.model_dump(mode="json"))
            except DuplicateKeyError:
                pass  # queued before a crash

    async def next_pending(self, sub_id: str) -> WebhookDelivery | None:
        """The oldest pending delivery of a subscription (deliveries go out in event order)."""
        doc = await self.db.deliveries.find_one(
            {"subscription_id": sub_id, "state": DeliveryState.PENDING.value},
            {"_id": 0},
            sort=[("seq", ASCENDING)],
        )
        return None if doc is None else WebhookDelivery.model_validate(doc)

    async def record(self, delivery: WebhookDelivery) -> None:
        await self.db.deliveries.update_one(
            {"subscription_id": delivery.subscription_id, "seq": delivery.seq},
            {"$set": delivery.model_dump(mode="json")},
        )

    async def deliveries(self, sub_id: str, limit: int = 1000) -> list[WebhookDelivery]:
        cursor = (
            self.db.deliveries.find({"subscription_id": sub_id}, {"_id": 0})
            .sort("seq", ASCENDING)
            .limit(limit)
        )
        return [WebhookDelivery.model_validate(d) async for d in cursor]
