"""Per-event set-up of the likelihood: the hit/no-hit term's brightness and the choice between the
through-going and the starting-track hypothesis.

Both are decided once per event (every worker of a scan makes the same choice from the same event):

1. the through-going track is fitted (timing terms only) at probe directions: the LineFit direction
   and the 48 centres of the HEALPix nside-2 pixels, in detector coordinates;
2. with the hit/no-hit term, its brightness is fitted at the best probe (``nohit.fit_brightness``);
3. with ``starting="auto"``, both hypotheses are fitted with the full likelihood at the three best
   probes, and the event is called **starting** when the best starting-track -log L is lower than the
   best through-going one by more than ``threshold`` nat. The starting hypothesis contains the
   through-going one (a vertex far upstream), so without a threshold it would always win by its extra
   freedom; the dark DOMs upstream of a real vertex make the difference large.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np

from .. import healpix
from ..events import PulseEvent
from .hits import HitSeries
from .likelihood import INV_C, LikelihoodOptions, TrackLikelihood
from .linefit import linefit
from .nohit import fit_brightness, nohit_term
from .trackfit import TrackFit, fit_pixel, rotation_matrix

log = logging.getLogger(__name__)

PROBE_NSIDE = 2
N_DECIDE = 3


@dataclass(frozen=True)
class EventSetup:
    """The event's likelihood options and how they were chosen."""

    options: LikelihoodOptions
    llh_through: float
    llh_starting: float
    brightness: float


def probe_directions(hits: HitSeries) -> list[tuple[float, float]]:
    """(zenith, azimuth) of the LineFit direction and the nside-2 pixel centres."""
    first = linefit(hits)
    out = [(first.zenith, first.azimuth)]
    vec = healpix.pix2vec(PROBE_NSIDE, np.arange(healpix.nside2npix(PROBE_NSIDE)))
    for x, y, z in vec:
        out.append((math.acos(max(-1.0, min(1.0, float(z)))), math.atan2(float(y), float(x))))
    return out


def _params(
    hits: HitSeries, zen: float, azi: float, fit: TrackFit, options: LikelihoodOptions
) -> tuple[TrackLikelihood, np.ndarray]:
    """The likelihood of a direction and the through-going parameters (a, b, t0) of a fit there."""
    rot = rotation_matrix(zen, azi)
    e1, e2, p = rot[:, 0], rot[:, 1], -rot[:, 2]
    lk = TrackLikelihood(hits, e1, e2, p, options)
    rel = fit.position - lk.cog
    return lk, np.array([rel @ e1, rel @ e2, fit.t - float(rel @ p) * INV_C])


def setup_event(
    event: PulseEvent,
    hits: HitSeries,
    options: LikelihoodOptions,
    *,
    nohit: bool,
    starting: str,
    threshold: float,
) -> EventSetup:
    """The likelihood options of this event (module docstring); ``starting`` is auto|always|never."""
    if not nohit and starting != "auto":
        return EventSetup(
            replace(options, starting=starting == "always", nohit=None),
            math.nan,
            math.nan,
            math.nan,
        )
    first = linefit(hits)
    through = replace(options, starting=False, nohit=None)
    probes = []
    for zen, azi in probe_directions(hits):
        fit = fit_pixel(hits, zen, azi, first.pos, first.time, mpe=options.mpe, options=through)
        probes.append((fit.llh, zen, azi, fit))
    probes.sort(key=lambda r: r[0])
    brightness = math.nan
    if nohit:
        _, zen, azi, fit = probes[0]
        term = nohit_term(event, hits)
        lk, params = _params(hits, zen, azi, fit, replace(through, nohit=term))
        brightness = fit_brightness(lk, params)
        options = replace(options, nohit=replace(term, brightness=brightness))
    else:
        options = replace(options, nohit=None)
    if starting != "auto":
        return EventSetup(
            replace(options, starting=starting == "always"), probes[0][0], math.nan, brightness
        )
    best_t, best_s = math.inf, math.inf
    for _, zen, azi, fit in probes[:N_DECIDE]:
        seed = fit.position
        ft = fit_pixel(
            hits, zen, azi, seed, fit.t, mpe=options.mpe, options=replace(options, starting=False)
        )
        fs = fit_pixel(
            hits, zen, azi, seed, fit.t, mpe=options.mpe, options=replace(options, starting=True)
        )
        best_t, best_s = min(best_t, ft.llh), min(best_s, fs.llh)
    is_starting = best_t - best_s > threshold
    log.info(
        "hypothesis: %s (-log L through-going %.1f, starting %.1f), brightness %.3g",
        "starting" if is_starting else "through-going",
        best_t,
        best_s,
        brightness,
    )
    return EventSetup(replace(options, starting=is_starting), best_t, best_s, brightness)
