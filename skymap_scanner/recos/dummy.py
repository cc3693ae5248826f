"""`dummy` and `crash_dummy`: random numbers instead of physics, as the original's, plus a seed and a
configurable sleep so that tests and benchmarks can be fast and reproducible."""

from __future__ import annotations

import random
import time
from typing import Any

from skyscan_contract.messages import PixelTask, RecoPixelVariation
from skyscan_contract.settings import DummySettings

from .base import Reconstruction, StartupData


def _rng(settings: DummySettings, task: PixelTask, salt: str) -> random.Random:
    if settings.dummy_seed is None:
        return random.Random()
    return random.Random(f"{settings.dummy_seed}:{salt}:{task.nside}:{task.pixel}:{task.posvar}")


class Dummy(Reconstruction):
    name = "dummy"

    def __init__(self, startup: StartupData) -> None:
        super().__init__(startup)
        self.settings = DummySettings.model_validate(startup.reco_config)

    @classmethod
    def config_from_env(cls) -> dict[str, Any]:
        return DummySettings().model_dump()

    def reconstruct(self, task: PixelTask) -> RecoPixelVariation:
        rng = _rng(self.settings, task, "dummy")
        llh, x, y, z, t = (rng.random() for _ in range(5))
        e_in, e_tot = rng.random(), rng.random()
        if self.settings.dummy_sleep_s > 0:
            s = self.settings.dummy_sleep_s
            time.sleep(rng.uniform(s / 2, 3 * s / 2))
        return RecoPixelVariation(
            nside=task.nside,
            pixel=task.pixel,
            posvar=task.posvar,
            llh=llh,
            e_in=e_in,
            e_tot=e_tot,
            x=x,
            y=y,
            z=z,
            t=t,
            energy=t,  # the original reports the dummy time as energy; kept for fidelity
        )


class CrashDummy(Dummy):
    """Like dummy, but with `crash_dummy_probability` it either raises or hangs forever (until the worker's
    per-pixel timeout kills it). With `SKYSCAN_DUMMY_SEED` set, the same pixels crash on every attempt."""

    name = "crash_dummy"

    def reconstruct(self, task: PixelTask) -> RecoPixelVariation:
        result = super().reconstruct(task)
        rng = _rng(self.settings, task, "crash")
        if rng.random() < self.settings.crash_dummy_probability:
            if rng.random() < 0.5:
                raise KeyError("intentional crash-dummy error")
            while True:
                time.sleep(1)
        return result
