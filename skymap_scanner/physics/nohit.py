"""Set-up of the hit/no-hit term for one event: which dark DOMs count, and the track's brightness.

* **Dark DOMs**: live DOMs of the detector without any pulse (not even one removed by the hit
  cleaning), within ``CANDIDATE_RADIUS_M`` of a hit DOM that survived the cleaning: a track far from
  every hit DOM is already excluded by the timing terms, so only the dark DOMs near the light can
  tell anything.
* **Amplitude**: ``A(d, cos eta) = exp(-d / 45 m) / (d + 10 m)`` (and a mild forward-acceptance
  factor ``1 + 0.3 cos eta``): the mean photo-electrons of a bare muon's light, per metre of light, as
  a function of the distance measured on the independent simulator (about 0.45 PE at 30 m and 0.02
  at 120 m in average ice, with the SPICE layers making it vary ~2x either way).
* **Brightness** ``Lambda``: the value maximising the hit/no-hit likelihood
  ``sum_hit log(1 - exp(-Lambda g)) - sum_dark Lambda g`` (``g = rde A``) for a reference track (the
  best probe of the hypothesis choice); it stays fixed during the scan. Being a hit/no-hit estimate,
  it is insensitive to the few DOMs made very bright by stochastic losses.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from ..events import PulseEvent
from ..events.geometry import load_geometry
from .hits import HitSeries
from .likelihood import NoHitTerm, TrackLikelihood

FloatArray = NDArray[np.float64]

CANDIDATE_RADIUS_M = 100.0
ATTENUATION_M = 45.0
D0_M = 10.0
ACCEPTANCE_SLOPE = 0.3
MAX_DISTANCE_M = 120.0


def dark_doms(event: PulseEvent, hits: HitSeries) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Positions and efficiencies of the dark candidate DOMs, and the hit DOMs' efficiencies."""
    geo = load_geometry(event.detector)
    live = np.flatnonzero(geo.live)
    pulsed = set(zip(event.string.tolist(), event.om.tolist(), strict=True))
    dark = np.array(
        [i for i in live if (int(geo.string[i]), int(geo.om[i])) not in pulsed], dtype=np.int64
    )
    pos = geo.position[dark]
    near = cKDTree(hits.pos).query(pos, distance_upper_bound=CANDIDATE_RADIUS_M)[0]
    keep = np.isfinite(near)
    hit_rde = geo.efficiency_of(hits.string, hits.om)
    return pos[keep], geo.efficiency[dark][keep], hit_rde


def nohit_term(event: PulseEvent, hits: HitSeries, brightness: float = 1.0) -> NoHitTerm:
    """The term with the event's dark DOMs and a given brightness."""
    pos, rde, hit_rde = dark_doms(event, hits)
    return NoHitTerm(
        brightness=brightness,
        unhit_pos=pos,
        unhit_rde=rde,
        hit_rde=hit_rde,
        attenuation_m=ATTENUATION_M,
        d0_m=D0_M,
        acceptance_slope=ACCEPTANCE_SLOPE,
        max_distance_m=MAX_DISTANCE_M,
    )


def fit_brightness(lk: TrackLikelihood, params: FloatArray) -> float:
    """Maximum-likelihood ``Lambda`` of the hit/no-hit term at the track ``params`` (n_params,).

    ``lk`` must have been built with a no-hit term (its brightness is ignored).
    """
    g_hit, g_dark = lk.unit_amplitudes(params.reshape(1, -1))
    g_hit = g_hit[g_hit > 0.0]
    dark_sum = float(g_dark.sum())
    if g_hit.size == 0:
        return 0.0
    if dark_sum <= 0.0:
        return float(10.0 / g_hit.min())

    def slope(lam: float) -> float:
        # d/dLambda of sum log(1 - exp(-Lambda g)) - Lambda sum g_dark
        return float(np.sum(g_hit / np.expm1(lam * g_hit))) - dark_sum

    lo, hi = 1e-6, 1.0
    while slope(hi) > 0.0 and hi < 1e12:
        hi *= 4.0
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        if slope(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)
