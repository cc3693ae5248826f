"""Muon energy losses in ice: continuous ionisation plus stochastic radiative losses.

The muon energy loss is ``-dE/dx = a + b E`` on average (ice, per metre):

* ``a = IONISATION_GEV_PER_M`` = 0.2375 GeV/m (0.259 GeV per m.w.e. times the ice density 0.917;
  Chirkin & Rhode 2004, hep-ph/0407075, the values for ice above ~1 TeV), treated as continuous;
* ``b = 3.33e-4 /m`` (3.63e-4 per m.w.e., same source), split into bremsstrahlung (35 %),
  e+e- pair production (50 %) and photonuclear interactions (15 %), the approximate shares in
  ice at 10-1000 TeV (Groom, Mokhov & Striganov 2001, At. Data Nucl. Data Tables 78, 183).

Each radiative process ``k`` has a spectrum ``dN/dv`` in the fraction ``v`` of the muon energy
lost, normalised to ``integral v dN/dv dv = b_k`` and independent of the energy (the scaling of
radiative processes at high energy; its slow logarithmic growth is left out):

* bremsstrahlung: ``(4/3 (1 - v) + v^2) / v``, the complete-screening shape (Tsai 1974; Groom et al.);
* photonuclear: ``(1 - v + v^2 / 2) / v``, the Weizsaecker-Williams photon-flux shape of the
  Bezrukov-Bugaev cross section without its slowly varying factor;
* pair production: ``(1 - v) / (v (v + 2e-4) sqrt(1 + v / 0.02))``, an approximation with the
  qualitative features of Kelner-Kokoulin-Petrukhin: energy transfer spread evenly over
  ``v`` ~ 2e-4 - 2e-2 (per logarithmic interval) and falling faster above.

Losses above ``STOCHASTIC_CUT_GEV`` = 1 GeV are drawn one by one (Poisson counts per step, ``v``
by inverse CDF); those below are added to the continuous loss. Bremsstrahlung and pair losses
make electromagnetic cascades, photonuclear ones hadronic cascades.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Continuous ionisation loss of a muon in ice, GeV/m.
IONISATION_GEV_PER_M = 0.259 * 0.917
#: Total radiative energy-loss coefficient in ice, 1/m.
RADIATIVE_B_PER_M = 3.63e-4 * 0.917
#: Share of the radiative loss of (bremsstrahlung, pair production, photonuclear).
PROCESS_SHARES = (0.35, 0.50, 0.15)
#: Losses above this energy are simulated one by one, GeV.
STOCHASTIC_CUT_GEV = 1.0
#: Step of the muon propagation, m.
STEP_M = 5.0
#: A muon below this energy is stopped (its remaining range is < 1 m), GeV.
STOP_ENERGY_GEV = 0.2

_V_MIN = 1e-10
_GRID = np.logspace(math.log10(_V_MIN), 0.0, 4001)


def _shape(process: int, v: FloatArray) -> FloatArray:
    """Unnormalised ``dN/dv`` of process 0 (brems), 1 (pair), 2 (photonuclear)."""
    if process == 0:
        out: FloatArray = (4.0 / 3.0 * (1.0 - v) + v * v) / v
    elif process == 1:
        out = (1.0 - v) / (v * (v + 2e-4) * np.sqrt(1.0 + v / 0.02))
    else:
        out = (1.0 - v + 0.5 * v * v) / v
    return out


@dataclass(frozen=True)
class _Spectrum:
    """Cumulative integrals on ``_GRID`` of ``dN/dv`` (from v to 1) and ``v dN/dv`` (from 0 to v)."""

    rate_above: FloatArray  # integral_v^1 dN/dv dv, decreasing, per metre
    loss_below: FloatArray  # integral_0^v v dN/dv dv, increasing, per metre


@functools.lru_cache(maxsize=1)
def _spectra() -> tuple[_Spectrum, ...]:
    out = []
    v = _GRID
    for k, share in enumerate(PROCESS_SHARES):
        f = _shape(k, v)
        # trapezoid in log v: integrand * v d(log v)
        dlog = np.diff(np.log(v))
        n_seg = 0.5 * (f[1:] * v[1:] + f[:-1] * v[:-1]) * dlog
        e_seg = 0.5 * (f[1:] * v[1:] ** 2 + f[:-1] * v[:-1] ** 2) * dlog
        e_below = np.concatenate([[0.0], np.cumsum(e_seg)])
        norm = share * RADIATIVE_B_PER_M / e_below[-1]
        rate_above = np.concatenate([np.cumsum(n_seg[::-1])[::-1], [0.0]]) * norm
        out.append(_Spectrum(rate_above, e_below * norm))
    return tuple(out)


@dataclass(frozen=True)
class MuonLosses:
    """A muon's path: energies at the step boundaries and its stochastic losses.

    ``s`` (m) runs along the track from its start; ``energy[i]`` is the energy at ``s_grid[i]``;
    the muon stops at ``s_grid[-1]`` (range-out or the end of the requested length).
    """

    s_grid: FloatArray
    energy: FloatArray
    loss_s: FloatArray
    loss_energy: FloatArray
    loss_hadronic: NDArray[np.bool_]

    @property
    def length_m(self) -> float:
        return float(self.s_grid[-1])

    def energy_at(self, s: FloatArray) -> FloatArray:
        """Muon energy (GeV) at distances ``s`` along the track (linear between steps)."""
        out: FloatArray = np.interp(s, self.s_grid, self.energy)
        return out


def propagate_muon(rng: np.random.Generator, energy_gev: float, max_length_m: float) -> MuonLosses:
    """Follow a muon of ``energy_gev`` for up to ``max_length_m`` metres (module docstring)."""
    spectra = _spectra()
    n_steps = max(1, math.ceil(max_length_m / STEP_M))
    s_grid = [0.0]
    energies = [float(energy_gev)]
    loss_s: list[FloatArray] = []
    loss_e: list[FloatArray] = []
    loss_h: list[NDArray[np.bool_]] = []
    e = float(energy_gev)
    s = 0.0
    for _ in range(n_steps):
        step = min(STEP_M, max_length_m - s)
        if step <= 0.0 or e <= STOP_ENERGY_GEV:
            break
        v_cut = min(max(STOCHASTIC_CUT_GEV / e, _V_MIN), 1.0)
        j = min(int(np.searchsorted(_GRID, v_cut)), _GRID.shape[0] - 1)
        continuous = IONISATION_GEV_PER_M + e * sum(sp.loss_below[j] for sp in spectra)
        rates = np.array([sp.rate_above[j] for sp in spectra])
        counts = rng.poisson(rates * step)
        total = 0.0
        for k, c in enumerate(counts):
            if c == 0:
                continue
            sp = spectra[k]
            # inverse CDF of the count spectrum restricted to [v_cut, 1]
            target = rng.uniform(0.0, sp.rate_above[j], int(c))
            v = np.interp(target, sp.rate_above[::-1], _GRID[::-1])
            where = s + rng.uniform(0.0, step, int(c))
            loss = np.minimum(v * e, e)
            loss_s.append(where)
            loss_e.append(loss)
            loss_h.append(np.full(int(c), k == 2))
            total += float(loss.sum())
        e = max(e - continuous * step - total, 0.0)
        s += step
        s_grid.append(s)
        energies.append(e)
    if loss_s:
        ls, le, lh = np.concatenate(loss_s), np.concatenate(loss_e), np.concatenate(loss_h)
        keep = ls <= s
        order = np.argsort(ls[keep], kind="stable")
        ls, le, lh = ls[keep][order], le[keep][order], lh[keep][order]
    else:
        ls, le, lh = np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
    return MuonLosses(np.array(s_grid), np.array(energies), ls, le, lh)


def mean_loss_per_m(energy_gev: float) -> float:
    """``a + b E`` (GeV/m), the mean energy loss of the model."""
    return IONISATION_GEV_PER_M + RADIATIVE_B_PER_M * energy_gev
