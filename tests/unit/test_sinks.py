"""The scanner server's SkyDriver sink: a final result it cannot deliver yet is retried, and says so."""

from __future__ import annotations

import logging
import socket

import pytest
import tornado.web
from tornado.httpserver import HTTPServer

from skymap_scanner.server.sinks import SkyDriverSink


class FlakyResult(tornado.web.RequestHandler):
    """PUT /scan/{id}/result: 503 twice, then 200."""

    calls = 0

    def put(self, scan_id: str) -> None:
        FlakyResult.calls += 1
        if FlakyResult.calls <= 2:
            self.set_status(503)
            self.finish({"error": "busy"})
        else:
            self.finish({"scan_id": scan_id})


async def test_a_final_result_is_retried_and_every_failed_attempt_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The final result is urgent: the sink retries it with backoff (for up to an hour by default)
    and logs each failed attempt, so that a server waiting on SkyDriver does not look hung (a CI
    run's restarted server finished its scan and then printed nothing while it waited)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = HTTPServer(tornado.web.Application([(r"/scan/([^/]+)/result", FlakyResult)]))
    server.listen(port, address="127.0.0.1")
    sink = SkyDriverSink(f"http://127.0.0.1:{port}", "token", "abc", urgent_retry_s=60)
    try:
        with caplog.at_level(logging.WARNING, logger="skymap_scanner.server.sinks"):
            await sink.result({"nside-1": {}}, is_final=True, urgent=True)
    finally:
        await sink.aclose()
        server.stop()
    assert FlakyResult.calls == 3
    retries = [r.getMessage() for r in caplog.records if "again in" in r.getMessage()]
    assert len(retries) == 2, retries
    assert all("PUT /scan/abc/result" in m and "503" in m for m in retries)
