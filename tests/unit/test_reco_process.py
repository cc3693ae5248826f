"""The reconstruction child process: a pixel's timeout counts the reconstruction, not the child's start, and a
reconstruction that cannot even be set up is reported with its reason."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from skymap_scanner.recos import StartupData
from skymap_scanner.worker.reco_process import RecoFailed, RecoProcess
from skyscan_contract.messages import PixelTask, Seed

EVENT = json.loads(
    (Path(__file__).resolve().parents[2] / "examples" / "demo_event.json").read_text()
)


def task() -> PixelTask:
    return PixelTask(
        scan_id="s",
        reco_algo="dummy",
        nside=1,
        pixel=3,
        posvar=0,
        ra=1.0,
        dec=0.5,
        seed=Seed(x=0, y=0, z=0, t=0),
    )


def startup(reco_algo: str, event: dict[str, object] = EVENT) -> StartupData:
    return StartupData(
        scan_id="s",
        reco_algo=reco_algo,
        event=event,
        fallback_seed=Seed(x=0, y=0, z=0, t=0),
        reco_config={"dummy_sleep_s": 0.0, "dummy_seed": 1},
    )


async def test_the_pixel_clock_starts_when_the_child_is_ready() -> None:
    timeout_s = 0.01  # a spawned Python child with its imports takes well over 0.04 s to be ready
    proc = RecoProcess(startup("dummy"))
    started = time.monotonic()
    try:
        variation, runtime = await proc.run(task(), timeout_s, 0.01)
        elapsed = time.monotonic() - started
    finally:
        proc.kill()
    # starting a python child and importing the reconstruction takes far longer than the timeout...
    assert elapsed > 4 * timeout_s
    # ...and is not charged to the pixel
    assert runtime < timeout_s
    assert (variation.nside, variation.pixel) == (1, 3)


async def test_a_reconstruction_that_cannot_start_is_reported_with_its_reason() -> None:
    unreadable = {"format": "pulse-event/1", "run_id": 1}  # no pulses, no time...
    proc = RecoProcess(startup("pandel_mpe", unreadable))
    try:
        with pytest.raises(RecoFailed, match="InvalidEvent"):
            await proc.run(task(), 60, 0.05)
    finally:
        proc.kill()
