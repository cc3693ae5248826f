"""Event-level first guess: LineFit (least squares ``r_i = r0 + v t_i``) with a Huber step.

The fit uses each DOM's position and first-hit time (one point per DOM, unweighted). The plain
least-squares solution is

    v = sum (r_i - <r>)(t_i - <t>) / sum (t_i - <t>)^2,   r0 = <r> - v <t>,

and, if ``huber_delta_m`` is given, ``n_iter`` iteratively-reweighted steps follow with Huber
weights ``w_i = min(1, delta / |r_i - r0 - v t_i|)`` (delta = 153 m by default, the value used
by IceCube's improved LineFit), which suppresses scattered-light outliers.

Outputs: the seed vertex is the charge-weighted centre of gravity (COG); the seed time is the time
at which the fitted line passes the point closest to the COG; the direction is the direction the
particle comes **from**, ``-v/|v|``, as (zenith, azimuth). Degenerate input (fewer than two DOMs
or no time spread) gives ``v = 0``, zenith = azimuth = 0 and the charge-weighted mean time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from skymap_scanner.physics.hits import HitSeries

FloatArray = NDArray[np.float64]

#: Default Huber scale (m).
HUBER_DELTA_M: float = 153.0


@dataclass(frozen=True)
class LineFitResult:
    """LineFit seed: vertex (COG, m), time (ns), FROM direction (rad) and velocity (m/ns)."""

    pos: FloatArray
    time: float
    zenith: float
    azimuth: float
    velocity: FloatArray

    @property
    def speed(self) -> float:
        """|v| in m/ns."""
        return float(np.linalg.norm(self.velocity))


def direction_from_vector(vec: NDArray[np.float64]) -> tuple[float, float]:
    """(zenith, azimuth) of the unit vector along ``vec`` (azimuth in [0, 2 pi))."""
    n = float(np.linalg.norm(vec))
    if n == 0.0:
        return 0.0, 0.0
    u = vec / n
    zen = math.acos(min(1.0, max(-1.0, float(u[2]))))
    azi = math.atan2(float(u[1]), float(u[0])) % (2.0 * math.pi)
    return zen, azi


def _weighted_line(
    pos: FloatArray, t: FloatArray, w: FloatArray
) -> tuple[FloatArray, FloatArray] | None:
    sw = float(np.sum(w))
    t_mean = float(w @ t) / sw
    r_mean = (w @ pos) / sw
    dt = t - t_mean
    var_t = float(w @ (dt * dt))
    if not var_t > 0.0:
        return None
    v = ((w * dt) @ (pos - r_mean)) / var_t
    r0 = r_mean - v * t_mean
    return r0, v


def linefit(
    hits: HitSeries, *, huber_delta_m: float | None = HUBER_DELTA_M, n_iter: int = 5
) -> LineFitResult:
    """LineFit first guess for a non-empty :class:`HitSeries` (see the module docstring)."""
    if len(hits) == 0:
        raise ValueError("linefit needs at least one hit DOM")
    cog = hits.cog()
    pos = hits.pos
    t = hits.time
    qw = np.maximum(hits.charge, 0.0)
    fallback_time = float(qw @ t / np.sum(qw)) if float(np.sum(qw)) > 0 else float(np.mean(t))
    w = np.ones_like(t)
    sol = _weighted_line(pos, t, w) if len(hits) >= 2 else None
    if sol is None:
        return LineFitResult(cog, fallback_time, 0.0, 0.0, np.zeros(3))
    r0, v = sol
    if huber_delta_m is not None:
        for _ in range(n_iter):
            resid = np.linalg.norm(pos - r0 - np.outer(t, v), axis=1)
            w = np.minimum(1.0, huber_delta_m / np.maximum(resid, 1e-12))
            new = _weighted_line(pos, t, w)
            if new is None:
                break
            r0, v = new
    v2 = float(v @ v)
    if not v2 > 0.0:
        return LineFitResult(cog, fallback_time, 0.0, 0.0, np.zeros(3))
    t_seed = float((cog - r0) @ v) / v2
    zen, azi = direction_from_vector(-v)
    return LineFitResult(cog, t_seed, zen, azi, v)
