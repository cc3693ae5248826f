"""The report that a pixel-variation failed for good: a `PixelResult` with NaN values, `failed` set and the
error. Made by a worker after `max_pixel_attempts`, and by the server for a task that ended on the
dead-letter queue, so that the scan never waits for that pixel."""

from __future__ import annotations

import math

from skyscan_contract.messages import PixelResult, PixelTask, RecoPixelVariation


def failed_result(task: PixelTask, error: str, worker: str) -> PixelResult:
    nan = math.nan
    reco = RecoPixelVariation(
        nside=task.nside,
        pixel=task.pixel,
        posvar=task.posvar,
        llh=nan,
        e_in=nan,
        e_tot=nan,
        x=nan,
        y=nan,
        z=nan,
        t=nan,
        energy=nan,
    )
    return PixelResult(
        reco_pixel_variation=reco,
        runtime=0.0,
        sent_at=task.sent_at,
        attempts=task.attempt,
        failed=True,
        error=error[-2000:],
        worker=worker,
    )
