"""Push instead of poll, against a real SkyDriver running real scans: the server-sent event stream of a scan
(resumed with Last-Event-ID, nothing lost or repeated), signed webhooks delivered in order and at least once
through a receiver that fails at first, ETags (304) on status, manifest and result, and CORS."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import tornado.httpserver
import tornado.netutil
import tornado.web

from skydriver.app import SkyDriver
from tests.conftest import headers, running_skydriver
from tests.helpers import scan_body, wait_for

SMALL = {"nsides": {"1": 0, "2": 12}, "scanner_server_env": {"SKYSCAN_DUMMY_SLEEP_S": 0.05}}
TERMINAL = {"final_result", "failed", "deleted"}


async def read_events(
    client: httpx.AsyncClient, path: str, last_id: int | None = None, stop_after: int | None = None
) -> list[dict[str, Any]]:
    """Events of a stream (id, event, data) until it ends, or until `stop_after` events (then the
    client hangs up)."""
    hdrs = {} if last_id is None else {"Last-Event-ID": str(last_id)}
    events: list[dict[str, Any]] = []
    async with client.stream("GET", path, headers=hdrs, timeout=120) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        current: dict[str, Any] = {}
        async for line in resp.aiter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and "id" in current:
                events.append(current)
                current = {}
                if stop_after is not None and len(events) >= stop_after:
                    break
    return events


async def test_a_client_that_reconnects_with_last_event_id_misses_nothing(tmp_path: Path) -> None:
    async with running_skydriver(tmp_path) as sky:
        async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as client:
            scan_id = (await client.post("/scan", json=scan_body(**SMALL))).json()["scan_id"]
            path = f"/scan/{scan_id}/events"
            first = await read_events(client, path, stop_after=2)  # then the client drops
            assert [e["event"] for e in first] == ["queued", "started"]
            rest = await read_events(client, path, last_id=first[-1]["id"])  # to the end
            seen = first + rest
            everything = await read_events(client, path, last_id=0)  # a fresh reader, after the end
    ids = [e["id"] for e in seen]
    assert ids == sorted(set(ids))  # in order, none twice
    assert seen == everything  # and none missing
    kinds = [e["event"] for e in seen]
    assert kinds[-1] == "final_result" and kinds.count("final_result") == 1
    assert {"queued", "started", "nside_finished", "partial_result"} <= set(kinds)
    assert [e["data"]["nside"] for e in seen if e["event"] == "nside_finished"] == [1, 2]
    assert all(e["data"]["scan_id"] == scan_id for e in seen)


class Receiver:
    """A pipeline's webhook endpoint on 127.0.0.1 that refuses the first `fail_first` deliveries."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.received: list[tuple[dict[str, str], bytes, int]] = []  # headers, body, our answer

    def app(self) -> tornado.web.Application:
        receiver = self

        class Hook(tornado.web.RequestHandler):
            def post(self) -> None:
                code = 503 if len(receiver.received) < receiver.fail_first else 200
                receiver.received.append((dict(self.request.headers), self.request.body, code))
                self.set_status(code)

        return tornado.web.Application([(r"/hook", Hook)])


async def serve(app: tornado.web.Application) -> AsyncIterator[str]:
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    try:
        yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hook"
    finally:
        server.stop()


async def test_webhooks_arrive_in_order_signed_once_per_key_despite_failures(
    tmp_path: Path,
) -> None:
    receiver = Receiver(fail_first=2)
    async for url in serve(receiver.app()):
        async with running_skydriver(
            tmp_path, webhook_backoff_s=0.2, webhook_poll_interval_s=0.2
        ) as sky:
            await _webhook_flow(sky, url, receiver)


async def _webhook_flow(sky: SkyDriver, url: str, receiver: Receiver) -> None:
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as client:
        scan_id = (await client.post("/scan", json=scan_body(**SMALL))).json()["scan_id"]
        resp = await client.post("/webhooks", json={"url": url, "scan_id": scan_id})
        assert resp.status_code == 200, resp.text
        hook = resp.json()
        secret = hook["secret"]
        assert "secret" not in (await client.get(f"/webhooks/{hook['id']}")).json()

        async def all_delivered() -> dict[str, Any] | None:
            state = (await client.get(f"/webhooks/{hook['id']}")).json()
            kinds = [d["type"] for d in state["deliveries"]]
            done = all(d["state"] == "delivered" for d in state["deliveries"])
            return state if "final_result" in kinds and done else None

        state = await wait_for(all_delivered, 120, "every event delivered to the webhook")
        events = (await client.get(f"/scan/{scan_id}/events?last_event_id=0")).text
    # the delivery state is visible: the first one needed three attempts
    first = state["deliveries"][0]
    assert (first["type"], first["attempts"], first["state"]) == ("queued", 3, "delivered")
    assert all(d["attempts"] == 1 for d in state["deliveries"][1:])
    # what the receiver got: every event, in order, each accepted once per idempotency key
    accepted = [(h, b) for h, b, code in receiver.received if code == 200]
    keys = [h["Idempotency-Key"] for h, _ in accepted]
    assert len(keys) == len(set(keys))
    bodies = [json.loads(b) for _, b in accepted]
    seqs = [b["seq"] for b in bodies]
    assert seqs == sorted(seqs)
    assert [b["event"] for b in bodies] == [d["type"] for d in state["deliveries"]]
    assert f"id: {seqs[-1]}" in events  # the same events as the stream
    retried = [h["Idempotency-Key"] for h, _, code in receiver.received[:3]]
    assert len(set(retried)) == 1  # the failed attempts were the same event, same key
    # every delivery is signed with the subscription's secret
    for hdrs, body, _ in receiver.received:
        parts = dict(p.split("=", 1) for p in hdrs["X-Skydriver-Signature"].split(","))
        expected = hmac.new(
            secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(parts["v1"], expected)


async def test_webhooks_only_to_allowed_urls(tmp_path: Path) -> None:
    async with running_skydriver(tmp_path) as sky:
        async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as client:
            resp = await client.post("/webhooks", json={"url": "http://169.254.169.254/latest"})
    assert resp.status_code == 400 and "SKYDRIVER_WEBHOOK_URL_PREFIXES" in resp.json()["error"]


async def test_status_manifest_and_result_answer_304_when_unchanged(
    api: httpx.AsyncClient, held_skydriver: SkyDriver
) -> None:
    scan_id = (await api.post("/scan", json=scan_body())).json()["scan_id"]
    for path in (f"/scan/{scan_id}/manifest", f"/scan/{scan_id}/result"):
        first = await api.get(path)
        etag = first.headers["ETag"]
        assert (await api.get(path, headers={"If-None-Match": etag})).status_code == 304
        assert (await api.get(path, headers={"If-None-Match": '"other"'})).status_code == 200
    status = await api.get(f"/scan/{scan_id}/status")
    again = await api.get(
        f"/scan/{scan_id}/status", headers={"If-None-Match": status.headers["ETag"]}
    )
    assert again.status_code == 304
    # a change makes a new ETag
    await api.delete(f"/scan/{scan_id}")
    changed = await api.get(
        f"/scan/{scan_id}/status", headers={"If-None-Match": status.headers["ETag"]}
    )
    assert changed.status_code == 200 and changed.json()["is_deleted"] is True


async def test_cors_only_for_configured_origins(tmp_path: Path) -> None:
    origin = "https://dashboard.example"
    async with running_skydriver(tmp_path, cors_origins=[origin]) as sky:
        async with httpx.AsyncClient(base_url=sky.settings.url) as anon:
            pre = await anon.options(
                "/scans/find",
                headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            )
            assert pre.status_code == 204
            assert pre.headers["Access-Control-Allow-Origin"] == origin
            assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
            other = await anon.options("/scans/find", headers={"Origin": "https://evil.example"})
            assert "Access-Control-Allow-Origin" not in other.headers
            got = await anon.get("/healthz", headers={"Origin": origin})
            assert got.headers["Access-Control-Allow-Origin"] == origin
