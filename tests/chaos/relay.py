"""A relay between scan instances and SkyDriver (SkyDriver's public URL is the relay's): it forwards every
request, answers 502 while SkyDriver is down (as a load balancer in front of a restarting service does), and
can make one scanner server die by an exception: armed for a scan, it refuses that scan's next result PUT
with a 409, on which the server raises (`Refused`) and exits non-zero, a crash that keeps the queues."""

from __future__ import annotations

import logging

import httpx
import tornado.httpserver
import tornado.netutil
import tornado.web

LOG = logging.getLogger(__name__)


class Relay:
    def __init__(self) -> None:
        self.target = ""
        self.armed: set[str] = set()
        self.refused: list[str] = []
        self.client = httpx.AsyncClient(timeout=60)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = int(sockets[0].getsockname()[1])
        self.server = tornado.httpserver.HTTPServer(
            tornado.web.Application(
                [(r"/.*", _RelayHandler)], relay=self, log_function=lambda _: None
            )
        )
        self.server.add_sockets(sockets)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arm(self, scan_id: str) -> None:
        """Refuse the next result PUT of this scan (once)."""
        self.armed.add(scan_id)

    async def close(self) -> None:
        self.server.stop()
        await self.client.aclose()


class _RelayHandler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

    async def _forward(self, *_: str) -> None:
        relay: Relay = self.settings["relay"]
        req = self.request
        parts = req.path.strip("/").split("/")
        if req.method == "PUT" and len(parts) == 3 and parts[0] == "scan" and parts[2] == "result":
            if parts[1] in relay.armed:
                relay.armed.discard(parts[1])
                relay.refused.append(parts[1])
                self.set_status(409)
                self.finish({"code": 409, "error": "refused by the chaos relay"})
                return
        passed = {
            k: v for k, v in req.headers.items() if k.lower() in ("authorization", "content-type")
        }
        try:
            resp = await relay.client.request(
                req.method or "GET", relay.target + req.uri, headers=passed, content=req.body
            )
        except httpx.HTTPError as e:
            self.set_status(502)
            self.finish({"code": 502, "error": f"SkyDriver unreachable: {e}"})
            return
        self.set_status(resp.status_code)
        if "content-type" in resp.headers:
            self.set_header("Content-Type", resp.headers["content-type"])
        self.finish(resp.content)

    get = post = put = patch = delete = _forward
