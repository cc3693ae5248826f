"""Regression tests of what the chaos test (tests/chaos/) found, each reproduced on its own against the real
FerretDB and RabbitMQ: concurrent scan events drew the same sequence number on FerretDB (a result PUT
answered 500); a scanner server or worker started while the broker was down exited at once (and used up
its restarts); a server out of restarts left its workers running for ever (the scan never ended)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from skydriver.app import SkyDriver
from skydriver.store.db import connect
from skydriver.store.events import EventStore
from skymap_scanner.mq import BrokerUnavailable, open_publisher
from skyscan_contract.documents import ScanEventType
from skyscan_contract.queues import scan_user, scan_vhost
from skyscan_contract.settings import BrokerSettings
from tests.conftest import BROKER_ADDRESS, MONGODB_URI, headers, running_skydriver
from tests.e2e.test_scan_through_rest import _running, _worker_pid, instance_pids, launch
from tests.helpers import broker_users, broker_vhosts, wait_for


async def test_concurrent_scan_events_get_distinct_sequence_numbers() -> None:
    db = connect(MONGODB_URI, f"test_{uuid.uuid4().hex[:12]}")
    try:
        await db.ensure_indexes()
        events = EventStore(db)
        appended = await asyncio.gather(
            *(events.append(f"scan{i % 5}", ScanEventType.PARTIAL_RESULT) for i in range(60))
        )
        assert sorted(e.seq for e in appended) == list(range(1, 61))
    finally:
        await db.client.drop_database(db.db.name)
        await db.close()


class _LateBroker:
    """A TCP port that forwards to the real broker only from `open_at` on (before: nothing listens)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def open(self, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker_port() -> int:
    _, _, port = BROKER_ADDRESS.rpartition(":")
    return int(port) if port.isdigit() else 5672


async def test_a_first_broker_connection_waits_for_the_broker() -> None:
    """The broker is not there yet when a server or worker starts (it restarts): the first connection is
    tried again until the broker answers, within `broker_outage_timeout_s`; after it, a clear error."""
    port = _free_port()
    late = _LateBroker(_broker_port())
    broker = BrokerSettings(broker_address=f"guest:guest@localhost:{port}")
    queue = f"test-late-{uuid.uuid4().hex[:8]}"

    async def publish() -> None:
        async with open_publisher(broker, queue) as pub:
            await pub.send_raw(b"x", {})

    started = time.monotonic()
    attempt = asyncio.create_task(publish())
    await asyncio.sleep(2.5)  # the outage being simulated: nothing listens for 2.5 s
    assert not attempt.done(), "the first connection gave up while the broker was away"
    await late.open(port)
    try:
        await asyncio.wait_for(attempt, 30)
        assert time.monotonic() - started >= 2.5
    finally:
        await late.close()
        from skymap_scanner.mq import delete_queues

        await delete_queues(BrokerSettings(broker_address=BROKER_ADDRESS), [queue])

    never = BrokerSettings(broker_address=f"localhost:{_free_port()}", broker_outage_timeout_s=2)
    with pytest.raises(BrokerUnavailable):
        async with open_publisher(never, queue):
            pass


async def test_a_server_out_of_restarts_stops_its_instance(tmp_path: Path) -> None:
    """With no restart left, a crashed scanner server ends its instance: the client manager and the
    workers stop, the scan ends failed and its broker account is removed (they waited for ever)."""
    async with running_skydriver(tmp_path, instance_max_server_restarts=0) as sky:
        async with httpx.AsyncClient(
            base_url=sky.settings.url, timeout=30, headers=headers(sky)
        ) as rest:
            await _crash_server_out_of_restarts(sky, rest)


async def _crash_server_out_of_restarts(sky: SkyDriver, rest: httpx.AsyncClient) -> None:
    scan_id = await launch(rest, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.5})
    scan_dir = sky.settings.state_dir.resolve() / "scans" / scan_id

    async def running() -> list[int] | None:
        pids = await instance_pids(sky, scan_id)
        workers = [_worker_pid(scan_dir, i) for i in (0, 1)]
        if len(pids) == 2 and all(workers):
            return [pids["server"], pids["client-manager"], *(w for w in workers if w)]
        return None

    pids = await wait_for(running, 90, "the scan's processes")
    os.kill(pids[0], signal.SIGKILL)

    async def all_stopped() -> bool:
        return not any(_running(p) for p in pids)

    await wait_for(all_stopped, 60, "the client manager and the workers to stop")

    async def failed() -> dict[str, object] | None:
        status: dict[str, object] = (await rest.get(f"/scan/{scan_id}/status")).json()
        return status if str(status["scan_state"]).startswith("ABORTED") else None

    await wait_for(failed, 30, "the scan to end failed")

    async def access_removed() -> bool:
        return scan_vhost(scan_id) not in await broker_vhosts() and (
            scan_user(scan_id) not in await broker_users()
        )

    await wait_for(access_removed, 30, "the scan's broker vhost and user to be removed")
