"""Puts SkyDriver together: database, stores, launcher, background runners and the REST server."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from dataclasses import dataclass, field

import pymongo.errors
import tornado.httpserver
import tornado.netutil
import tornado.web

from .auth import AuthSettings, LocalKeyAuthenticator, Role, build_authenticator
from .broker import BrokerAccounts, broker_accounts
from .dashboard.levels import levels
from .dashboard.sessions import SessionStore
from .dashboard.signin import CALLBACK_PATH, LocalSignIn, OpenIDSignIn, SignIn
from .errors import ServiceStartError
from .launch.base import Launcher
from .launch.registry import LAUNCHER_NAMES, builtin_launcher, launcher_factory
from .rest.base import AppContext, NotFoundHandler
from .rest.routes import routes
from .runners.backlog import BacklogRunner
from .runners.instances import InstanceWatcher
from .runners.products import ProductsRunner
from .runners.reconcile import reconcile
from .runners.webhooks import WebhookRunner
from .settings import Settings
from .store.backlog import BacklogStore
from .store.db import Database, connect, redacted_uri
from .store.products import ProductStore
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
    products: ProductsRunner | None = None

    async def stop(self, stop_instances: bool = True) -> None:
        self.server.stop()
        # open connections (event streams) end now, not after the database is gone
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.close_all_connections(), 5)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.products is not None:
            await self.products.close()
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
    products = ProductStore(db)
    product_builds = ProductsRunner(settings, scans, products)
    background: list[asyncio.Task[None]] = []
    webhooks = WebhookStore(db)
    sessions = SessionStore(db, public_url=settings.url, ttl_s=auth_settings.session_ttl_s)
    await sessions.ensure_indexes()
    signin: SignIn
    if issuer is not None:
        signin = LocalSignIn(issuer)
    else:
        signin = OpenIDSignIn(
            auth_settings.openid_url,
            authenticator,
            client_id=auth_settings.openid_client_id,
            client_secret=auth_settings.openid_client_secret.get_secret_value(),
            scopes=auth_settings.openid_scopes,
            redirect_uri=settings.url + CALLBACK_PATH,
            timeout_s=auth_settings.openid_fetch_timeout_s,
        )
    levels()  # read once at start-up: a products module that changed shape stops SkyDriver here
    ctx = AppContext(
        settings,
        scans,
        backlog,
        runner.wake,
        authenticator,
        db,
        webhooks,
        products,
        product_builds,
        background,
        sessions=sessions,
        signin=signin,
    )
    server = tornado.httpserver.HTTPServer(
        make_app(ctx),
        max_body_size=settings.max_request_body_bytes,
        body_timeout=settings.request_body_timeout_s,
        idle_connection_timeout=settings.idle_connection_timeout_s,
    )
    server.add_sockets(sockets)
    sky = SkyDriver(
        settings,
        db,
        server,
        settings.port,
        watcher=watcher,
        token_issuer=issuer,
        broker=broker,
        products=product_builds,
    )
    background += [
        asyncio.create_task(runner.run_forever(), name="backlog-runner"),
        asyncio.create_task(watcher.run_forever(), name="instance-watcher"),
        asyncio.create_task(
            WebhookRunner(settings, scans.events, webhooks).run_forever(), name="webhook-runner"
        ),
        asyncio.create_task(product_builds.run_forever(), name="products-runner"),
    ]
    sky.tasks = background
    LOG.debug("SkyDriver listening on %s", settings.url)  # `skydriver serve` prints it
    return sky
