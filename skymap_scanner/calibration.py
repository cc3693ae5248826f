"""The 90 % contour level calibrated on simulation, as a function of the event's brightness.

Wilks' theorem (2ΔLLH = 4.61 for 2 degrees of freedom) assumes an exact likelihood; ours is not
(an approximate photon pdf, stochastic losses it does not model), so the level that really
contains the truth 90 % of the time is measured on simulated events: 2ΔLLH(truth) is twice the llh
of the finest scanned pixel containing the true direction minus the best-fit llh, and the level is
its 90 % quantile. That quantile grows with the event's brightness (bright events have sharper,
but not proportionally more accurate, likelihoods), so it is modelled as

    log(level) = alpha + beta * log10(E_tot / GeV),    clipped to [level_min, level_max],

with ``E_tot`` the best-fit pixel's charge proxy (``E_tot`` column of the result: 5 GeV per
photo-electron of the cleaned hits, see ``physics/trackfit.py``), fitted by linear quantile
regression of ``log(max(2ΔLLH, 1e-3))`` (:func:`fit_level_model`). ``CALIBRATION_90`` holds the
fitted model and ``CALIBRATION_PROVENANCE`` how it was measured; re-measure them whenever the
simulation, the likelihood or the nside progression changes (``bench/accuracy.py``).

This module imports nothing heavy: the scanner server uses it to write the calibrated level and the
sky's distinct minima into every result (``minima.py``). ``products.calibration`` re-exports it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike

#: Quantile of 2ΔLLH(truth) that the level is calibrated to.
QUANTILE_90 = 0.9


@dataclass(frozen=True)
class LevelModel:
    """``level(E_tot) = clip(exp(alpha + beta log10(E_tot)), level_min, level_max)``."""

    alpha: float
    beta: float
    level_min: float
    level_max: float

    def level(self, e_tot_gev: float) -> float:
        """The calibrated 2ΔLLH level for an event whose best fit has charge proxy ``e_tot_gev``."""
        if not (math.isfinite(e_tot_gev) and e_tot_gev > 0.0):
            return self.level_max
        value = math.exp(self.alpha + self.beta * math.log10(e_tot_gev))
        return min(max(value, self.level_min), self.level_max)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def fit_level_model(
    e_tot_gev: ArrayLike, delta2_truth: ArrayLike, *, quantile: float = QUANTILE_90
) -> LevelModel | None:
    """Linear quantile regression of ``log(2ΔLLH(truth))`` on ``log10(E_tot)`` (None: < 10 events).

    The bounds ``level_min``/``level_max`` are the model's values at the 5th and 95th percentiles
    of ``log10(E_tot)`` (no extrapolation beyond the calibrated brightness range).
    """
    x_all = np.log10(np.asarray(e_tot_gev, dtype=np.float64))
    d = np.asarray(delta2_truth, dtype=np.float64)
    ok = np.isfinite(x_all) & np.isfinite(d)
    x, y = x_all[ok], np.log(np.maximum(d[ok], 1e-3))
    if x.size < 10:
        return None
    from scipy import optimize  # only when calibrating: the scanner server does not need scipy

    def pinball(p: np.ndarray) -> float:
        r = y - (p[0] + p[1] * x)
        return float(np.sum(np.maximum(quantile * r, (quantile - 1.0) * r)))

    start = np.array([float(np.quantile(y, quantile)), 0.0])
    best = optimize.minimize(
        pinball,
        start,
        method="Nelder-Mead",
        options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 4000},
    )
    alpha, beta = (float(v) for v in best.x)
    lo_x, hi_x = (float(v) for v in np.quantile(x, [0.05, 0.95]))
    ends = sorted(math.exp(alpha + beta * v) for v in (lo_x, hi_x))
    return LevelModel(alpha, beta, ends[0], ends[1])


#: The calibrated model (see CALIBRATION_PROVENANCE).
CALIBRATION_90: Final[LevelModel] = LevelModel(
    alpha=math.log(17.33), beta=0.0, level_min=17.33, level_max=17.33
)
#: One level for all events, kept for callers that take a single number (the model at its median
#: calibration brightness).
CALIBRATED_DELTA_LLH_90: Final[float] = 17.33
#: How it was measured, for the record.
CALIBRATION_PROVENANCE: Final[dict[str, Any]] = {
    "note": "placeholder: the toy-simulation level of 2026-11-26 until the independent simulator's "
    "calibration is measured",
}


def calibrated_level_90(e_tot_gev: float) -> float:
    """The stored calibrated 90 % level (2ΔLLH) for a best fit with charge proxy ``e_tot_gev``."""
    return CALIBRATION_90.level(e_tot_gev)
