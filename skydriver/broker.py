"""Broker credentials of each scan: SkyDriver gives every scan instance its own RabbitMQ virtual host and
user, so a worker of one scan cannot read, publish to or delete another scan's queues, and removes both
when the scan's instance has ended (which also removes whatever queues are left).

RabbitMQ's management HTTP API does the work (`SKYDRIVER_BROKER_MANAGEMENT_URL`); each scan's vhost also
gets a policy that backs the scanner's own attempt counter: a message the broker has delivered
`broker_delivery_limit` times (its consumers kept dying on it) is dead-lettered to the scan's dead-letter
queue, where the scanner server counts it (and fails its pixel) instead of waiting for it forever.

Where per-scan accounts are off (an empty management URL, or a broker that is not RabbitMQ), every
instance gets SkyDriver's own broker address and password (`SharedBrokerAccounts`)."""

from __future__ import annotations

import logging
import secrets
import urllib.parse
from dataclasses import dataclass
from typing import Protocol

import httpx

from skyscan_contract.errors import LaunchError
from skyscan_contract.queues import (
    QUEUE_PREFIXES,
    dead_letters_queue,
    scan_user,
    scan_vhost,
)

from .settings import Settings

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerAccess:
    """What a scan instance (and its workers) connect with: `[user@]host[:port][/vhost]` and a password."""

    address: str = ""
    password: str = ""

    def __repr__(self) -> str:  # never the password
        return f"BrokerAccess(address={self.address!r})"


class BrokerAccounts(Protocol):
    async def create(self, scan_id: str) -> BrokerAccess:
        """The scan's own access (idempotent: a second call gives a new password)."""
        ...

    async def remove(self, scan_id: str) -> None:
        """Remove the scan's access and whatever it left on the broker (idempotent)."""
        ...

    async def scans_with_access(self) -> list[str]:
        """The scans that have an access now (for the start-up clean-up of what a crash left)."""
        ...

    async def close(self) -> None: ...


class SharedBrokerAccounts:
    """Every scan uses SkyDriver's own broker address and password (no isolation between scans)."""

    def __init__(self, settings: Settings) -> None:
        self.access = BrokerAccess(settings.broker_address, settings.broker_auth.get_secret_value())

    async def create(self, scan_id: str) -> BrokerAccess:
        return self.access

    async def remove(self, scan_id: str) -> None:
        pass

    async def scans_with_access(self) -> list[str]:
        return []

    async def close(self) -> None:
        pass


def scan_address(broker_address: str, scan_id: str) -> str:
    """SkyDriver's broker address with the scan's user and vhost: `user@host[:port]/vhost`."""
    parsed = urllib.parse.urlparse(
        broker_address if "://" in broker_address else "//" + broker_address
    )
    host = parsed.hostname or "localhost"
    netloc = f"{host}:{parsed.port}" if parsed.port else host
    return f"{scan_user(scan_id)}@{netloc}/{scan_vhost(scan_id)}"


class RabbitMQAccounts:
    """A vhost, a user allowed only there, and the dead-letter policy, per scan (management API)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = httpx.AsyncClient(
            base_url=settings.broker_management_url.rstrip("/"),
            auth=(
                settings.broker_management_user,
                settings.broker_management_password.get_secret_value(),
            ),
            timeout=settings.broker_management_timeout_s,
        )

    async def _call(self, method: str, path: str, json: object = None) -> None:
        what = f"{method} {path}"
        try:
            resp = await self.client.request(method, path, json=json)
        except httpx.HTTPError as e:
            raise LaunchError(
                f"the broker's management API did not answer {what}: {e} "
                "(SKYDRIVER_BROKER_MANAGEMENT_URL)",
                reason="unreachable",
            ) from e
        if resp.status_code == 404 and method == "DELETE":
            return  # gone already
        if resp.status_code >= 300:
            raise LaunchError(
                f"the broker refused {what}: HTTP {resp.status_code} {resp.text[:300]} "
                "(SKYDRIVER_BROKER_MANAGEMENT_USER needs the administrator tag)",
                reason="unreachable",
            )

    async def create(self, scan_id: str) -> BrokerAccess:
        vhost, user = quote(scan_vhost(scan_id)), quote(scan_user(scan_id))
        password = secrets.token_urlsafe(24)
        await self._call(
            "PUT", f"/api/vhosts/{vhost}", {"description": f"SkyDriver scan {scan_id}"}
        )
        await self._call("PUT", f"/api/users/{user}", {"password": password, "tags": ""})
        everything = {"configure": ".*", "write": ".*", "read": ".*"}  # in its own vhost only
        await self._call("PUT", f"/api/permissions/{vhost}/{user}", everything)
        await self._call(
            "PUT",
            f"/api/policies/{vhost}/skyscan-dead-letters",
            {
                "pattern": "^(" + "|".join(QUEUE_PREFIXES[:2]) + ")",
                "apply-to": "queues",
                "definition": {
                    "delivery-limit": self.settings.broker_delivery_limit,
                    "dead-letter-exchange": "",
                    "dead-letter-routing-key": dead_letters_queue(scan_id),
                },
            },
        )
        LOG.info("scan %s: broker vhost and user created", scan_id)
        return BrokerAccess(scan_address(self.settings.broker_address, scan_id), password)

    async def remove(self, scan_id: str) -> None:
        await self._call("DELETE", f"/api/vhosts/{quote(scan_vhost(scan_id))}")
        await self._call("DELETE", f"/api/users/{quote(scan_user(scan_id))}")
        LOG.info("scan %s: broker vhost and user removed", scan_id)

    async def scans_with_access(self) -> list[str]:
        try:
            resp = await self.client.get("/api/vhosts", params={"columns": "name"})
            resp.raise_for_status()
        except httpx.HTTPError as e:
            LOG.warning("cannot list the broker's vhosts: %s", e)
            return []
        prefix = scan_vhost("")
        return [v["name"][len(prefix) :] for v in resp.json() if v["name"].startswith(prefix)]

    async def close(self) -> None:
        await self.client.aclose()


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def planned_address(settings: Settings, scan_id: str) -> str:
    """The broker address a scan's instance will get (for dry runs: no account is made)."""
    if uses_scan_accounts(settings):
        return scan_address(settings.broker_address, scan_id)
    return settings.broker_address


def uses_scan_accounts(settings: Settings) -> bool:
    return settings.broker_type == "rabbitmq" and bool(settings.broker_management_url)


def broker_accounts(settings: Settings) -> BrokerAccounts:
    """Per-scan accounts where the broker allows them (RabbitMQ with a management URL), else shared."""
    if uses_scan_accounts(settings):
        return RabbitMQAccounts(settings)
    return SharedBrokerAccounts(settings)
