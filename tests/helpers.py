"""Test helpers: waiting on conditions with a deadline (never a bare sleep), and request bodies."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
DEMO_EVENT = REPO / "examples" / "demo_event.json"
#: The shared data live beside the repository, in <repo>/../shared/data (provenance in its README.md);
#: this variable points elsewhere, e.g. for a copy of the repository made somewhere else.
SHARED_DATA_ENV = "SKYDRIVER_SHARED_DATA"
SHARED_DATA_SOURCES = {
    "icecube_coordinate_test_vectors.csv": "the IC40 events of IceCube's public point-source data "
    "release, arXiv:2101.09836",
    "icecube_astro_equa_to_dir_reference.csv": "IceTray's astro.equa_to_dir outputs stored in the "
    "skymap_scanner's single-pixel test inputs",
}


def shared_data_file(name: str) -> Path:
    """A file of the shared data directory. A missing one fails the test (not a skip) with a message naming
    the file, what it is, and where the directory is expected."""
    directory = Path(os.environ.get(SHARED_DATA_ENV) or REPO.parent / "shared" / "data")
    path = directory / name
    if not path.is_file():
        what = SHARED_DATA_SOURCES.get(name, "see the shared data README.md")
        pytest.fail(
            f"shared test data missing: {path} ({what}). The shared data directory is a sibling of the "
            f"repository, <repo>/../shared/data, with each file's provenance in its README.md; set "
            f"{SHARED_DATA_ENV} to use a copy elsewhere.",
            pytrace=False,
        )
    return path


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], timeout_s: float, what: str, interval_s: float = 0.1
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        await asyncio.sleep(interval_s)


def scan_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "docker_tag": "latest",
        "reco_algo": "dummy",
        "nsides": {"1": 0, "2": 12, "4": 12},
        "real_or_simulated_event": "real",
        "max_pixel_reco_time": 30,
        "request_clusters": {"local": 2},
        "event_i3live_json": json.loads(DEMO_EVENT.read_text()),
        "scanner_server_env": {"SKYSCAN_DUMMY_SLEEP_S": 0.05},
    }
    body.update(overrides)
    return body


def check_pixel_selection(result: dict[str, Any], nsides: str) -> dict[int, list[int]]:
    """Assert that a finished scan's pixels are what the reference algorithm implies for its llh values:
    the first nside is complete; the first refinement (computed from the complete first nside alone) is
    there; and the final state is closed (refining around the final global minimum adds nothing new,
    which is the scan's termination rule). Returns pixels per nside."""
    from skymap_scanner.pixels import PixelReco, choose_pixels_to_reconstruct
    from skyscan_contract.nsides import NSideProgression

    progression = NSideProgression.parse(nsides)
    pixels = result_pixels(result)
    for nside, ids in pixels.items():
        assert len(ids) == len(set(ids)), f"a pixel appears twice at nside {nside}"
    assert sorted(pixels) == progression.nsides
    n0 = progression.min_nside
    assert sorted(pixels[n0]) == list(range(12 * n0 * n0))

    def reco(nside: int, row: list[Any]) -> PixelReco:
        llh = float("nan") if row[1] == "<skyreader.nan>" else float(row[1])
        return PixelReco(nside, int(row[0]), llh, 0, 0, 0, 0, 0, 0, 0)

    done = {
        int(k.split("-")[1]): {int(r[0]): reco(int(k.split("-")[1]), r) for r in v["data"]}
        for k, v in result.items()
    }
    first = choose_pixels_to_reconstruct({n0: done[n0]}, progression.steps[:2])
    assert first <= {(n, p) for n, ids in pixels.items() for p in ids}, "first refinement missing"
    closure = choose_pixels_to_reconstruct(done, list(progression.steps))
    missing = closure - {(n, p) for n, ids in pixels.items() for p in ids}
    assert not missing, (
        f"the scan stopped before refining around its minimum: {sorted(missing)[:5]}"
    )
    return pixels


def result_pixels(result: dict[str, Any]) -> dict[int, list[int]]:
    return {int(k.split("-")[1]): [int(r[0]) for r in v["data"]] for k, v in result.items()}


#: the test broker's management API (scripts/services.sh enables it on 127.0.0.1)
BROKER_MANAGEMENT = os.environ.get("SKYDRIVER_BROKER_MANAGEMENT_URL", "http://127.0.0.1:15672")


async def broker_get(path: str) -> Any:
    """GET on the broker's management API as its administrator (None for a 404)."""
    async with httpx.AsyncClient(base_url=BROKER_MANAGEMENT, auth=("guest", "guest")) as client:
        resp = await client.get(path)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()


async def broker_vhosts() -> set[str]:
    return {v["name"] for v in await broker_get("/api/vhosts")}


async def broker_users() -> set[str]:
    return {u["name"] for u in await broker_get("/api/users")}
