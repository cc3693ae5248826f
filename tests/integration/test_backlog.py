"""The backlog runner: fair order, concurrency caps, revived claims and scans that can never start
(against the real database; launchers are injected doubles)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from skydriver.app import SkyDriver
from skydriver.store.backlog import BacklogStore
from skydriver.store.db import connect
from tests.conftest import (
    MONGODB_URI,
    drop_database,
    headers,
    running_skydriver,
    start_test_skydriver,
)
from tests.doubles import FailingLauncher, HeldLauncher
from tests.helpers import scan_body, wait_for


async def post(client: httpx.AsyncClient, **overrides: Any) -> str:
    resp = await client.post("/scan", json=scan_body(**overrides))
    assert resp.status_code == 200, resp.text
    return str(resp.json()["scan_id"])


def started() -> list[str]:
    return [spec.scan_id for spec in HeldLauncher.started]


async def test_realtime_first_then_priority_then_age(tmp_path: Path) -> None:
    HeldLauncher.started = []
    async with running_skydriver(
        tmp_path,
        {"held": HeldLauncher},
        launcher="held",
        max_running_scans=1,
        realtime_users=["test-user"],  # the test token's subject may use the realtime lane
    ) as sky:
        async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as client:
            a = await post(client)
            await wait_for(lambda: _async(started() == [a]), 20, "A to start")
            b = await post(client)
            c = await post(client)
            realtime = await post(client, priority=100)
            await wait_for(
                lambda: _async(started() == [a, realtime]), 20, "the realtime scan to start at once"
            )
            e = await post(client, priority=10)
            assert started() == [a, realtime]  # the cap holds the others back
            for scan_id in (a, realtime):  # free the slot; the watcher stops deleted instances
                await client.request("DELETE", f"/scan/{scan_id}")
            await wait_for(lambda: _async(len(started()) == 3), 20, "the next scan")
            assert started()[2] == e  # priority before age
            await client.request("DELETE", f"/scan/{e}")
            await wait_for(lambda: _async(len(started()) == 4), 20, "the next scan")
            assert started()[3] == b  # then oldest first
            await client.request("DELETE", f"/scan/{b}")
            await wait_for(lambda: _async(len(started()) == 5), 20, "the last scan")
            assert started()[4] == c


async def test_a_dead_runners_claim_is_revived(tmp_path: Path) -> None:
    HeldLauncher.started = []
    first = await start_test_skydriver(
        tmp_path, {"held": HeldLauncher}, launcher="held", max_running_scans=1
    )
    database = first.settings.mongodb_database
    second: SkyDriver | None = None
    try:
        async with httpx.AsyncClient(base_url=first.settings.url, headers=headers(first)) as client:
            a = await post(client)
            await wait_for(lambda: _async(started() == [a]), 20, "A to start")
            b = await post(client)  # held back by the cap
        await first.stop(stop_instances=False)
        # a runner claims B and dies before starting it
        db = connect(MONGODB_URI, database)
        try:
            entry = await BacklogStore(db).claim(0.0)
        finally:
            await db.close()
        claimed_at = time.time()
        assert entry is not None and entry.scan_id == b and entry.next_attempt == 1
        second = await start_test_skydriver(
            tmp_path,
            {"held": HeldLauncher},
            launcher="held",
            mongodb_database=database,
            backlog_pending_entry_ttl_revive_s=2.0,
            backlog_runner_short_delay_s=0.2,
        )
        await wait_for(lambda: _async(b in started()), 30, "B's claim to be revived")
        assert time.time() - claimed_at >= 2.0  # not before the claim expired
    finally:
        if second is not None:
            await second.stop()
        await drop_database(database)


async def test_a_scan_that_can_never_start_ends_failed_with_a_reason(tmp_path: Path) -> None:
    async with running_skydriver(
        tmp_path,
        {"failing": FailingLauncher},
        launcher="failing",
        backlog_max_attempts=2,
        backlog_retry_delay_s=0.0,
        backlog_runner_short_delay_s=0.2,
    ) as sky:
        async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as client:
            scan_id = await post(client)

            async def failed() -> dict[str, Any] | None:
                status = (await client.get(f"/scan/{scan_id}/status")).json()
                return status if status["instance"].get("state") == "failed" else None

            status = await wait_for(failed, 30, "the scan to be given up")
            assert status["scan_state"] == "ABORTED__PRESTARTUP"
            assert status["instance"]["reason"] == "could not start after 2 attempts"
            assert (await client.get("/scans/backlog")).json()["entries"] == []


async def _async(value: Any) -> Any:
    return value
