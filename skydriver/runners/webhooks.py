"""Delivers scan events to webhook subscribers: at least once, in event order per subscription, signed,
retried with backoff.

Each POST carries the event as JSON, an `Idempotency-Key` (the same on every retry of one event, so a
subscriber that sees it twice drops the second), and `X-SkyDriver-Signature: t=<unix time>,v1=<hex>`, the
HMAC-SHA256 of `<t>.<body>` under the subscription's secret. A delivery is marked delivered only after a
2xx answer; a SkyDriver that dies in between sends it again (at least once). A delivery that keeps failing
is retried `webhook_max_attempts` times, `webhook_backoff_s` doubling each time, then marked failed, and
the next one goes out. Where deliveries stand: `GET /webhooks/{id}`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time

import httpx

from skyscan_contract.documents import (
    DeliveryState,
    ScanEvent,
    WebhookDelivery,
    WebhookSubscription,
)

from ..settings import Settings
from ..store.events import EventStore
from ..store.webhooks import WebhookStore

LOG = logging.getLogger(__name__)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-SkyDriver-Signature` header value of a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def idempotency_key(event: ScanEvent) -> str:
    return f"skydriver-event-{event.seq}"


def payload(event: ScanEvent) -> bytes:
    return json.dumps(
        {
            "id": idempotency_key(event),
            "seq": event.seq,
            "event": event.type.value,
            "scan_id": event.scan_id,
            "at": event.at,
            "data": event.data,
        }
    ).encode()


class WebhookRunner:
    def __init__(self, settings: Settings, events: EventStore, webhooks: WebhookStore) -> None:
        self.settings = settings
        self.events = events
        self.webhooks = webhooks
        self.client = httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False)

    async def run_forever(self) -> None:
        try:
            while True:
                try:
                    await self.pass_once()
                except Exception:
                    LOG.exception("webhook delivery pass failed; retrying")
                await self.events.wait(self.settings.webhook_poll_interval_s)
        finally:
            await self.client.aclose()

    async def pass_once(self) -> None:
        """Queue deliveries for new events, then send each subscription's next due delivery."""
        subs = await self.webhooks.subscriptions()
        cursor = await self.webhooks.cursor()
        for event in await self.events.since(cursor):
            await self.webhooks.queue([event], subs)
            await self.webhooks.advance(event.seq)
        await asyncio.gather(*(self._deliver_due(sub) for sub in subs))

    async def _deliver_due(self, sub: WebhookSubscription) -> None:
        """Send this subscription's pending deliveries in order, while they succeed."""
        while (delivery := await self.webhooks.next_pending(sub.id)) is not None:
            if delivery.next_attempt_at > time.time():
                return
            found = await self.events.since(delivery.seq - 1, delivery.scan_id, limit=1)
            event = found[0] if found else None
            if event is None or event.seq != delivery.seq:
                delivery.state, delivery.last_error = DeliveryState.FAILED, "event not found"
                await self.webhooks.record(delivery)
                continue
            if not await self._send(sub, event, delivery):
                return  # retried later: the ones after it wait (order)

    async def _send(self, sub: WebhookSubscription, event: ScanEvent, d: WebhookDelivery) -> bool:
        body = payload(event)
        now = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key(event),
            "X-SkyDriver-Event": event.type.value,
            "X-SkyDriver-Signature": signature(sub.secret, now, body),
        }
        d.attempts += 1
        try:
            resp = await self.client.post(sub.url, content=body, headers=headers)
            error = None if 200 <= resp.status_code < 300 else f"HTTP {resp.status_code}"
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"[:300]
        if error is None:
            d.state, d.delivered_at, d.last_error = DeliveryState.DELIVERED, time.time(), None
            await self.webhooks.record(d)
            return True
        d.last_error = error
        if d.attempts >= self.settings.webhook_max_attempts:
            d.state = DeliveryState.FAILED
            LOG.warning("webhook %s: event %d failed for good: %s", sub.id, event.seq, error)
            await self.webhooks.record(d)
            return True  # given up: the next one may go
        backoff = self.settings.webhook_backoff_s * 2 ** (d.attempts - 1)
        d.next_attempt_at = time.time() + min(backoff, self.settings.webhook_backoff_max_s)
        await self.webhooks.record(d)
        return False
