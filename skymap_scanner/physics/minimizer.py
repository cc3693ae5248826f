"""A compact deterministic BFGS, run for several starting points in lockstep.

Armijo backtracking with safeguarded quadratic interpolation on scaled parameters; the step length
is capped (``MAX_STEP`` scaled units at first, doubled up to ``MAX_STEP_GROWN`` while full capped steps
keep succeeding, halved after backtracking), so that runaways towards far tracks at wrong directions
stay cheap; the inverse Hessian is reset after a failed line search. A run stops when a step is
< 1e-3 scaled units (or < 0.05 with a gain < ``F_TOL``), the gradient vanishes, or after
``max_evals`` evaluations; the best accepted point is returned, so the value is always finite.
The transverse position (first two parameters) is kept within ``MAX_RADIUS_M`` of the origin.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Objective = Callable[[FloatArray], tuple[FloatArray, FloatArray]]

MAX_STEP = 5.0
MAX_STEP_GROWN = 80.0
MAX_RADIUS_M = 2000.0
F_TOL = 1e-5


def _clamp(z: FloatArray, scale: FloatArray) -> FloatArray:
    """Keep the transverse position (the first two scaled parameters) within MAX_RADIUS_M of the
    COG, and an along-track vertex (a fourth parameter) within MAX_RADIUS_M too."""
    r = math.hypot(float(z[0]), float(z[1])) * float(scale[0])
    if r > MAX_RADIUS_M:
        z = z.copy()
        z[:2] *= MAX_RADIUS_M / r
    if z.shape[0] > 3 and abs(float(z[3]) * float(scale[3])) > MAX_RADIUS_M:
        z = z.copy()
        z[3] = math.copysign(MAX_RADIUS_M / float(scale[3]), float(z[3]))
    return z


class _Bfgs:
    """One BFGS minimisation (scaled parameters) as a state machine fed by batched evaluations.

    ``trial`` is the next point to evaluate; :meth:`receive` takes its value and gradient.
    Armijo backtracking with safeguarded quadratic interpolation; the step length is capped
    (``MAX_STEP`` scaled units, doubled up to ``MAX_STEP_GROWN`` while full capped steps keep
    succeeding, halved after backtracking); inverse Hessian reset after a failed line search.
    """

    def __init__(self, z0: FloatArray, max_evals: int, scale: FloatArray) -> None:
        self.scale = scale
        self.z = _clamp(z0, scale)
        self.trial = self.z
        self.f = math.inf
        self.g = np.zeros(z0.shape[0])
        self.best_z = self.z
        self.best_f = math.inf
        self.h_inv: FloatArray | None = None
        self.direction = np.zeros(z0.shape[0])
        self.slope = 0.0
        self.alpha = 0.0
        self.alpha0 = 0.0
        self.step_max = 0.0
        self.capped = False
        self.step_cap = MAX_STEP
        self.n_fail = 0
        self.n_evals = 0
        self.max_evals = max_evals
        self.started = False
        self.done = False

    def receive(self, f: float, g: FloatArray) -> None:
        self.n_evals += 1
        if not self.started:
            self.started = True
            self.f, self.g = f, g
            if math.isfinite(f):
                self.best_z, self.best_f = self.z, f
            self._new_direction()
        else:
            self._line_search(f, g)
        if self.n_evals >= self.max_evals:
            self.done = True

    def _new_direction(self) -> None:
        if not (math.isfinite(self.f) and bool(np.all(np.isfinite(self.g)))):
            self.done = True
            return
        g = self.g
        direction = -g if self.h_inv is None else -(self.h_inv @ g)
        slope = float(g @ direction)
        if not slope < 0.0:
            self.h_inv = None
            direction = -g
            slope = float(g @ direction)
            if not slope < 0.0:
                self.done = True
                return
        step_max = float(np.max(np.abs(direction)))
        alpha = min(1.0, self.step_cap / step_max)
        if self.h_inv is None:
            alpha = min(alpha, 1.0 / step_max)
        self.direction, self.slope, self.step_max = direction, slope, step_max
        self.alpha = self.alpha0 = alpha
        self.capped = alpha * step_max >= 0.999 * self.step_cap
        self.trial = _clamp(self.z + alpha * direction, self.scale)

    def _line_search(self, f_new: float, g_new: FloatArray) -> None:
        alpha = self.alpha
        if math.isfinite(f_new) and f_new <= self.f + 1e-4 * alpha * self.slope:
            self._accept(f_new, g_new)
            return
        if not math.isfinite(f_new):
            alpha *= 0.1
        else:
            denom = 2.0 * (f_new - self.f - alpha * self.slope)
            a_q = -self.slope * alpha * alpha / denom if denom > 0.0 else 0.1 * alpha
            alpha = min(max(a_q, 0.1 * alpha), 0.5 * alpha)
        if alpha * self.step_max >= 1e-6:
            self.alpha = alpha
            self.trial = _clamp(self.z + alpha * self.direction, self.scale)
            return
        self.n_fail += 1
        if self.n_fail >= 2 or self.h_inv is None:
            self.done = True
            return
        self.h_inv = None
        self._new_direction()

    def _accept(self, f_new: float, g_new: FloatArray) -> None:
        self.n_fail = 0
        if self.capped and self.alpha == self.alpha0:
            self.step_cap = min(2.0 * self.step_cap, MAX_STEP_GROWN)
        elif self.alpha < self.alpha0:
            self.step_cap = max(0.5 * self.step_cap, MAX_STEP)
        s = self.trial - self.z
        y = g_new - self.g
        decrease = self.f - f_new
        self.z, self.f, self.g = self.trial, f_new, g_new
        if f_new < self.best_f:
            self.best_z, self.best_f = self.z, f_new
        sy = float(s @ y)
        if sy > 1e-12:
            h = self.h_inv if self.h_inv is not None else np.eye(s.shape[0]) * (sy / float(y @ y))
            rho = 1.0 / sy
            hy = h @ y
            self.h_inv = (
                h
                - rho * (np.outer(s, hy) + np.outer(hy, s))
                + (rho * rho * float(y @ hy) + rho) * np.outer(s, s)
            )
        s_max = float(np.max(np.abs(s)))
        if s_max < 1e-3 or (decrease < F_TOL and s_max < 0.05):
            self.done = True
            return
        if float(np.max(np.abs(self.g))) < 1e-4:
            self.done = True
            return
        self._new_direction()


def minimise_many(
    objective: Objective,
    x0: FloatArray,
    scale: FloatArray,
    max_evals: int,
    prune_margin: float | None = None,
    prune_after: int = 10,
) -> tuple[FloatArray, FloatArray]:
    """Run one BFGS per row of ``x0`` (k, n) in lockstep; returns best params (k, n), values (k,).

    ``objective(params (m, n)) -> (values (m,), gradients (m, n))`` is called once per round with
    the trial points of all active runs. ``scale`` (n,) are the parameters' natural units. With
    ``prune_margin``, a run that has made at least ``prune_after`` evaluations and whose best value
    is still more than ``prune_margin`` above the best of all runs is stopped there.
    """
    runs = [_Bfgs(row / scale, max_evals, scale) for row in x0]
    while True:
        active = [r for r in runs if not r.done]
        if not active:
            break
        trials = np.array([r.trial for r in active]) * scale
        f, g = objective(trials)
        g = g * scale
        for i, r in enumerate(active):
            r.receive(float(f[i]), g[i])
        if prune_margin is not None and len(runs) > 1:
            limit = min(r.best_f for r in runs) + prune_margin
            for r in active:
                if not r.done and r.n_evals >= prune_after and r.best_f > limit:
                    r.done = True
    params = np.array([r.best_z for r in runs]) * scale
    return params, np.array([r.best_f for r in runs])
