"""The route table."""

from __future__ import annotations

from typing import Any

from .base import AppContext
from .results import BacklogHandler, ResultHandler, RootHandler, WorkforceHandler
from .scans import (
    I3EventHandler,
    ManifestHandler,
    ScanHandler,
    ScanLaunchHandler,
    StatusHandler,
)

SCAN = r"/scan/(?P<scan_id>\w+)"


def routes(ctx: AppContext) -> list[tuple[str, Any, dict[str, Any]]]:
    args = {"ctx": ctx}
    return [
        (r"/", RootHandler, args),
        (r"/scan", ScanLaunchHandler, args),
        (r"/scans/backlog", BacklogHandler, args),
        (SCAN, ScanHandler, args),
        (SCAN + r"/manifest", ManifestHandler, args),
        (SCAN + r"/i3-event", I3EventHandler, args),
        (SCAN + r"/status", StatusHandler, args),
        (SCAN + r"/result", ResultHandler, args),
        (SCAN + r"/workforce", WorkforceHandler, args),
    ]
