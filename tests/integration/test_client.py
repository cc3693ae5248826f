"""The client library and CLI against the real SkyDriver (in-process, with its backlog runner and local
launcher, FerretDB and RabbitMQ): small dummy scans launched, followed and fetched through `skydriver_client`.

The server runs on the test's event loop, so the blocking `Client` and the CLI run in a worker thread.

Tests named `test_*` use routes that are being added (`POST /scans/find`,
`POST /scan/{id}/actions/rescan` with its redirect, `POST /scan/{id}/actions/add-workers`, and `DELETE
/scan/{id}` as reworked); they fail until those land."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from skyreader import SkyScanResult

from skydriver.app import SkyDriver
from skydriver_client import (
    AsyncClient,
    Client,
    Forbidden,
    InvalidRequest,
    Manifest,
    ScanFailed,
    ScanNotFound,
    ScanProgress,
    ScanStatus,
    Workforce,
)
from skydriver_client._cli import main
from tests.conftest import headers
from tests.helpers import DEMO_EVENT

T = TypeVar("T")
RUN_ID, EVENT_ID = 138632, 31747601  # of DEMO_EVENT
UNKNOWN_ID = "0000000000ax00000000000000000000"
#: a small dummy scan: 12 pixels at nside 1, then refinement at nside 2
SMALL: dict[str, Any] = {
    "real_event": True,
    "reco_algo": "dummy",
    "nsides": {"1": 0, "2": 12},
    "cluster": {"local": 2},
    "max_pixel_reco_time": 30,
    "scanner_server_env": {"SKYSCAN_DUMMY_SLEEP_S": 0.02},
}
WAIT_S = 180.0


async def in_thread(fn: Callable[[], T]) -> T:
    """Blocking client code, off the event loop the server runs on, with a deadline."""
    return await asyncio.wait_for(asyncio.to_thread(fn), WAIT_S + 60)


def user_token(sky: SkyDriver) -> str:
    """A real user token signed by the test SkyDriver's key."""
    return headers(sky)["Authorization"].removeprefix("Bearer ")


def user_client(sky: SkyDriver) -> Client:
    return Client(sky.settings.url, token=user_token(sky))


def cli_argv(sky: SkyDriver, *argv: str) -> list[str]:
    return ["--url", sky.settings.url, "--token", user_token(sky), *argv]


def assert_monotone(calls: list[ScanProgress]) -> None:
    assert calls, "on_progress was never called"
    for before, after in itertools.pairwise(calls):
        assert after.pixels_done >= before.pixels_done, (before, after)
        assert after.recos_done >= before.recos_done, (before, after)
        done_before = {n.nside: n.pixels_done for n in before.nsides}
        for n in after.nsides:
            assert n.pixels_done >= done_before.get(n.nside, 0), (before, after)
            assert n.pixels_done <= n.pixels_generated, after


def assert_final_result(sky: SkyScanResult, document: dict[str, Any], scan_id: str) -> None:
    assert isinstance(sky, SkyScanResult)
    assert len(sky.result["nside-1"]) == 12
    assert sky.has_minimal_metadata()
    assert document["is_final"] is True and document["scan_id"] == scan_id


def launch_small(sd: Client) -> Manifest:
    return sd.launch(DEMO_EVENT, **SMALL)


# -- the blocking client ----------------------------------------------------------------------------
async def test_client_launches_waits_and_fetches_the_result(skydriver: SkyDriver) -> None:
    calls: list[ScanProgress] = []

    def flow() -> tuple[Manifest, ScanStatus, ScanStatus, Any, dict[str, Any], ScanProgress]:
        with user_client(skydriver) as sd:
            manifest = launch_small(sd)
            first = sd.status(manifest.scan_id)
            final = sd.wait(
                manifest.scan_id, poll_s=0.2, timeout_s=WAIT_S, on_progress=calls.append
            )
            return (
                manifest,
                first,
                final,
                sd.result(manifest.scan_id),
                sd.result_json(manifest.scan_id),
                sd.progress(manifest.scan_id),
            )

    manifest, first, final, sky, document, progress = await in_thread(flow)

    assert len(manifest.scan_id) == 32 and manifest.is_deleted is False
    assert manifest.timestamp is not None and manifest.model_extra  # the server's other fields
    assert isinstance(first, ScanStatus) and first.scan_complete is False
    assert first.scan_state.startswith(("PENDING__", "IN_PROGRESS__"))

    assert final.scan_state == "SCAN_HAS_FINAL_RESULT" and final.scan_complete
    assert final.is_deleted is False and not final.failed
    assert isinstance(final.ewms_workforce, Workforce)
    assert str(final.scanner_server_logs["url"]).endswith(f"/scan/{manifest.scan_id}/logs")

    assert_monotone(calls)
    assert any(c.started for c in calls)
    assert calls[-1].scan_state == "SCAN_HAS_FINAL_RESULT"
    assert_final_result(sky, document, manifest.scan_id)

    assert progress.started and [n.nside for n in progress.nsides] == [1, 2]
    assert progress.nsides[0].pixels_done == progress.nsides[0].pixels_generated == 12


async def test_client_errors_from_the_real_server(skydriver: SkyDriver) -> None:
    def flow() -> None:
        with user_client(skydriver) as sd:
            with pytest.raises(ScanNotFound) as err:
                sd.status(UNKNOWN_ID)
            assert err.value.status == 404 and err.value.message
            with pytest.raises(InvalidRequest) as bad:
                sd.launch(DEMO_EVENT, **(SMALL | {"cluster": {"nowhere": 1}}))
            assert bad.value.status == 400 and "requested unknown cluster" in bad.value.message
            assert isinstance(sd.backlog(), list)

    await in_thread(flow)


# -- the async client ---------------------------------------------------------------------------------
async def test_async_client_launches_waits_and_fetches_the_result(skydriver: SkyDriver) -> None:
    calls: list[ScanProgress] = []

    async def record(progress: ScanProgress) -> None:
        calls.append(progress)

    async with AsyncClient(skydriver.settings.url, token=user_token(skydriver)) as sd:
        manifest = await sd.launch(DEMO_EVENT, **SMALL)
        final = await sd.wait(manifest.scan_id, poll_s=0.2, timeout_s=WAIT_S, on_progress=record)
        sky = await sd.result(manifest.scan_id)
        document = await sd.result_json(manifest.scan_id)
        with pytest.raises(ScanNotFound):
            await sd.manifest(UNKNOWN_ID)

    assert final.scan_complete and final.scan_state == "SCAN_HAS_FINAL_RESULT"
    assert_monotone(calls)
    assert_final_result(sky, document, manifest.scan_id)


# -- the command line ----------------------------------------------------------------------------------
async def test_cli_submit_wait_json_then_status_and_result(
    skydriver: SkyDriver, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = cli_argv(skydriver, "scan", "submit", str(DEMO_EVENT), "--reco-algo", "dummy")
    argv += ["--nsides", "1:0", "2:12"]
    argv += ["--cluster", "local:2", "--env", "SKYSCAN_DUMMY_SLEEP_S=0.02", "--poll-s", "0.2"]
    argv += ["--max-pixel-reco-time", "30", "--wait", "--json"]
    assert await in_thread(lambda: main(argv)) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    scan_id = out["manifest"]["scan_id"]
    assert out["status"]["scan_complete"] is True
    assert out["status"]["scan_state"] == "SCAN_HAS_FINAL_RESULT"
    assert "pixels" in captured.err  # progress lines on stderr (not a terminal here)

    assert await in_thread(lambda: main(cli_argv(skydriver, "scan", "status", scan_id))) == 0
    assert "SCAN_HAS_FINAL_RESULT" in capsys.readouterr().out

    output = tmp_path / "result.json"
    argv = ["scan", "result", scan_id, "--output", str(output), "--url", skydriver.settings.url]
    argv += ["--token", user_token(skydriver)]  # options after the command work too
    assert await in_thread(lambda: main(argv)) == 0
    assert "final result" in capsys.readouterr().out
    assert len(SkyScanResult.read_json(output).result["nside-1"]) == 12


async def test_cli_status_of_an_unknown_scan_exits_3(
    skydriver: SkyDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = cli_argv(skydriver, "scan", "status", UNKNOWN_ID)
    assert await in_thread(lambda: main(argv)) == 3
    assert "error" in capsys.readouterr().err


async def test_without_a_token_the_client_gets_forbidden_and_the_cli_exits_4(
    skydriver: SkyDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    async with AsyncClient(skydriver.settings.url) as sd:
        with pytest.raises(Forbidden) as err:
            await sd.status(UNKNOWN_ID)
    assert err.value.status == 403
    argv = ["--url", skydriver.settings.url, "scan", "status", UNKNOWN_ID]
    assert await in_thread(lambda: main(argv)) == 4
    assert "token" in capsys.readouterr().err


async def test_cli_unreachable_service_exits_5(capsys: pytest.CaptureFixture[str]) -> None:
    # port 9 (discard) on localhost: nothing listens, so every attempt is refused
    argv = ["--url", "http://127.0.0.1:9", "scan", "status", UNKNOWN_ID]
    assert await in_thread(lambda: main(argv)) == 5
    assert "check that SkyDriver runs at" in capsys.readouterr().err


# -- find, delete, rescan, add workers ----------------------------------------------------------------------
async def test_find_by_event(skydriver: SkyDriver) -> None:
    """POST /scans/find."""

    def flow() -> None:
        with user_client(skydriver) as sd:
            scan_id = launch_small(sd).scan_id
            # found at once: SkyDriver stores the event's metadata at submit, not when a scanner starts
            assert scan_id in [m.scan_id for m in sd.find_by_event(RUN_ID, EVENT_ID)]
            sd.wait(scan_id, poll_s=0.2, timeout_s=WAIT_S)
            found = sd.find_by_event(RUN_ID, EVENT_ID)
            assert scan_id in [m.scan_id for m in found]
            assert found[0].event_metadata and found[0].event_metadata["run_id"] == RUN_ID
            only = sd.find({"scan_id": scan_id}, projection=["scan_id"])
            assert [m.scan_id for m in only] == [scan_id]
            assert sd.find({"scan_id": UNKNOWN_ID}) == []

    await in_thread(flow)


async def test_delete(skydriver: SkyDriver) -> None:
    """DELETE /scan/{id}: a running scan is aborted; a completed one needs delete_completed_scan."""

    def flow() -> None:
        with user_client(skydriver) as sd:
            running = launch_small(sd).scan_id
            deleted = sd.delete(running)
            assert deleted.scan_id == running and deleted.is_deleted
            assert sd.status(running).is_deleted
            with pytest.raises(ScanNotFound):
                sd.manifest(running)
            assert sd.manifest(running, include_deleted=True).is_deleted
            with pytest.raises(ScanFailed):
                sd.wait(running, poll_s=0.2, timeout_s=WAIT_S)

            done = launch_small(sd).scan_id
            sd.wait(done, poll_s=0.2, timeout_s=WAIT_S)
            with pytest.raises(InvalidRequest, match="delete_completed_scan"):
                sd.delete(done)
            assert sd.delete(done, delete_completed_scan=True).is_deleted
            with pytest.raises(ScanNotFound):
                sd.delete(UNKNOWN_ID)

    await in_thread(flow)


async def test_rescan_and_replace_redirect(skydriver: SkyDriver) -> None:
    """POST /scan/{id}/actions/rescan; with replace_scan the old id redirects (302) to the new scan."""

    def flow() -> None:
        with user_client(skydriver) as sd:
            origin = launch_small(sd).scan_id
            sd.wait(origin, poll_s=0.2, timeout_s=WAIT_S)
            again = sd.rescan(origin)
            assert again.scan_id != origin
            assert again.classifiers.get("rescan") is True
            assert again.classifiers.get("origin_scan_id") == origin
            replacement = sd.rescan(origin, abort_first=True, replace_scan=True)
            assert replacement.scan_id not in (origin, again.scan_id)
            # reads of the replaced id follow the redirect to the replacement
            assert sd.manifest(origin, include_deleted=True).scan_id == replacement.scan_id
            sd.wait(replacement.scan_id, poll_s=0.2, timeout_s=WAIT_S)
            assert len(sd.result(replacement.scan_id).result["nside-1"]) == 12

    await in_thread(flow)


async def test_cli_rescan_and_delete(
    skydriver: SkyDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's `scan rescan` and `scan delete` over the routes above."""
    async with AsyncClient(skydriver.settings.url, token=user_token(skydriver)) as sd:
        origin = (await sd.launch(DEMO_EVENT, **SMALL)).scan_id
    argv = cli_argv(skydriver, "--json", "scan", "rescan", origin, "--abort-first")
    assert await in_thread(lambda: main(argv)) == 0
    new_id = json.loads(capsys.readouterr().out)["scan_id"]
    assert new_id != origin
    assert await in_thread(lambda: main(cli_argv(skydriver, "scan", "delete", new_id))) == 0
    assert f"deleted scan {new_id}" in capsys.readouterr().out
    assert await in_thread(lambda: main(cli_argv(skydriver, "scan", "delete", UNKNOWN_ID))) == 3


async def test_add_workers(skydriver: SkyDriver) -> None:
    """POST /scan/{id}/actions/add-workers on a running scan."""

    def flow() -> None:
        with user_client(skydriver) as sd:
            scan_id = sd.launch(
                DEMO_EVENT, **(SMALL | {"scanner_server_env": {"SKYSCAN_DUMMY_SLEEP_S": 0.3}})
            ).scan_id
            seen: list[ScanProgress] = []

            def started(progress: ScanProgress) -> None:
                seen.append(progress)
                if progress.started:
                    raise _Started

            with pytest.raises(_Started):
                sd.wait(scan_id, poll_s=0.2, timeout_s=WAIT_S, on_progress=started)
            added = sd.add_workers(scan_id, 1, "local")
            assert added["n_workers"] == 1
            sd.delete(scan_id)

    await in_thread(flow)


class _Started(Exception):
    """Stops a wait() once the scanner reported."""
