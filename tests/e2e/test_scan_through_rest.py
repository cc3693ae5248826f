"""Whole scans through SkyDriver's REST API, with every part real: FerretDB, RabbitMQ, the local launcher,
the scanner server, the client manager and worker processes."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from skyreader import SkyScanResult

from skydriver.app import SkyDriver
from skymap_scanner.recos.dummy import _rng
from skyscan_contract.messages import PixelTask, Seed
from skyscan_contract.queues import scan_user, scan_vhost
from skyscan_contract.settings import BrokerSettings, DummySettings
from tests.conftest import drop_database, headers, start_test_skydriver
from tests.helpers import broker_users, broker_vhosts, check_pixel_selection, scan_body, wait_for


async def launch(rest: httpx.AsyncClient, **overrides: Any) -> str:
    resp = await rest.post("/scan", json=scan_body(**overrides))
    assert resp.status_code == 200, resp.text
    return str(resp.json()["scan_id"])


async def has_partial_result(rest: httpx.AsyncClient, scan_id: str) -> bool:
    """The scan has results for its first nside, and not yet its final result."""
    result = (await rest.get(f"/scan/{scan_id}/result")).json()
    return bool(result.get("skyscan_result", {}).get("nside-1")) and not result["is_final"]


async def instance_pids(skydriver: SkyDriver, scan_id: str) -> dict[str, int]:
    """{role: pid} of the processes the local launcher started for the scan (server, client-manager),
    from the instance's state file (users do not see pids through the API)."""
    path = Path(skydriver.settings.state_dir).resolve() / "scans" / scan_id / "instance.json"
    pids = json.loads(path.read_text()).get("pids") or {} if path.exists() else {}
    return {role: int(pid) for role, pid in pids.items()}


async def scan_broker(skydriver: SkyDriver, scan_id: str) -> BrokerSettings:
    """The broker account of the scan (its own vhost and user), as the local launcher gave it to the
    scanner server (from the server's launch file, readable by SkyDriver's user only)."""
    path = Path(skydriver.settings.state_dir).resolve() / "scans" / scan_id / "server.launch.json"
    env = json.loads(path.read_text())["env"]
    return BrokerSettings(
        broker_address=env["SKYSCAN_BROKER_ADDRESS"], broker_auth=env["SKYSCAN_BROKER_AUTH"]
    )


async def wait_final(rest: httpx.AsyncClient, scan_id: str, timeout_s: float = 180) -> list[str]:
    """Poll /status until the final result; returns every distinct state seen, in order."""
    states: list[str] = []

    async def probe() -> bool:
        status = (await rest.get(f"/scan/{scan_id}/status")).json()
        if not states or states[-1] != status["scan_state"]:
            states.append(status["scan_state"])
        assert not status["scan_state"].startswith("ABORTED"), status
        return bool(status["scan_complete"])

    await wait_for(probe, timeout_s, f"scan {scan_id} to have its final result", interval_s=0.05)
    return states


async def test_scan_reaches_final_result_through_rest(
    rest: httpx.AsyncClient, skydriver: SkyDriver
) -> None:
    scan_id = await launch(rest, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.1})
    states = await wait_final(rest, scan_id)
    assert any(s.startswith("PENDING__") for s in states), states
    assert any(s.startswith("IN_PROGRESS__") for s in states), states
    assert states[-1] == "SCAN_HAS_FINAL_RESULT"

    result = (await rest.get(f"/scan/{scan_id}/result")).json()
    assert result["is_final"] is True
    sky = SkyScanResult.deserialize(result["skyscan_result"])
    assert sky.has_minimal_metadata()
    pixels = check_pixel_selection(result["skyscan_result"], "1:0 2:12 4:12")
    assert len(pixels[1]) == 12
    assert len(pixels[2]) >= 28 and len(pixels[4]) >= 32
    # skyreader's best fit is our minimum
    best = min(
        (row[1], int(k.split("-")[1]), row[0])
        for k, v in result["skyscan_result"].items()
        for row in v["data"]
    )
    assert sky.min_llh == pytest.approx(best[0])

    # as the original, the server sends the final result and then the final progress: await the latter
    async def final_progress() -> dict[str, Any] | None:
        manifest: dict[str, Any] = (await rest.get(f"/scan/{scan_id}/manifest")).json()
        return manifest if manifest["progress"]["processing_stats"].get("finished") else None

    manifest = await wait_for(final_progress, 30, "the final progress report", interval_s=0.05)
    assert manifest["event_metadata"] == {
        "run_id": 138632,
        "event_id": 31747601,
        "event_type": "neutrino",
        "mjd": 60280.71416774572,
        "is_real_event": True,
    }
    assert manifest["progress"]["summary"] == "The Skymap Scanner has finished."
    assert manifest["scan_metadata"]["nside_progression"] == {"1": 0, "2": 12, "4": 12}

    # the scan instance's token never shows: not in the manifest, the status, nor the logs
    status = (await rest.get(f"/scan/{scan_id}/status")).json()
    assert "eyJ" not in json.dumps(manifest) + json.dumps(status)  # a JWT starts with eyJ
    scan_dir = skydriver.settings.state_dir.resolve() / "scans" / scan_id
    for log in [
        scan_dir / "server.log",
        scan_dir / "client-manager.log",
        *scan_dir.glob("workers/*.log"),
    ]:
        assert "eyJ" not in log.read_text(), log


def _worker_pid(scan_dir: Path, index: int) -> int | None:
    log = scan_dir / "client-manager.log"
    if not log.exists():
        return None
    match = re.search(rf"started worker {index} \(pid (\d+)\)", log.read_text())
    return int(match.group(1)) if match else None


async def test_worker_killed_mid_pixel_loses_nothing(
    rest: httpx.AsyncClient, skydriver: SkyDriver
) -> None:
    # SKYSCAN_LOG=DEBUG: workers log each pixel they take and ack
    scan_id = await launch(
        rest, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.3, "SKYSCAN_LOG": "DEBUG"}
    )
    scan_dir = skydriver.settings.state_dir.resolve() / "scans" / scan_id
    pid = await wait_for(lambda: _async(_worker_pid(scan_dir, 0)), 60, "worker 0 to start")
    worker_log = scan_dir / "workers" / "worker-0.log"

    async def mid_pixel() -> bool:
        if not worker_log.exists():
            return False
        lines = [ln for ln in worker_log.read_text().splitlines() if "pixel (" in ln]
        # a pixel taken after at least one acked: the worker is inside a reconstruction
        return len(lines) >= 3 and "got pixel" in lines[-1]

    await wait_for(mid_pixel, 60, "worker 0 to be in the middle of a pixel", interval_s=0.02)
    os.kill(pid, signal.SIGKILL)

    await wait_final(rest, scan_id)
    result = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
    pixels = check_pixel_selection(result, "1:0 2:12 4:12")
    manifest = (await rest.get(f"/scan/{scan_id}/manifest")).json()
    tallies = manifest["progress"]["tallies"]["nsides"]
    for nside, ids in pixels.items():
        assert tallies[str(nside)]["pixels"]["generated"] == len(ids)  # every sent pixel, once
    assert "worker exited with code -9" in manifest["workforce"]["top_errors"]


async def _async(value: Any) -> Any:
    return value


def crashing_pixels(seed: int, probability: float, nside: int) -> dict[int, str]:
    """Which pixels crash_dummy crashes on, and how ('raise' or 'hang'), for a seed."""
    settings = DummySettings.model_validate(
        {"dummy_seed": seed, "crash_dummy_probability": probability}
    )
    out: dict[int, str] = {}
    for pixel in range(12 * nside**2):
        task = PixelTask(
            scan_id="x",
            reco_algo="crash_dummy",
            nside=nside,
            pixel=pixel,
            posvar=0,
            ra=0,
            dec=0,
            seed=Seed(x=0, y=0, z=0, t=0),
        )
        rng = _rng(settings, task, "crash")
        if rng.random() < probability:
            out[pixel] = "raise" if rng.random() < 0.5 else "hang"
    return out


async def test_always_crashing_pixels_end_failed_not_redelivered_forever(
    rest: httpx.AsyncClient,
) -> None:
    seed = next(
        s for s in range(1000) if sorted(crashing_pixels(s, 0.15, 1).values()) == ["hang", "raise"]
    )
    crashing = crashing_pixels(seed, 0.15, 1)
    scan_id = await launch(
        rest,
        reco_algo="crash_dummy",
        nsides={"1": 0},
        max_pixel_reco_time=2,
        scanner_server_env={
            "SKYSCAN_DUMMY_SLEEP_S": 0,
            "SKYSCAN_DUMMY_SEED": seed,
            "SKYSCAN_CRASH_DUMMY_PROBABILITY": 0.15,
        },
    )
    await wait_final(rest, scan_id, timeout_s=120)
    result = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
    rows = {int(r[0]): r for r in result["nside-1"]["data"]}
    assert sorted(rows) == list(range(12))
    for pixel, row in rows.items():
        if pixel in crashing:
            assert row[1] == "<skyreader.nan>", f"pixel {pixel} should be marked failed"
        else:
            assert isinstance(row[1], float) and not math.isnan(row[1])
    failed = (await rest.get(f"/scan/{scan_id}/manifest")).json()["progress"]["failed_pixels"]
    assert sorted(f["pixel"] for f in failed) == sorted(crashing)
    for f in failed:
        assert f["attempts"] == 3  # bounded retries, then reported
        expected = (
            "intentional crash-dummy error"
            if crashing[f["pixel"]] == "raise"
            else "timed out after 2s"
        )
        assert expected in f["error"]
    SkyScanResult.deserialize(result)  # a result with failed pixels still loads


async def test_scanner_server_killed_mid_scan_resumes(
    rest: httpx.AsyncClient, skydriver: SkyDriver
) -> None:
    """The local launcher restarts a crashed scanner server; the new one resumes from the partial result
    SkyDriver holds and re-sends only what is missing."""
    scan_id = await launch(rest, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.2})

    async def partial_result_and_pid() -> int | None:
        pids = await instance_pids(skydriver, scan_id)
        if await has_partial_result(rest, scan_id) and "server" in pids:
            return pids["server"]
        return None

    pid = await wait_for(partial_result_and_pid, 60, "a partial result", interval_s=0.05)
    os.kill(pid, signal.SIGKILL)
    await wait_final(rest, scan_id)
    result = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
    check_pixel_selection(result, "1:0 2:12 4:12")
    scan_dir = skydriver.settings.state_dir.resolve() / "scans" / scan_id
    assert "resuming scan" in (scan_dir / "server.log").read_text()


async def test_a_server_killed_while_skydriver_restarts_is_restarted_and_resumes(
    tmp_path: Path,
) -> None:
    """SkyDriver stops (its instances go on), the scanner server is killed, a new SkyDriver on the same
    database and state re-attaches and restarts the server (from its launch file), which resumes."""
    port = (
        free_port()
    )  # the instance keeps the URL it was given: the new SkyDriver takes the same port
    first = await start_test_skydriver(tmp_path, port=port)
    database = first.settings.mongodb_database
    try:
        async with httpx.AsyncClient(base_url=first.settings.url, headers=headers(first)) as rest:
            scan_id = await launch(rest, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.2})
            pids = await wait_for(
                lambda: _has_partial(first, rest, scan_id), 60, "a partial result", interval_s=0.05
            )
        await first.stop(stop_instances=False)
        os.kill(pids["server"], signal.SIGKILL)
        second = await start_test_skydriver(tmp_path, port=port, mongodb_database=database)
        try:
            async with httpx.AsyncClient(
                base_url=second.settings.url, headers=headers(second)
            ) as rest:
                scan_dir = second.settings.state_dir.resolve() / "scans" / scan_id
                try:  # within pytest's timeout, so that a stalled scan shows its instance's logs
                    await wait_final(rest, scan_id, timeout_s=150)
                except AssertionError as e:
                    raise AssertionError(f"{e}\n{_log_tails(scan_dir)}") from None
                result = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
            check_pixel_selection(result, "1:0 2:12 4:12")
            assert "resuming scan" in (scan_dir / "server.log").read_text()
        finally:
            await second.stop()
    finally:
        await drop_database(database)


def _log_tails(scan_dir: Path, lines: int = 80) -> str:
    """The last lines of a local instance's logs (the server's and the client manager's)."""
    out = []
    for name in ("server.log", "client-manager.log"):
        path = scan_dir / name
        text = path.read_text(errors="replace").splitlines() if path.exists() else ["(none)"]
        out.append(f"--- {name} (last {lines} lines) ---\n" + "\n".join(text[-lines:]))
    return "\n".join(out)


async def _has_partial(
    sky: SkyDriver, rest: httpx.AsyncClient, scan_id: str
) -> dict[str, int] | None:
    pids = await instance_pids(sky, scan_id)
    return pids if await has_partial_result(rest, scan_id) and "server" in pids else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _rabbitmqctl(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, f"rabbitmqctl {' '.join(args)}: {err.decode()}"


@pytest.mark.restarts_services  # stops RabbitMQ: never while others use the broker
async def test_broker_restart_mid_scan_loses_nothing(
    rest: httpx.AsyncClient, skydriver: SkyDriver
) -> None:
    """RabbitMQ stops and starts again in the middle of a scan: the server and the workers reconnect on
    their own (no worker is replaced, no server restarted) and every pixel arrives exactly once."""
    scan_id = await launch(rest, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.2})

    await wait_for(
        lambda: has_partial_result(rest, scan_id), 60, "a partial result", interval_s=0.05
    )
    await _rabbitmqctl("stop_app")
    await _rabbitmqctl("start_app")
    await _rabbitmqctl("await_startup")
    await wait_final(rest, scan_id)

    result = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
    check_pixel_selection(result, "1:0 2:12 4:12")  # complete, closed, no pixel twice
    scan_dir = skydriver.settings.state_dir.resolve() / "scans" / scan_id
    manager_log = (scan_dir / "client-manager.log").read_text()
    assert "replacing it" not in manager_log
    assert manager_log.count("started worker") == 2
    server_log = (scan_dir / "server.log").read_text()
    assert "resuming scan" not in server_log  # the first server process finished the scan
    worker_logs = "".join(p.read_text() for p in scan_dir.glob("workers/*.log"))
    assert "the broker is back" in worker_logs + server_log  # a publish did meet the outage


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child its parent has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_deleting_a_running_scan_stops_it_and_removes_its_queues(
    rest: httpx.AsyncClient, skydriver: SkyDriver
) -> None:
    scan_id = await launch(rest, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.3})
    scan_dir = skydriver.settings.state_dir.resolve() / "scans" / scan_id

    async def running() -> list[int] | None:
        pids = await instance_pids(skydriver, scan_id)
        workers = [_worker_pid(scan_dir, i) for i in (0, 1)]
        if await has_partial_result(rest, scan_id) and len(pids) == 2 and all(workers):
            return [*pids.values(), *(w for w in workers if w)]
        return None

    pids = await wait_for(running, 60, "the scan to be running", interval_s=0.05)
    assert all(_running(p) for p in pids)
    assert (await rest.delete(f"/scan/{scan_id}")).status_code == 200

    async def all_stopped() -> bool:
        return not any(_running(p) for p in pids)

    await wait_for(all_stopped, 60, "the scan's server, client manager and workers to stop")
    log = (scan_dir / "server.log").read_text()
    # a deliberate stop: by the launcher's SIGTERM, or the kill switch saw the deletion first
    assert (
        "stopped by SIGTERM; the scan's queues are deleted" in log
        or "the scan was deleted in SkyDriver; stopping" in log
    ), log

    async def broker_access_removed() -> bool:  # the scan's vhost, its queues and its user
        return scan_vhost(scan_id) not in await broker_vhosts() and (
            scan_user(scan_id) not in await broker_users()
        )

    await wait_for(broker_access_removed, 30, "the scan's vhost and broker user to be removed")
    status = (await rest.get(f"/scan/{scan_id}/status")).json()
    assert status["scan_state"] == "ABORTED__PARTIAL_RESULT_GENERATED", status
