"""Puts SkyDriver together: database, stores, launcher, background runners and the REST server."""

from __future__ import annotations

import asyncio
import errno
import logging
from dataclasses import dataclass, field

import pymongo.errors
import tornado.httpserver
import tornado.netutil
import tornado.web

from .auth import AuthSettings, LocalKeyAuthenticator, Role, build_authenticator
from .broker import BrokerAccounts, broker_accounts
from .errors import ServiceStartError
from .launch.base import Launcher
from .launch.registry import LAUNCHER_NAMES, builtin_launcher, launcher_factory
from .rest.base import AppContext, NotFoundHandler
from .rest.routes import routes
from .runners.backlog import BacklogRunner
from .runners.instances import InstanceWatcher
from .runners.reconcile import reconcile
from .runners.webhooks import WebhookRunner
from .settings import Settings
from .store.backlog import BacklogStore
from .store.db import Database, connect, redacted_uri
from .store.scans import ScanStore
from .store.webhooks import WebhookStore

LOG = logging.getLogger(__name__)


@dataclass
class SkyDriver:
    settings: Settings
    db: Database
    server: tornado.httpserver.HTTPServer
    port: int
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    watcher: InstanceWatcher | None = None
    token_issuer: LocalKeyAuthenticator | None = None
    broker: BrokerAccounts | None = None

    async def stop(self, stop_instances: bool = True) -> None:
        self.server.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if stop_instances and self.watcher is not None:
            await self.watcher.stop_all()
        if self.broker is not None:
            await self.broker.close()
        await self.db.close()


def make_app(ctx: AppContext) -> tornado.web.Application:
    return tornado.web.Application(
        routes(ctx),
        default_handler_class=NotFoundHandler,
        default_handler_args={"ctx": ctx},
    )


async def start(
    settings: Settings,
    launchers_by_name: dict[str, type[Launcher]] | None = None,
    auth_settings: AuthSettings | None = None,
) -> SkyDriver:
    """Start everything; returns once the REST server listens. `launchers_by_name` replaces the
    registry of launchers (tests inject doubles this way, not through settings)."""
    auth_settings = auth_settings or AuthSettings()
    authenticator = build_authenticator(auth_settings, settings.state_dir)
    issuer = authenticator if isinstance(authenticator, LocalKeyAuthenticator) else None
    names: tuple[str, ...] = LAUNCHER_NAMES
    if launchers_by_name is None:
        launcher_cls = builtin_launcher(settings.launcher)
    else:
        launcher_cls, names = launchers_by_name.get(settings.launcher), tuple(launchers_by_name)
    if launcher_cls is None:
        raise ServiceStartError(
            f"SKYDRIVER_LAUNCHER={settings.launcher!r} is unknown (available: {', '.join(names)})"
        )
    try:
        sockets = tornado.netutil.bind_sockets(settings.port, settings.host)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ServiceStartError(
                f"port {settings.port} on {settings.host} is taken: stop what listens there, or "
                "choose another port (SKYDRIVER_PORT or `skydriver serve --port N`)"
            ) from None
        raise
    settings = settings.model_copy(update={"port": sockets[0].getsockname()[1]})
    db = connect(settings.mongodb_uri, settings.mongodb_database)
    try:
        await db.ensure_indexes()
    except pymongo.errors.ConnectionFailure:
        for sock in sockets:
            sock.close()
        await db.close()
        raise ServiceStartError(
            f"the database at {redacted_uri(settings.mongodb_uri)} does not answer (MONGODB_URI): "
            "start it (on one machine: `make up`) or point MONGODB_URI at it"
        ) from None
    scans, backlog = ScanStore(db, settings.read_cache_ttl_s), BacklogStore(db)

    launchers: dict[str, Launcher] = {}
    make_launcher = launcher_factory(settings, launcher_cls)

    def instance_token(scan_id: str) -> str:
        """A system token scoped to one scan, minted at launch (not at enqueue: backlogs can be long)."""
        if issuer is None:
            return ""  # OpenID mode: production mints with Keycloak client credentials (not here)
        return issuer.issue_token(
            Role.SYSTEM,
            subject=f"scan-instance:{scan_id}",
            ttl_s=auth_settings.system_token_ttl_s,
            scan_id=scan_id,
        )

    broker = broker_accounts(settings)
    await reconcile(scans, backlog, broker)
    runner = BacklogRunner(
        settings, scans, backlog, make_launcher, launchers, instance_token, broker
    )
    watcher = InstanceWatcher(settings, scans, make_launcher, launchers, broker)
    background: list[asyncio.Task[None]] = []
    webhooks = WebhookStore(db)
    ctx = AppContext(settings, scans, backlog, runner.wake, authenticator, db, webhooks, background)
    server = tornado.httpserver.HTTPServer(
        make_app(ctx),
        max_body_size=settings.max_request_body_bytes,
        body_timeout=settings.request_body_timeout_s,
        idle_connection_timeout=settings.idle_connection_timeout_s,
    )
    server.add_sockets(sockets)
    sky = SkyDriver(
        settings, db, server, settings.port, watcher=watcher, token_issuer=issuer, broker=broker
    )
    background += [
        asyncio.create_task(runner.run_forever(), name="backlog-runner"),
        asyncio.create_task(watcher.run_forever(), name="instance-watcher"),
        asyncio.create_task(
            WebhookRunner(settings, scans.events, webhooks).run_forever(), name="webhook-runner"
        ),
    ]
    sky.tasks = background
    LOG.debug("SkyDriver listening on %s", settings.url)  # `skydriver serve` prints it
    return sky
