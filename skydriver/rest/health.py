"""`GET /healthz`, without a token: what the Kubernetes probes and the Docker HEALTHCHECK ask."""

from __future__ import annotations

import asyncio

from ..auth import public
from .base import BaseHandler
from .openapi import Op

#: how long the database may take to answer the health check's ping
PING_TIMEOUT_S = 5.0


class HealthHandler(BaseHandler):
    API = {
        "get": Op(
            "Health: the database answers and the background runners are alive (no token)",
            responses={503: "unhealthy: the reason is in `checks`"},
            public=True,
        )
    }

    @public
    async def get(self) -> None:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.ctx.db.ping(), PING_TIMEOUT_S)
            checks["database"] = "ok"
        except Exception as e:  # any failure of the ping is "unhealthy", with its reason
            checks["database"] = f"unreachable: {type(e).__name__}"
        for task in self.ctx.background:
            checks[task.get_name()] = "stopped" if task.done() else "ok"
        healthy = all(v == "ok" for v in checks.values()) and bool(self.ctx.background)
        self.send({"healthy": healthy, "checks": checks}, status=200 if healthy else 503)
