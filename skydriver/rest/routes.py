"""The route table."""

from __future__ import annotations

from typing import Any

from ..auth import public
from .actions import AddWorkersHandler, RescanHandler
from .base import AppContext, BaseHandler
from .events import AllEventsHandler, ScanEventsHandler
from .find import BacklogHandler, FindHandler, ScanRequestHandler
from .health import HealthHandler
from .manifest import I3EventHandler, LogsHandler, ManifestHandler, StatusHandler
from .openapi import build_openapi
from .results import ResultHandler, RootHandler, WorkforceHandler
from .scans import ScanHandler, ScanLaunchHandler
from .webhooks import WebhookHandler, WebhooksHandler

SCAN = r"/scan/(?P<scan_id>\w+)"
API_VERSION = "2.x"

ROUTES: list[tuple[str, type]] = [
    (r"/", RootHandler),
    (r"/healthz", HealthHandler),
    (r"/scan", ScanLaunchHandler),
    (r"/scans/find", FindHandler),
    (r"/scans/backlog", BacklogHandler),
    (r"/scans/events", AllEventsHandler),
    (r"/webhooks", WebhooksHandler),
    (r"/webhooks/(?P<webhook_id>\w+)", WebhookHandler),
    (r"/scan-request/(?P<scan_id>\w+)", ScanRequestHandler),
    (SCAN, ScanHandler),
    (SCAN + r"/manifest", ManifestHandler),
    (SCAN + r"/i3-event", I3EventHandler),
    (SCAN + r"/status", StatusHandler),
    (SCAN + r"/events", ScanEventsHandler),
    (SCAN + r"/logs", LogsHandler),
    (SCAN + r"/result", ResultHandler),
    (SCAN + r"/workforce", WorkforceHandler),
    (SCAN + r"/actions/rescan", RescanHandler),
    (SCAN + r"/actions/add-workers", AddWorkersHandler),
]


def openapi_document() -> dict[str, Any]:
    return build_openapi(ROUTES, API_VERSION)


class OpenAPIHandler(BaseHandler):
    """GET /openapi.json: the document generated from the routes and models (no auth needed)."""

    @public
    async def get(self) -> None:
        self.send(openapi_document())


def routes(ctx: AppContext) -> list[tuple[str, Any, dict[str, Any]]]:
    table = [*ROUTES, (r"/openapi.json", OpenAPIHandler)]
    return [(pattern, handler, {"ctx": ctx}) for pattern, handler in table]


if __name__ == "__main__":  # regenerate the committed copy: python -m skydriver.rest.routes
    import json
    from pathlib import Path

    out = Path(__file__).resolve().parents[1] / "openapi.json"
    out.write_text(json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n")
