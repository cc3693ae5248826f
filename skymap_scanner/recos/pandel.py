"""`pandel_spe` and `pandel_mpe`: the track likelihood of physics.md for each pixel.

The event is cleaned once per worker; each pixel fixes the direction (its centre, turned into detector
coordinates at the event time) and fits the transverse vertex and time from its seed: the parent pixel's fit
at finer nsides, the event's LineFit at the first. The seven position variations of the original's
splinempe are fitted together in one vectorised call, so the server sends one message per pixel."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from skyscan_contract.messages import PixelTask, RecoPixelVariation, Seed

from ..events import PulseEvent, parse_event
from ..physics.coordinates import equa_to_dir
from ..physics.hits import HitSeries
from ..physics.linefit import linefit
from ..physics.trackfit import fit_pixel
from .base import Reconstruction, StartupData


def _hits(event: dict[str, Any]) -> tuple[PulseEvent, HitSeries]:
    parsed = parse_event(event)
    if not isinstance(parsed, PulseEvent):
        raise TypeError("physics reconstructions need a pulse-event/1 event")
    hits = HitSeries.from_pulses(
        parsed.string, parsed.om, parsed.time, parsed.charge, parsed.position
    )
    if len(hits) == 0:
        raise ValueError("no hit DOM survives the hit cleaning: nothing to reconstruct")
    return parsed, hits


class PandelMPE(Reconstruction):
    name = "pandel_mpe"
    mpe: ClassVar[bool] = True

    def __init__(self, startup: StartupData) -> None:
        super().__init__(startup)
        self.event, self.hits = _hits(startup.event)

    @classmethod
    def fallback_seed(cls, event: dict[str, Any]) -> Seed:
        _, hits = _hits(event)
        first = linefit(hits)
        x, y, z = (float(v) for v in first.pos)
        return Seed(x=x, y=y, z=z, t=float(first.time))

    def reconstruct(self, task: PixelTask) -> RecoPixelVariation:
        zenith, azimuth = equa_to_dir(task.ra, task.dec, self.event.metadata.mjd)
        seed = task.seed
        fit = fit_pixel(
            self.hits,
            float(zenith),
            float(azimuth),
            np.array([seed.x, seed.y, seed.z]),
            seed.t,
            mpe=self.mpe,
        )
        return RecoPixelVariation(
            nside=task.nside,
            pixel=task.pixel,
            posvar=task.posvar,
            llh=fit.llh,
            e_in=fit.e_in,
            e_tot=fit.e_tot,
            x=fit.x,
            y=fit.y,
            z=fit.z,
            t=fit.t,
            energy=fit.e_tot if math.isfinite(fit.e_tot) else math.nan,
        )


class PandelSPE(PandelMPE):
    name = "pandel_spe"
    mpe = False
