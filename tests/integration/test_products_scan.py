"""Sky products of a running scan: the scanner server (in-process, with an in-process worker) scans a dummy
event through the real broker and reports to a real SkyDriver (held launcher, real database, real products
process), as in `test_result_labels.py`. After its first partial result the server waits (its result sink
does) until SkyDriver serves that result's products: they appear while the scan is still running. At the
end, the final result's products replace them, with new ETags."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest

from skydriver.app import SkyDriver
from skydriver.auth import Role
from skymap_scanner.mq import queue_depth
from skymap_scanner.recos import StartupData
from skymap_scanner.server import main
from skymap_scanner.server.sinks import SkyDriverSink
from skymap_scanner.worker.loop import run_worker
from skyscan_contract.nsides import NSideProgression
from skyscan_contract.queues import to_clients_queue
from skyscan_contract.settings import ServerSettings, WorkerSettings
from tests.conftest import headers
from tests.helpers import scan_body, wait_for

NSIDES = "1:0 2:12 4:12"
BUILD_S = 180


async def test_products_appear_for_a_partial_result_and_are_replaced_at_the_final_one(
    held_skydriver: SkyDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    sky = held_skydriver
    async with httpx.AsyncClient(
        base_url=sky.settings.url, headers=headers(sky), timeout=60
    ) as user:
        resp = await user.post("/scan", json=scan_body(nsides={"1": 0, "2": 12, "4": 12}))
        assert resp.status_code == 200, resp.text
        scan_id = resp.json()["scan_id"]

        async def index() -> dict[str, Any]:
            resp = await user.get(f"/scan/{scan_id}/products")
            assert resp.status_code == 200, resp.text
            answer: dict[str, Any] = resp.json()
            return answer

        seen: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (index, status) while running

        class WaitingSink(SkyDriverSink):
            """The server's real sink; after its first partial result it waits for that result's
            products to be served (the scan cannot go on meanwhile)."""

            async def result(self, result: dict[str, Any], *, is_final: bool, urgent: bool) -> None:
                await super().result(result, is_final=is_final, urgent=urgent)
                if is_final or seen:
                    return

                async def served() -> dict[str, Any] | None:
                    got = await index()
                    return got if got["version"] is not None and got["state"] == "ready" else None

                got = await wait_for(served, BUILD_S, "the first partial result's products")
                status = (await user.get(f"/scan/{scan_id}/status")).json()
                seen.append((got, status))

        monkeypatch.setattr(main, "SkyDriverSink", WaitingSink)
        monkeypatch.setenv("SKYSCAN_DUMMY_SLEEP_S", "0")
        monkeypatch.setenv("SKYSCAN_DUMMY_SEED", "3")
        assert sky.token_issuer is not None
        token = sky.token_issuer.issue_token(
            Role.SYSTEM, subject="scanner", ttl_s=600, scan_id=scan_id
        )
        settings = ServerSettings(
            skydriver_address=sky.settings.url,
            skydriver_auth=token,
            skydriver_scan_id=scan_id,
            progress_interval_sec=0.1,
            result_interval_sec=0.05,
            kill_switch_check_interval=60,
            mq_timeout_from_clients=BUILD_S + 30,
        )
        workers: list[asyncio.Task[Any]] = []

        async def worker_after_first_pixels(startup: StartupData) -> None:
            await wait_for(
                lambda: queue_depth(settings, to_clients_queue(scan_id)), 30, "the first pixels"
            )
            await run_worker(WorkerSettings(worker_idle_timeout_s=BUILD_S + 30), startup)

        async def start_worker(startup: StartupData) -> None:
            workers.append(asyncio.create_task(worker_after_first_pixels(startup)))

        request = main.ScanRequest(
            reco_algo="dummy", progression=NSideProgression.parse(NSIDES), real_event=True
        )
        try:
            await asyncio.wait_for(main.run_server(settings, request, start_worker), 2 * BUILD_S)
        finally:
            for worker in workers:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await main.cleanup_queues(settings, scan_id)

        assert seen, "the server sent no partial result"
        (partial, status), *_ = seen
        assert partial["is_final"] is False and partial["version"] == 1
        assert status["scan_complete"] is False  # served while the scan ran
        assert len(partial["products"]) == 10

        async def final_served() -> dict[str, Any] | None:
            got = await index()
            done = got["is_final"] and got["state"] == "ready"
            return got if done and got["version"] == got["result_version"] else None

        final = await wait_for(final_served, BUILD_S, "the final result's products")
        assert final["version"] > partial["version"]
        for old, new in zip(partial["products"], final["products"], strict=True):
            assert old["name"] == new["name"] and old["etag"] != new["etag"], old["name"]
        resp = await user.get(f"/scan/{scan_id}/products/stats.json")
        assert resp.headers["Etag"] == final["products"][7]["etag"]
        assert resp.json()["scan"]["complete"] is True
