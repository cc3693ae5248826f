"""Webhook subscriptions: a realtime pipeline registers a URL for one scan's events or for every scan's,
and sees where their deliveries stand (see `skydriver.runners.webhooks` for what is sent)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from skyscan_contract.errors import InvalidRequest, ScanNotFound

from ..auth import Role, requires
from ..models.api import StrictModel
from .base import BaseHandler
from .openapi import Op


class WebhookPostBody(StrictModel):
    """POST /webhooks. A scan's subscriber gets all the scan's events, those before it subscribed too;
    a subscriber to every scan, the events after it subscribed."""

    url: str = Field(min_length=8, max_length=2000)
    #: only this scan's events (none: every scan's)
    scan_id: Annotated[str, Field(pattern=r"^\w+$")] | None = None
    #: the HMAC key of the signatures (made by SkyDriver and returned once when not given)
    secret: str | None = Field(None, min_length=16, max_length=256)


class WebhooksHandler(BaseHandler):
    API = {
        "get": Op("Your webhook subscriptions"),
        "post": Op(
            "Subscribe a URL to one scan's events, or to every scan's",
            body=WebhookPostBody,
            responses={404: "unknown scan"},
        ),
    }

    @requires(Role.USER)
    async def get(self) -> None:
        me = (await self.current_principal()).subject
        subs = await self.ctx.webhooks.subscriptions(created_by=me)
        self.send({"webhooks": [s.api_dict() for s in subs]})

    @requires(Role.USER)
    async def post(self) -> None:
        body = self.parse(WebhookPostBody)
        prefixes = self.ctx.settings.webhook_url_prefixes
        if not any(body.url.startswith(p) for p in prefixes):
            raise InvalidRequest(
                f"'url': webhooks may only point at {', '.join(prefixes)}... "
                "(SKYDRIVER_WEBHOOK_URL_PREFIXES)"
            )
        if body.scan_id is not None:
            await self.ctx.scans.get_manifest(body.scan_id, include_deleted=True)
        me = (await self.current_principal()).subject
        sub = await self.ctx.webhooks.subscribe(body.url, body.scan_id, me, body.secret)
        if body.scan_id is not None:  # a scan's subscriber gets the scan's events from its start
            await self.ctx.webhooks.queue(await self.ctx.scans.events.since(0, body.scan_id), [sub])
        self.send(sub.model_dump(mode="json"))  # the only answer that shows the secret


class WebhookHandler(BaseHandler):
    API = {
        "get": Op("A subscription and its deliveries", responses={404: "not yours or none"}),
        "delete": Op("Unsubscribe", responses={404: "not yours or none"}),
    }

    async def _mine(self, webhook_id: str) -> str:
        sub = await self.ctx.webhooks.get(webhook_id)
        if sub.created_by != (await self.current_principal()).subject:
            raise ScanNotFound("no such webhook subscription")
        return sub.id

    @requires(Role.USER)
    async def get(self, webhook_id: str) -> None:
        sub = await self.ctx.webhooks.get(await self._mine(webhook_id))
        deliveries = await self.ctx.webhooks.deliveries(sub.id)
        self.send({**sub.api_dict(), "deliveries": [d.model_dump(mode="json") for d in deliveries]})

    @requires(Role.USER)
    async def delete(self, webhook_id: str) -> None:
        await self.ctx.webhooks.unsubscribe(await self._mine(webhook_id))
        self.send({})
