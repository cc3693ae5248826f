"""DOM response: from photons crossing (oversized) DOM spheres to per-pulse ``[string, om, t, q]``.

* **Detection**: a tracked photon crossing a DOM sphere of radius ``R`` stands for
  ``photons_per_tracked`` real photons; the real DOM (radius ``DOM_RADIUS_M`` = 0.1651 m) catches
  a fraction ``(0.1651 / R)^2`` of them, and each caught photon gives a photo-electron with
  probability ``HEADON_EFFICIENCY * acceptance(u_z) * rde``. The expected photo-electrons of the
  crossing are drawn from a Poisson distribution (a thinned Poisson process, exact while the
  expectation is <= 1; above, several photo-electrons share the crossing's time, which happens
  only for the brightest events, where the tracked photons are capped).
* ``HEADON_EFFICIENCY`` = 0.065: photo-electrons per 300-600 nm Cherenkov photon hitting the DOM's
  cross-section head-on. Estimate: the R7081-02 quantum efficiency times glass/gel transmission
  averaged over the 1/lambda^2 Cherenkov spectrum (~0.12; peak 0.25 at 390 nm, cut below 330 nm)
  times the photocathode's share of the cross-section head-on (0.0444 m^2 of 0.0856 m^2).
* **Angular acceptance** ``acceptance(x)``, ``x = u_z`` of the photon's direction of travel (+1:
  travelling up, onto the down-facing PMT): IceCube's hole-ice angular sensitivity polynomial
  (10th order in x; clsim's ``GetIceCubeDOMAngularSensitivity(holeIce=True)``, the "H2, 50 cm"
  bubble column), 0.70 at its maximum near x = 0.8, 0.20 head-on, 0.005 from straight above.
* ``rde``: the relative DOM efficiency of the geometry (1.35 for high-QE DeepCore DOMs).
* **Timing**: each photo-electron gets the PMT transit-time spread, Gaussian ``TTS_NS`` = 2 ns.
* **Charge**: single photo-electron charges Normal(1, 0.3), at least 0.1 PE.
* **Pulses**: the photo-electrons of a DOM are merged into pulses over time bins counted from its
  first photo-electron, ``PULSE_BIN_NS`` = 10 ns wide growing by ``PULSE_BIN_GROWTH`` = 1.25 per
  bin (the time of a pulse is its first photo-electron's, the charge the sum), a stand-in for
  waveform unfolding, which resolves the leading edge finely and later light coarsely.
* **Noise**: uncorrelated dark noise, ``noise_rate_hz`` (500 Hz) on every live DOM, single
  photo-electrons uniform in the readout window.

Left out: PMT saturation, pre- and late-pulses, correlated noise bursts, the local-coincidence
condition and trigger, digitiser dead time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .propagation import PhotonHits

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

DOM_RADIUS_M = 0.1651
HEADON_EFFICIENCY = 0.065
TTS_NS = 2.0
SPE_MEAN, SPE_SIGMA, SPE_MIN = 1.0, 0.3, 0.1
PULSE_BIN_NS = 10.0
PULSE_BIN_GROWTH = 1.25
_HOLE_ICE_POLY = (
    0.32813,
    0.63899,
    0.20049,
    -1.2250,
    -0.14470,
    4.1695,
    0.76898,
    -5.8690,
    -2.0939,
    2.3834,
    1.0435,
)
#: Largest value of the acceptance polynomial on [-1, 1].
ACCEPTANCE_MAX = 0.70


def angular_acceptance(u_z: FloatArray) -> FloatArray:
    """Relative angular acceptance for photons travelling with direction cosine ``u_z``."""
    x = np.clip(np.asarray(u_z, dtype=np.float64), -1.0, 1.0)
    out: FloatArray = np.maximum(np.polynomial.polynomial.polyval(x, _HOLE_ICE_POLY), 0.0)
    return out


def detection_probability_scale(dom_radius_oversized_m: float) -> float:
    """Photo-electrons per real photon crossing the oversized sphere, before acceptance and rde."""
    return HEADON_EFFICIENCY * (DOM_RADIUS_M / dom_radius_oversized_m) ** 2


@dataclass(frozen=True)
class PhotoElectrons:
    """Photo-electrons: DOM index (into the live-DOM arrays) and time, ns."""

    dom: IntArray
    time: FloatArray


def photo_electrons(
    rng: np.random.Generator,
    hits: PhotonHits,
    photons_per_tracked: float,
    dom_radius_oversized_m: float,
    rde: FloatArray,
) -> PhotoElectrons:
    """Draw the photo-electrons of the recorded crossings (module docstring)."""
    scale = photons_per_tracked * detection_probability_scale(dom_radius_oversized_m)
    mean = scale * angular_acceptance(hits.u_z) * rde[hits.dom]
    n = rng.poisson(mean)
    dom = np.repeat(hits.dom, n)
    time = np.repeat(hits.time, n) + rng.normal(0.0, TTS_NS, dom.shape[0])
    return PhotoElectrons(dom, time)


@dataclass(frozen=True)
class Pulses:
    """Pulses: DOM index, time (ns), charge (PE)."""

    dom: IntArray
    time: FloatArray
    charge: FloatArray

    @staticmethod
    def concatenate(parts: list[Pulses]) -> Pulses:
        return Pulses(
            np.concatenate([p.dom for p in parts]),
            np.concatenate([p.time for p in parts]),
            np.concatenate([p.charge for p in parts]),
        )


def spe_charges(rng: np.random.Generator, n: int) -> FloatArray:
    """Single photo-electron charges (PE)."""
    out: FloatArray = np.maximum(rng.normal(SPE_MEAN, SPE_SIGMA, n), SPE_MIN)
    return out


def merge_pulses(rng: np.random.Generator, pe: PhotoElectrons) -> Pulses:
    """Merge each DOM's photo-electrons into pulses over growing time bins (module docstring)."""
    if pe.dom.shape[0] == 0:
        return Pulses(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    charge = spe_charges(rng, pe.dom.shape[0])
    order = np.lexsort((pe.time, pe.dom))
    dom, time, q = pe.dom[order], pe.time[order], charge[order]
    first = np.ones(dom.shape[0], dtype=bool)
    first[1:] = dom[1:] != dom[:-1]
    first_idx = np.maximum.accumulate(np.where(first, np.arange(dom.shape[0]), 0))
    since = np.maximum(time - time[first_idx], 0.0)
    growth = PULSE_BIN_GROWTH
    bins = np.floor(np.log1p(since * (growth - 1.0) / PULSE_BIN_NS) / math.log(growth)).astype(
        np.int64
    )
    new = first.copy()
    new[1:] |= bins[1:] != bins[:-1]
    starts = np.flatnonzero(new)
    return Pulses(dom[starts], time[starts], np.add.reduceat(q, starts))


def noise_pulses(
    rng: np.random.Generator, n_doms: int, rate_hz: float, t_start: float, t_end: float
) -> Pulses:
    """Dark-noise single photo-electron pulses on ``n_doms`` DOMs in [t_start, t_end) ns."""
    counts = rng.poisson(rate_hz * 1e-9 * max(t_end - t_start, 0.0), n_doms)
    dom = np.repeat(np.arange(n_doms, dtype=np.int64), counts)
    time = rng.uniform(t_start, t_end, dom.shape[0])
    return Pulses(dom, time, spe_charges(rng, dom.shape[0]))
