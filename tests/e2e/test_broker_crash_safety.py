"""Crash safety of a scan's broker path, through SkyDriver's REST API with every part real (FerretDB,
RabbitMQ, the local launcher, the scanner server, the client manager, workers): a server that dies by an
exception keeps its queues and its restart finishes the scan (audit finding 2); poison on either queue is
dead-lettered and counted; a result the server acknowledged is never lost."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from skydriver.app import SkyDriver
from skymap_scanner.mq import open_publisher, queue_depth, queue_info
from skyscan_contract.queues import from_clients_queue, to_clients_queue
from skyscan_contract.settings import BrokerSettings
from tests.conftest import headers, running_skydriver
from tests.e2e.test_scan_through_rest import (
    _running,
    _worker_pid,
    has_partial_result,
    instance_pids,
    launch,
    scan_broker,
    wait_final,
)
from tests.helpers import check_pixel_selection, result_pixels, wait_for
from tests.integration.test_broker_path import make_task, poison_bodies


# -- a relay between the scan instance and SkyDriver that refuses one result ---------------------------
class Relay:
    """Forwards every request to SkyDriver, except that it answers 409 to the `refuse_at`-th result PUT
    of the kind chosen (a partial or the final result), once."""

    def __init__(self, refuse_final: bool, refuse_at: int) -> None:
        self.target = ""
        self.refuse_final = refuse_final
        self.refuse_at = refuse_at
        self.seen = 0
        self.refused = 0


class _RelayHandler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

    async def _forward(self, *_: str) -> None:
        relay: Relay = self.settings["relay"]
        req = self.request
        if req.method == "PUT" and req.path.endswith("/result"):
            is_final = b'"is_final":true' in req.body.replace(b" ", b"")
            if is_final == relay.refuse_final:
                relay.seen += 1
                if relay.seen == relay.refuse_at and not relay.refused:
                    relay.refused += 1
                    self.set_status(409)
                    self.finish({"code": 409, "error": "refused by the test relay"})
                    return
        passed = {
            k: v for k, v in req.headers.items() if k.lower() in ("authorization", "content-type")
        }
        async with httpx.AsyncClient(timeout=60) as client:
            resp = await client.request(
                req.method or "GET",
                relay.target + req.uri,
                headers=passed,
                content=req.body or None,
            )
        self.set_status(resp.status_code)
        if "content-type" in resp.headers:
            self.set_header("Content-Type", resp.headers["content-type"])
        self.finish(resp.content)

    get = post = put = patch = delete = _forward


@pytest.fixture
async def relayed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Relay, SkyDriver, httpx.AsyncClient]]:
    """SkyDriver whose scan instances reach it through a Relay (its public URL is the relay's)."""
    refuse_final, refuse_at = request.param
    relay = Relay(refuse_final, refuse_at)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(r"/.*", _RelayHandler)], relay=relay)
    )
    server.add_sockets(sockets)
    public_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    try:
        async with running_skydriver(tmp_path, public_url=public_url) as sky:
            relay.target = f"http://127.0.0.1:{sky.port}"
            async with httpx.AsyncClient(
                base_url=relay.target, timeout=30, headers=headers(sky)
            ) as rest:
                yield relay, sky, rest
    finally:
        server.stop()


async def _queues_exist(sky: SkyDriver, scan_id: str) -> bool:
    broker = await scan_broker(sky, scan_id)
    names = (to_clients_queue(scan_id), from_clients_queue(scan_id))
    return all([await queue_depth(broker, name) is not None for name in names])


def _check_every_pixel_once(result: dict[str, Any], manifest: dict[str, Any]) -> None:
    pixels = check_pixel_selection(result, "1:0 2:12 4:12")  # complete, closed, no pixel twice
    tallies = manifest["progress"]["tallies"]["nsides"]
    for nside, ids in pixels.items():
        assert tallies[str(nside)]["pixels"]["generated"] == len(ids)


@pytest.mark.parametrize(
    "relayed",
    [
        pytest.param((False, 2), id="refused-partial-result"),
        pytest.param((True, 1), id="refused-final-result"),
    ],
    indirect=True,
)
async def test_audit_2_server_crash_by_exception_keeps_its_queues(
    relayed: tuple[Relay, SkyDriver, httpx.AsyncClient],
) -> None:
    """SkyDriver refuses a result (409) once: the server raises and exits non-zero. Its queues stay (the
    old server deleted them in a `finally`, and its successor waited on a queue nobody consumed); the
    launcher restarts it, it resumes, the same workers finish the scan, every pixel exactly once."""
    relay, sky, rest = relayed
    scan_id = await launch(rest, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.2})
    scan_dir = sky.settings.state_dir.resolve() / "scans" / scan_id
    pid = (await wait_for(lambda: instance_pids(sky, scan_id), 60, "the instance"))["server"]

    async def crashed() -> bool:
        return not _running(pid)

    await wait_for(crashed, 120, "the server to die of the refused result", interval_s=0.02)
    assert relay.refused == 1
    assert await _queues_exist(sky, scan_id), "the crashed server deleted its queues"

    await wait_final(rest, scan_id)
    server_log = (scan_dir / "server.log").read_text()
    assert "Refused: SkyDriver PUT" in server_log or "409" in server_log
    assert "the scan's queues are kept for its restart" in server_log
    assert "resuming scan" in server_log
    manager_log = (scan_dir / "client-manager.log").read_text()
    assert "replacing it" not in manager_log and manager_log.count("started worker") == 2
    result = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
    manifest = (await rest.get(f"/scan/{scan_id}/manifest")).json()
    _check_every_pixel_once(result, manifest)


async def test_audit_2_poison_on_both_queues_is_dead_lettered_and_counted(
    rest: httpx.AsyncClient, skydriver: SkyDriver
) -> None:
    """Undecodable, invalid, oversized and bomb messages on the task queue and on the result queue, in the
    middle of a scan: it finishes, no worker dies and the server is not restarted, and the progress
    counts each of them as a dead letter."""
    scan_id = await launch(rest, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.3})
    scan_dir = skydriver.settings.state_dir.resolve() / "scans" / scan_id
    await wait_for(lambda: has_partial_result(rest, scan_id), 60, "a partial result")
    poison = poison_bodies(scan_id)
    broker = await scan_broker(skydriver, scan_id)  # what a worker of this scan could send
    for queue in (to_clients_queue(scan_id), from_clients_queue(scan_id)):
        async with open_publisher(broker, queue) as pub:
            for body in poison.values():
                await pub.send_raw(body, {})
    async with open_publisher(broker, to_clients_queue(scan_id)) as pub:
        await pub.send(make_task("another-scan", 1))
    n_poison = 2 * len(poison) + 1

    await wait_final(rest, scan_id)

    async def final_progress() -> dict[str, Any] | None:
        manifest: dict[str, Any] = (await rest.get(f"/scan/{scan_id}/manifest")).json()
        return manifest if manifest["progress"]["processing_stats"].get("finished") else None

    manifest = await wait_for(final_progress, 30, "the final progress report")
    dead = manifest["progress"]["dead_letters"]
    assert dead["count"] == n_poison, dead
    assert {e["queue"] for e in dead["last"]} == {
        to_clients_queue(scan_id),
        from_clients_queue(scan_id),
    }
    assert all(e["reason"] and "pixel" not in e for e in dead["last"])
    manager_log = (scan_dir / "client-manager.log").read_text()
    assert "replacing it" not in manager_log and manager_log.count("started worker") == 2
    assert "resuming scan" not in (scan_dir / "server.log").read_text()
    result = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
    _check_every_pixel_once(result, manifest)


async def _ready_and_consumers(broker: BrokerSettings, name: str) -> tuple[int, int]:
    """(messages ready, consumers) of a queue. (RabbitMQ's own listing does not count a quorum queue's
    unacknowledged messages in time; what a consumer's death returns to `ready` is exact.)"""
    info = await queue_info(broker, name)
    assert info is not None, f"{name} is gone"
    return info


def _reconstructions(scan_dir: Path) -> dict[int, int]:
    """How often each pixel's result was published (the workers' 'acked pixel' lines; nside 4)."""
    counts: dict[int, int] = {}
    for log in scan_dir.glob("workers/*.log"):
        for match in re.finditer(r"acked pixel \(4, (\d+), 0\)", log.read_text()):
            counts[int(match.group(1))] = counts.get(int(match.group(1)), 0) + 1
    return counts


async def test_audit_2_acknowledged_results_survive_a_server_sigkill(
    rest: httpx.AsyncClient, skydriver: SkyDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers are paused mid-scan; once the server has taken every result they published, it is
    SIGKILLed. Every published result that is not in the result SkyDriver holds must still have been
    unacknowledged (the broker gives it back: it is `ready` again once the server is gone). Before, results
    were acked as they arrived and persisted only every SKYSCAN_RESULT_INTERVAL_SEC, so a crash lost
    acknowledged results and they were reconstructed again. After the restart the scan completes, and no
    persisted pixel is reconstructed a second time (only unacknowledged ones may be)."""
    monkeypatch.setenv("SKYSCAN_LOG", "DEBUG")  # workers log each pixel they publish and ack
    scan_id = await launch(
        rest, nsides={"4": 0}, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.05}
    )
    scan_dir = skydriver.settings.state_dir.resolve() / "scans" / scan_id
    results = from_clients_queue(scan_id)

    async def mid_scan() -> list[int] | None:
        result = (await rest.get(f"/scan/{scan_id}/result")).json()
        rows = result.get("skyscan_result", {}).get("nside-4", {}).get("data", [])
        workers = [_worker_pid(scan_dir, i) for i in (0, 1)]
        if len(rows) >= 20 and not result["is_final"] and all(workers):
            return [w for w in workers if w]
        return None

    workers = await wait_for(mid_scan, 90, "a partial result of 20 pixels", interval_s=0.05)
    server = (await instance_pids(skydriver, scan_id))["server"]
    broker = await scan_broker(skydriver, scan_id)
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:

        async def all_taken() -> bool:
            return (await _ready_and_consumers(broker, results))[0] == 0

        await wait_for(all_taken, 60, "the server to take every published result")
        os.kill(server, signal.SIGKILL)

        async def server_gone() -> tuple[int, int] | None:
            ready, consumers = await _ready_and_consumers(broker, results)
            return (ready, consumers) if consumers == 0 else None

        given_back, _ = await wait_for(server_gone, 30, "the broker to see the server gone", 0.01)
        published = set(_reconstructions(scan_dir))
        stored = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
        persisted = set(result_pixels(stored)[4])
        not_persisted = published - persisted
        assert len(not_persisted) <= given_back, (
            f"{len(not_persisted)} published results are not persisted, but only {given_back} were "
            "still unacknowledged: the server acknowledged results it had not persisted"
        )
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)

    await wait_final(rest, scan_id)
    final = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
    assert persisted <= set(result_pixels(final)[4])
    check_pixel_selection(final, "4:0")
    assert "resuming scan" in (scan_dir / "server.log").read_text()
    counts = _reconstructions(scan_dir)
    assert {p: counts[p] for p in published & persisted if counts[p] != 1} == {}
