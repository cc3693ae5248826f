"""The sky products over REST, against the real SkyDriver (a launcher that starts nothing, the real database,
the real products process): results are PUT with the scan's own scoped system token, as its scanner server
does, and the products are read back as a user.

- a partial result's products are served, then replaced (new ETags) by the final result's; old bytes gone;
- content types, strong ETags (the SHA-256 of the bytes) and `If-None-Match` → 304;
- 404 before the first result, 409 while the first products are made or after they failed, and a failed
  build keeps what is served and the scan's result untouched;
- a newer result supersedes the ones that arrive while a build runs; products queued when SkyDriver stops
  are made after its restart; a rescan's notice is an update; a replaced scan redirects.

The position query is in `test_products_position.py`. `tests/doubles.py::hold_products_process` keeps the products process busy until the test releases it, so
that what waits for it can be seen without racing it.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import os
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from skydriver.app import SkyDriver
from skydriver.auth import Role
from tests.conftest import drop_database, headers, running_skydriver, start_test_skydriver
from tests.doubles import HeldLauncher, hold_products_process
from tests.helpers import DEMO_EVENT, scan_body, wait_for
from tests.unit.test_products import make_result

NAMES = [
    "skymap.multiorder.fits",
    "skymap.flat.fits.gz",
    "regions.geojson",
    "region-calibrated-50.moc.fits",
    "region-calibrated-90.moc.fits",
    "region-wilks-50.moc.fits",
    "region-wilks-90.moc.fits",
    "stats.json",
    "notice.json",
    "circular.txt",
]
CONTENT_TYPES = {
    ".fits": "application/fits",
    ".gz": "application/gzip",
    ".geojson": "application/geo+json",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
EVENT = {
    "run_id": 123456,
    "event_id": 456,
    "event_type": "gfu-gold",
    "mjd": 60000.25,
    "is_real_event": True,
}
BUILD_S = 180  # a cold products process imports healpy, astropy, mocpy on a busy machine first


def final_result() -> dict[str, Any]:
    return make_result()


def partial_result() -> dict[str, Any]:
    """The final one without its finest nside (what a scan has before its last refinement)."""
    result = copy.deepcopy(make_result())
    del result["nside-512"]
    for entry in result.values():
        entry["metadata"]["complete"] = False
    return result


@asynccontextmanager
async def held_sky(tmp_path: Path, **overrides: object) -> AsyncIterator[SkyDriver]:
    HeldLauncher.started = []
    async with running_skydriver(
        tmp_path, {"held": HeldLauncher}, launcher="held", **overrides
    ) as sky:
        yield sky


@pytest.fixture
async def sky(tmp_path: Path) -> AsyncIterator[SkyDriver]:
    async with held_sky(tmp_path) as sky:
        yield sky


def user(sky: SkyDriver) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky), timeout=60)


def scanner(sky: SkyDriver, scan_id: str) -> httpx.AsyncClient:
    """What the scan's server holds: a system token scoped to its scan."""
    return httpx.AsyncClient(
        base_url=sky.settings.url, headers=headers(sky, Role.SYSTEM, scan_id=scan_id), timeout=60
    )


async def new_scan(client: httpx.AsyncClient) -> str:
    resp = await client.post("/scan", json=scan_body())
    assert resp.status_code == 200, resp.text
    return str(resp.json()["scan_id"])


async def put_result(sky: SkyDriver, scan_id: str, result: dict[str, Any], is_final: bool) -> None:
    async with scanner(sky, scan_id) as client:
        resp = await client.put(
            f"/scan/{scan_id}/result", json={"skyscan_result": result, "is_final": is_final}
        )
        assert resp.status_code == 200, resp.text


async def index_when(
    client: httpx.AsyncClient,
    scan_id: str,
    what: str,
    ok: Any,
    timeout_s: float = BUILD_S,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll the products index until `ok(index)`."""

    async def probe() -> dict[str, Any] | None:
        resp = await client.get(f"/scan/{scan_id}/products", params=params)
        assert resp.status_code == 200, resp.text
        index: dict[str, Any] = resp.json()
        return index if ok(index) else None

    return await wait_for(probe, timeout_s, what)


async def served_version(
    client: httpx.AsyncClient, scan_id: str, version: int, params: dict[str, str] | None = None
) -> dict[str, Any]:
    return await index_when(
        client,
        scan_id,
        f"products of result version {version}",
        lambda i: i["version"] == version and i["state"] == "ready",
        params=params,
    )


def etag_of(data: bytes) -> str:
    return f'"{hashlib.sha256(data).hexdigest()}"'


@asynccontextmanager
async def products_process_held(sky: SkyDriver, tmp_path: Path) -> AsyncIterator[Path]:
    """Keep the products process busy until the block ends (or the test creates the yielded file)."""
    assert sky.products is not None
    tmp_path.mkdir(parents=True, exist_ok=True)
    started, release = tmp_path / "held-started", tmp_path / "held-release"
    held = asyncio.create_task(
        sky.products.workers.call(
            hold_products_process,
            str(started),
            str(release),
            timeout_s=BUILD_S,
            kill_on_timeout=False,
        )
    )

    async def running() -> bool:
        if held.done():
            held.result()  # raises what went wrong
        return started.exists()

    await wait_for(running, BUILD_S, "the products process to be held")
    try:
        yield release
    finally:
        release.touch()
        done, _ = await asyncio.wait([held], timeout=60)
        assert done, "the held call did not end"
        held.exception()  # retrieved (BrokenProcessPool if SkyDriver was stopped meanwhile)


# -- a partial result's products, replaced at the final one -----------------------------------------
async def test_partial_products_are_served_then_replaced_by_the_final_ones(sky: SkyDriver) -> None:
    async with user(sky) as client:
        # the event's metadata is the manifest's from the submission on (not the result's)
        event = {**json.loads(DEMO_EVENT.read_text()), **EVENT}
        resp = await client.post("/scan", json=scan_body(event_i3live_json=event))
        assert resp.status_code == 200, resp.text
        scan_id = resp.json()["scan_id"]
        none = (await client.get(f"/scan/{scan_id}/products")).json()
        assert none["state"] == "none" and none["version"] is None and none["products"] == []
        resp = await client.get(f"/scan/{scan_id}/products/stats.json")
        assert resp.status_code == 404
        assert "has no result yet" in resp.json()["error"]

        await put_result(sky, scan_id, partial_result(), is_final=False)
        partial = await served_version(client, scan_id, 1)
        assert partial["is_final"] is False and partial["result_version"] == 1
        assert [p["name"] for p in partial["products"]] == NAMES
        status = (await client.get(f"/scan/{scan_id}/status")).json()
        assert status["scan_complete"] is False  # the scan is still running

        first: dict[str, bytes] = {}
        for entry in partial["products"]:
            resp = await client.get(f"/scan/{scan_id}/products/{entry['name']}")
            assert resp.status_code == 200
            assert resp.headers["Content-Type"] == entry["content_type"]
            assert entry["content_type"] == CONTENT_TYPES[Path(entry["name"]).suffix]
            assert resp.headers["Etag"] == entry["etag"] == etag_of(resp.content)
            assert len(resp.content) == entry["size"]
            assert entry["url"] == f"{sky.settings.url}/scan/{scan_id}/products/{entry['name']}"
            first[entry["name"]] = resp.content
        assert first["skymap.multiorder.fits"].startswith(b"SIMPLE  =")
        assert first["skymap.flat.fits.gz"][:2] == b"\x1f\x8b"
        assert json.loads(first["regions.geojson"])["type"] == "FeatureCollection"
        stats = json.loads(first["stats.json"])
        assert stats["scan"]["scan_id"] == scan_id and stats["scan"]["complete"] is False
        assert stats["scan"]["reco_algo"] == "dummy"
        assert stats["scan"]["nside_progression"] == {"1": 0, "2": 12, "4": 12}
        assert stats["scan"]["nsides"] == [8, 64]
        # the manifest's event (read at submission, as the scanner reads it) wins over the result's
        assert stats["event"]["run_id"] == 123456 and stats["event"]["event_id"] == 456
        notice = json.loads(first["notice.json"])
        assert notice["id"] == ["123456_456"]
        assert (notice["alert_type"], notice["record_number"]) == ("initial", 1)
        assert notice["alert_tense"] == "test"
        assert notice["healpix_url"] == partial["products"][0]["url"]
        assert "IceCube" in first["circular.txt"].decode()

        await put_result(sky, scan_id, final_result(), is_final=True)
        final = await served_version(client, scan_id, 2)
        assert final["is_final"] is True
        for old, new in zip(partial["products"], final["products"], strict=True):
            assert old["name"] == new["name"] and old["etag"] != new["etag"], old["name"]
        resp = await client.get(f"/scan/{scan_id}/products/stats.json")
        stats = json.loads(resp.content)
        assert stats["scan"]["complete"] is True and stats["scan"]["nsides"] == [8, 64, 512]
        assert resp.headers["Etag"] == final["products"][7]["etag"]

    async def only_the_latest_kept() -> bool:  # the older bytes go right after the flip
        return await sky.db.products.distinct("version", {"scan_id": scan_id}) == [2]

    await wait_for(only_the_latest_kept, 30, "the partial version's bytes to be deleted")


async def test_if_none_match_gives_304_for_the_current_etag_only(sky: SkyDriver) -> None:
    async with user(sky) as client:
        scan_id = await new_scan(client)
        await put_result(sky, scan_id, final_result(), is_final=True)
        index = await served_version(client, scan_id, 1)
        url = f"/scan/{scan_id}/products/skymap.multiorder.fits"
        etag = index["products"][0]["etag"]
        for sent in (etag, f'"other", {etag}', "*", f"W/{etag}"):
            resp = await client.get(url, headers={"If-None-Match": sent})
            assert resp.status_code == 304, sent
            assert resp.content == b"" and resp.headers["Etag"] == etag
        resp = await client.get(url, headers={"If-None-Match": '"something-else"'})
        assert resp.status_code == 200 and resp.headers["Etag"] == etag
        assert resp.headers["Content-Type"] == "application/fits"
        # the index itself is cacheable the same way
        resp = await client.get(f"/scan/{scan_id}/products")
        again = await client.get(
            f"/scan/{scan_id}/products", headers={"If-None-Match": resp.headers["Etag"]}
        )
        assert again.status_code == 304


# -- before, during and after a failed build ---------------------------------------------------------
async def test_409_while_the_first_products_are_made_and_a_failed_build_changes_nothing(
    sky: SkyDriver, tmp_path: Path
) -> None:
    async with user(sky) as client:
        scan_id = await new_scan(client)
        async with products_process_held(sky, tmp_path):
            await put_result(sky, scan_id, partial_result(), is_final=False)
            index = (await client.get(f"/scan/{scan_id}/products")).json()
            assert index["state"] in ("queued", "building") and index["version"] is None
            assert index["result_version"] == 1
            resp = await client.get(f"/scan/{scan_id}/products/stats.json")
            assert resp.status_code == 409
            assert "are being made from its first result (version 1)" in resp.json()["error"]
        served = await served_version(client, scan_id, 1)
        resp = await client.get(f"/scan/{scan_id}/products/no-such-thing.json")
        assert resp.status_code == 404 and "stats.json" in resp.json()["error"]

        # an unreadable result: the build fails, is recorded, and changes nothing else
        broken = {"nside-8": {"columns": ["index"], "data": [[0]], "metadata": {"nside": 8}}}
        await put_result(sky, scan_id, broken, is_final=False)
        failed = await index_when(client, scan_id, "the failure", lambda i: i["state"] == "failed")
        assert failed["error"]["version"] == 2
        assert failed["error"]["message"].startswith("ValueError: nside-8: columns")
        assert failed["version"] == 1 and failed["products"] == served["products"]
        resp = await client.get(f"/scan/{scan_id}/products/stats.json")
        assert resp.status_code == 200 and resp.headers["Etag"] == served["products"][7]["etag"]
        result = (await client.get(f"/scan/{scan_id}/result")).json()
        assert result["skyscan_result"] == broken and result["is_final"] is False

        # the next result is made into products again, and the error is gone
        await put_result(sky, scan_id, final_result(), is_final=True)
        final = await served_version(client, scan_id, 3)
        assert final["error"] is None and final["is_final"] is True

        # a scan whose first result cannot be made into products: 409 with the reason
        other = await new_scan(client)
        await put_result(sky, other, broken, is_final=False)
        await index_when(client, other, "the failure", lambda i: i["state"] == "failed")
        resp = await client.get(f"/scan/{other}/products/notice.json")
        assert resp.status_code == 409
        assert "could not be made from its result (version 1): ValueError" in resp.json()["error"]


async def test_a_newer_result_supersedes_those_that_arrive_during_a_build(
    sky: SkyDriver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="skydriver.runners.products")
    async with user(sky) as client:
        scan_id = await new_scan(client)
        async with products_process_held(sky, tmp_path):
            await put_result(sky, scan_id, partial_result(), is_final=False)
            await index_when(
                client, scan_id, "version 1 to be building", lambda i: i["building_version"] == 1
            )
            await put_result(sky, scan_id, partial_result(), is_final=False)  # version 2
            await put_result(sky, scan_id, final_result(), is_final=True)  # version 3
        final = await served_version(client, scan_id, 3)
        assert final["is_final"] is True

    def built() -> list[int]:
        return [
            int(m.group(1))
            for r in caplog.records
            if (m := re.search(r"products of result version (\d+) \(\w+\) served", r.getMessage()))
        ]

    async def logged() -> bool:  # the runner logs right after serving
        return 3 in built()

    await wait_for(logged, 30, "the runner to log version 3")
    assert built() == [1, 3]  # 2 was superseded before its turn came


async def test_products_queued_when_skydriver_stops_are_made_after_its_restart(
    tmp_path: Path,
) -> None:
    first = await start_test_skydriver(tmp_path, {"held": HeldLauncher}, launcher="held")
    database = first.settings.mongodb_database
    try:
        async with user(first) as client:
            scan_id = await new_scan(client)
        assert first.products is not None
        async with products_process_held(first, tmp_path):
            pids = first.products.workers.pids()
            await put_result(first, scan_id, final_result(), is_final=True)
            await asyncio.wait_for(
                first.stop(), 30
            )  # the busy products process is ended, not awaited
        assert pids and not any(os.path.exists(f"/proc/{pid}") for pid in pids)
        second = await start_test_skydriver(
            tmp_path, {"held": HeldLauncher}, launcher="held", mongodb_database=database
        )
        try:
            async with user(second) as client:
                index = await served_version(client, scan_id, 1)
                assert index["is_final"] is True
        finally:
            await second.stop()
    finally:
        await drop_database(database)


async def test_an_overlong_build_and_a_dead_products_process_are_failures_that_pass(
    tmp_path: Path,
) -> None:
    """A build over SKYDRIVER_PRODUCTS_BUILD_TIMEOUT_S (here: one waiting behind a held process) has its
    process killed and is recorded as failed; so is a build whose process is killed from outside. Each
    time the next result gets a new products process and its products."""
    async with held_sky(tmp_path, products_build_timeout_s=3) as sky, user(sky) as client:
        assert sky.products is not None
        workers = sky.products.workers
        scan_id = await new_scan(client)
        async with products_process_held(sky, tmp_path / "a"):
            held_pids = workers.pids()
            await put_result(sky, scan_id, partial_result(), is_final=False)
            failed = await index_when(
                client, scan_id, "the timeout", lambda i: i["state"] == "failed"
            )
        assert failed["error"]["message"] == (
            "the build took longer than SKYDRIVER_PRODUCTS_BUILD_TIMEOUT_S (3 s)"
        )
        assert held_pids and not any(os.path.exists(f"/proc/{pid}") for pid in held_pids)
        # (the next build starts a new process, whose imports alone may take 3 s on a busy machine)
        sky.settings.products_build_timeout_s = BUILD_S
        await put_result(sky, scan_id, partial_result(), is_final=False)
        await served_version(client, scan_id, 2)
        assert workers.pids() and workers.pids() != held_pids

        async with products_process_held(sky, tmp_path / "b"):
            await put_result(sky, scan_id, partial_result(), is_final=False)
            await index_when(
                client, scan_id, "version 3 to wait", lambda i: i["building_version"] == 3
            )
            for pid in workers.pids():
                os.kill(pid, signal.SIGKILL)
            failed = await index_when(
                client, scan_id, "the death", lambda i: i["state"] == "failed"
            )
        assert failed["error"]["message"] == "the builder process died (out of memory or killed?)"
        assert failed["version"] == 2  # still served
        await put_result(sky, scan_id, final_result(), is_final=True)
        final = await served_version(client, scan_id, 4)
        assert final["is_final"] is True and final["error"] is None


# -- rescans ------------------------------------------------------------------------------------------
async def test_rescans_notices_are_updates_and_a_replaced_scan_redirects(sky: SkyDriver) -> None:
    async with user(sky) as client:
        origin = await new_scan(client)
        resp = await client.post(f"/scan/{origin}/actions/rescan", json={"replace_scan": True})
        first_rescan = resp.json()["scan_id"]
        resp = await client.post(f"/scan/{first_rescan}/actions/rescan", json={})
        second_rescan = resp.json()["scan_id"]
        for scan_id in (origin, first_rescan, second_rescan):
            await put_result(sky, scan_id, final_result(), is_final=True)
        records = {}
        for scan_id in (first_rescan, second_rescan):
            await served_version(client, scan_id, 1)
            notice = json.loads((await client.get(f"/scan/{scan_id}/products/notice.json")).content)
            records[scan_id] = (notice["alert_type"], notice["record_number"])
        assert records == {first_rescan: ("update", 2), second_rescan: ("update", 3)}

        resp = await client.get(f"/scan/{origin}/products/notice.json", follow_redirects=False)
        assert resp.status_code == 302
        assert resp.headers["Location"] == (
            f"{sky.settings.url}/scan/{first_rescan}/products/notice.json"
        )
        resp = await client.get(f"/scan/{origin}/products", follow_redirects=False)
        assert resp.status_code == 302
        await served_version(client, origin, 1, params={"no_redirect": "true"})
        resp = await client.get(
            f"/scan/{origin}/products/notice.json", params={"no_redirect": "true"}
        )
        notice = json.loads(resp.content)
        assert (notice["alert_type"], notice["record_number"]) == ("initial", 1)
