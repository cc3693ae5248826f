"""`pandel_spe` and `pandel_mpe`: the track likelihood of physics.md for each pixel.

The event is cleaned once per worker, and the worker sets up the event's likelihood once
(``SKYSCAN_PANDEL_*`` settings, :class:`PandelSettings`): layered-ice scaling, the MPE photon cap, the
hit/no-hit term, and the per-event choice of the starting-track hypothesis. Each pixel fixes the
direction (its centre, turned into detector coordinates at the event time) and fits the track from its
seed: the parent pixel's fit at finer nsides, the event's LineFit at the first. The seven position
variations of the original's splinempe are fitted together in one vectorised call, so the server sends
one message per pixel. For a starting track the reported X, Y, Z, T are its fitted vertex and time."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from skyscan_contract.messages import PixelTask, RecoPixelVariation, Seed

from ..events import PulseEvent, parse_event
from ..physics.coordinates import equa_to_dir
from ..physics.hits import HitSeries
from ..physics.hypothesis import setup_event
from ..physics.ice import spice_ice
from ..physics.likelihood import LikelihoodOptions
from ..physics.linefit import linefit
from ..physics.trackfit import TrackFit, fit_pixel
from .base import Reconstruction, StartupData
from .pandel_settings import PandelSettings


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


def likelihood_options(settings: PandelSettings, *, mpe: bool) -> LikelihoodOptions:
    """The event-independent part of the likelihood options."""
    return LikelihoodOptions(
        mpe=mpe,
        ice=spice_ice() if settings.ice == "layered" else None,
        ice_reference_b=1.0 / settings.ice_reference_scattering_m,
        ice_exponent=settings.ice_exponent,
        max_photons=settings.max_photons if settings.max_photons > 0 else None,
    )


class PandelMPE(Reconstruction):
    name = "pandel_mpe"
    mpe: ClassVar[bool] = True

    def __init__(self, startup: StartupData) -> None:
        super().__init__(startup)
        self.settings = PandelSettings.model_validate(startup.reco_config)
        self.event, self.hits = _hits(startup.event)
        self.setup = setup_event(
            self.event,
            self.hits,
            likelihood_options(self.settings, mpe=self.mpe),
            nohit=self.settings.nohit,
            starting=self.settings.starting,
            threshold=self.settings.starting_threshold,
        )
        self.options = self.setup.options

    @classmethod
    def config_from_env(cls) -> dict[str, Any]:
        return PandelSettings().model_dump()

    @classmethod
    def fallback_seed(cls, event: dict[str, Any]) -> Seed:
        _, hits = _hits(event)
        first = linefit(hits)
        x, y, z = (float(v) for v in first.pos)
        return Seed(x=x, y=y, z=z, t=float(first.time))

    def fit_direction(self, zenith: float, azimuth: float, seed: Seed) -> TrackFit:
        """The pixel fit at a detector direction (radians) from a seed."""
        return fit_pixel(
            self.hits,
            zenith,
            azimuth,
            np.array([seed.x, seed.y, seed.z]),
            seed.t,
            mpe=self.mpe,
            options=self.options,
        )

    def reconstruct(self, task: PixelTask) -> RecoPixelVariation:
        zenith, azimuth = equa_to_dir(task.ra, task.dec, self.event.metadata.mjd)
        fit = self.fit_direction(float(zenith), float(azimuth), task.seed)
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
