"""How results are labelled, read field by field: the scanner server (run in-process, with a worker in-process)
scans through the real broker and reports to a real SkyDriver (held launcher, real database). Every partial
result is `is_final: false` with `complete: false` on every nside, in what the server sends and in what SkyDriver
then stores and serves; the last one is `is_final: true` with `complete: true` on every nside."""

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


def labels(result: dict[str, Any]) -> dict[str, bool]:
    """{"nside-N": metadata.complete} of a serialised SkyScanResult."""
    return {key: entry["metadata"]["complete"] for key, entry in result.items()}


async def test_partial_results_are_labelled_partial_and_the_final_one_final(
    held_skydriver: SkyDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    sky = held_skydriver
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as user:
        resp = await user.post("/scan", json=scan_body(nsides={"1": 0, "2": 12, "4": 12}))
        assert resp.status_code == 200, resp.text
        scan_id = resp.json()["scan_id"]

        sent: list[tuple[dict[str, Any], bool]] = []  # (result, is_final) as PUT by the server
        stored: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (GET /result, GET /status) after

        class RecordingSink(SkyDriverSink):
            """The server's real SkyDriver sink; after each PUT it reads back what SkyDriver serves."""

            async def result(self, result: dict[str, Any], *, is_final: bool, urgent: bool) -> None:
                await super().result(result, is_final=is_final, urgent=urgent)
                sent.append((result, is_final))
                got = (await user.get(f"/scan/{scan_id}/result")).json()
                status = (await user.get(f"/scan/{scan_id}/status")).json()
                stored.append((got, status))

        monkeypatch.setattr(main, "SkyDriverSink", RecordingSink)
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
            mq_timeout_from_clients=30,
        )
        workers: list[asyncio.Task[Any]] = []

        async def worker_after_first_pixels(startup: StartupData) -> None:
            # start once the server's pixels are in the queue: a consumer subscribing while another
            # connection is still creating the quorum queue can be refused by RabbitMQ 3.10 (INTERNAL_ERROR)
            await wait_for(
                lambda: queue_depth(settings, to_clients_queue(scan_id)), 30, "the first pixels"
            )
            await run_worker(WorkerSettings(worker_idle_timeout_s=60), startup)

        async def start_worker(startup: StartupData) -> None:
            workers.append(asyncio.create_task(worker_after_first_pixels(startup)))

        request = main.ScanRequest(
            reco_algo="dummy", progression=NSideProgression.parse(NSIDES), real_event=True
        )
        try:
            await asyncio.wait_for(main.run_server(settings, request, start_worker), 120)
        finally:
            for worker in workers:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await main.cleanup_queues(settings, scan_id)

    *partials, (final, final_is_final) = sent
    assert partials, "the server sent no partial result"
    for result, is_final in partials:
        assert is_final is False
        assert set(labels(result).values()) == {False}, labels(result)
    assert final_is_final is True
    assert labels(final) == {"nside-1": True, "nside-2": True, "nside-4": True}

    # what SkyDriver stored and serves after each PUT carries the same labels
    *partials_stored, (final_stored, final_status) = stored
    for got, status in partials_stored:
        assert got["is_final"] is False
        assert set(labels(got["skyscan_result"]).values()) == {False}
        assert status["scan_complete"] is False
    assert final_stored["is_final"] is True
    assert set(labels(final_stored["skyscan_result"]).values()) == {True}
    assert final_status["scan_complete"] is True
    assert final_status["scan_state"] == "SCAN_HAS_FINAL_RESULT"
