"""Cherenkov light of muons and cascades in ice, as tracked photons ready for propagation.

Light is counted in **equivalent track length** (m): the length of a bare, relativistic charged
track that makes the same number of Cherenkov photons. Per metre of track, Frank-Tamm gives
``2 pi alpha (1/300 nm - 1/600 nm)(1 - 1/n^2)`` = 3.25e4 photons in 300-600 nm (n = 1.3195).
Sources (published parametrisations; Raedel & Wiebusch 2012, arXiv:1206.5530 and 2013,
arXiv:1210.5140):

* **bare muon**: 1 m per metre, emitted exactly at the Cherenkov angle ``acos(1/n)`` around the
  muon direction (the muon's own scattering is left out);
* **secondaries below the stochastic cut**: ``0.1880 + 0.0206 ln(E / GeV)`` m per metre (the
  muon's total light is ``1.1880 + 0.0206 ln E`` times the bare muon's), emitted with the cascade
  angular profile below;
* **cascades** (the stochastic losses, the neutrino vertex): ``l = 5.3207 E`` m for
  electromagnetic and ``l = 3.3355 E^1.0366`` m for hadronic cascades (E in GeV; pi+ values), with
  Gaussian fluctuations of standard deviation ``0.0578 sqrt(E)`` m and ``1.1920 E^0.8077`` m
  (truncated at 0); light spread along the axis with the longitudinal profile
  ``Gamma(shape a, scale X0 / b)``, ``a = 2.0185 + 1.4547 log10 E``, ``b = 0.6321`` (EM) and
  ``a = 1.5836 + 0.9645 log10 E``, ``b = 0.3383`` (hadronic), ``X0 = 0.3975 m``; angular profile
  ``dN/dcos = 4.27033 exp(-6.02527 |cos - 1/n|^0.29887) - 0.00103`` (EM cascades; also used for
  hadronic ones, whose profile is slightly broader).

Tracked photons all carry the same number of real photons (``photons_per_tracked``), so the
photons of each source are in proportion to its light. Emission points on the muon are uniform
in its light per metre; the cascade front moves at ``c``, so a photon emitted a distance ``l``
down a cascade starts ``l / c`` after the cascade. Wavelength dependence (dispersion, the spectrum
of absorption) is left out: one effective wavelength for all photons.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..physics.constants import C_VACUUM_M_PER_NS, N_PHASE
from .propagation import rotate_directions

FloatArray = NDArray[np.float64]

FINE_STRUCTURE = 1.0 / 137.035999
#: Cherenkov photons per metre of bare track, 300-600 nm (Frank-Tamm).
PHOTONS_PER_M = (
    2.0 * math.pi * FINE_STRUCTURE * (1.0 / 300e-9 - 1.0 / 600e-9) * (1.0 - 1.0 / N_PHASE**2)
)
RADIATION_LENGTH_ICE_M = 0.3975
COS_CHERENKOV = 1.0 / N_PHASE
_ANG_A, _ANG_B, _ANG_C, _ANG_D = 4.27033, -6.02527, 0.29887, -0.00103


def muon_light_per_m(energy_gev: FloatArray | float) -> FloatArray:
    """Equivalent track length per metre of muon (bare + sub-cut secondaries), m/m."""
    e = np.maximum(np.asarray(energy_gev, dtype=np.float64), 1.0)
    out: FloatArray = 1.1880 + 0.0206 * np.log(e)
    return out


def cascade_length_mean(energy_gev: FloatArray, hadronic: NDArray[np.bool_]) -> FloatArray:
    """Mean equivalent track length (m) of cascades of the given energies (GeV)."""
    e = np.maximum(energy_gev, 1e-3)
    out: FloatArray = np.where(hadronic, 3.3355 * e**1.0366, 5.3207 * e)
    return out


def cascade_length_sample(
    rng: np.random.Generator, energy_gev: FloatArray, hadronic: NDArray[np.bool_]
) -> FloatArray:
    """Equivalent track lengths (m) with the Gaussian fluctuations of the module docstring."""
    e = np.maximum(energy_gev, 1e-3)
    sigma = np.where(hadronic, 1.1920 * e**0.8077, 0.0578 * np.sqrt(e))
    out: FloatArray = np.maximum(
        cascade_length_mean(e, hadronic) + sigma * rng.normal(size=e.shape), 0.0
    )
    return out


@functools.lru_cache(maxsize=1)
def _angular_inverse_cdf() -> tuple[FloatArray, FloatArray]:
    cos = np.linspace(-1.0, 1.0, 20001)
    pdf = np.maximum(_ANG_A * np.exp(_ANG_B * np.abs(cos - COS_CHERENKOV) ** _ANG_C) + _ANG_D, 0.0)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(cos))])
    cdf /= cdf[-1]
    return cdf, cos


def cascade_cos_sample(rng: np.random.Generator, n: int) -> FloatArray:
    """Cosines of the photon angle to the cascade axis, from the angular profile."""
    cdf, cos = _angular_inverse_cdf()
    out: FloatArray = np.interp(rng.random(n), cdf, cos)
    return out


@dataclass(frozen=True)
class Photons:
    """Tracked photons at birth: position (n, 3) m, direction (n, 3), time (n,) ns."""

    pos: FloatArray
    direction: FloatArray
    time: FloatArray

    @property
    def n(self) -> int:
        return int(self.time.shape[0])

    @staticmethod
    def concatenate(parts: list[Photons]) -> Photons:
        if not parts:
            return Photons(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))
        return Photons(
            np.concatenate([p.pos for p in parts]),
            np.concatenate([p.direction for p in parts]),
            np.concatenate([p.time for p in parts]),
        )


def track_photons(
    rng: np.random.Generator,
    n: int,
    start: FloatArray,
    direction: FloatArray,
    t_start: float,
    s: FloatArray,
    *,
    bare_fraction: FloatArray,
) -> Photons:
    """``n`` photons of a muon at distances ``s`` (n,) along ``direction`` from ``start``.

    ``bare_fraction`` (n,) is the probability that a photon is bare-muon light (exact Cherenkov
    angle) rather than sub-cut secondary light (cascade angular profile).
    """
    if n == 0:
        return Photons.concatenate([])
    pos = start[None, :] + s[:, None] * direction[None, :]
    bare = rng.random(n) < bare_fraction
    cos = np.where(bare, COS_CHERENKOV, cascade_cos_sample(rng, n))
    axis = np.broadcast_to(direction, (n, 3)).copy()
    u = rotate_directions(axis, cos, rng.uniform(0.0, 2.0 * math.pi, n))
    return Photons(pos, u, t_start + s / C_VACUUM_M_PER_NS)


def cascade_photons(
    rng: np.random.Generator,
    counts: NDArray[np.int64],
    pos: FloatArray,
    direction: FloatArray,
    time: FloatArray,
    energy_gev: FloatArray,
    hadronic: NDArray[np.bool_],
) -> Photons:
    """``counts[i]`` photons of cascade ``i`` (vertex ``pos[i]``, axis ``direction[i]``, time)."""
    total = int(counts.sum())
    if total == 0:
        return Photons.concatenate([])
    which = np.repeat(np.arange(counts.shape[0]), counts)
    e = np.maximum(energy_gev[which], 1.0)
    had = hadronic[which]
    shape = np.where(had, 1.5836 + 0.9645 * np.log10(e), 2.0185 + 1.4547 * np.log10(e))
    scale = RADIATION_LENGTH_ICE_M / np.where(had, 0.3383, 0.6321)
    depth = rng.gamma(np.maximum(shape, 0.1), scale)
    axis = direction[which]
    start = pos[which] + depth[:, None] * axis
    u = rotate_directions(
        axis.copy(), cascade_cos_sample(rng, total), rng.uniform(0.0, 2.0 * math.pi, total)
    )
    return Photons(start, u, time[which] + depth / C_VACUUM_M_PER_NS)
