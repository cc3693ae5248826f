"""From a likelihood map to a probability map: the convention, the optional smoothing, the record.

A scan gives a −log-likelihood (``llh``) per tile of the merged multi-order map (``multiorder``). The
probability density is

    p(tile) ∝ exp(−s · ΔLLH(tile)),   ΔLLH = llh − min llh,   normalised so that Σ p · Ω = 1,

with Ω the tile's solid angle (sr), so ``p`` is in sr⁻¹. The scale ``s`` is the convention:

- ``wilks`` (``s = 1``, ``systematic_included = false``): the likelihood taken as it is, as
  icecube-skyreader's probability maps do. For a Gaussian likelihood its 90 % credible region is
  Wilks' contour 2ΔLLH ≤ 4.61 (2 degrees of freedom).
- ``calibrated`` (the default, ``systematic_included = true``): ``s = 2·ln(10) / L90`` with ``L90``
  the 2ΔLLH level that contained the true direction of 90 % of simulated events
  (``calibration.CALIBRATED_DELTA_LLH_90``). The likelihood is widened so that, for a Gaussian
  likelihood, the 90 % credible region is exactly the calibrated contour 2ΔLLH ≤ L90 (2·ln 10 =
  4.605 is the 90 % quantile of χ² with 2 degrees of freedom). Other probabilities scale alike:
  the 50 % region is 2ΔLLH ≤ 2·ln 2 · L90 / (2·ln 10).

Smoothing (optional, ``smoothing_deg``): the density is convolved with a Gaussian of that sigma
(degrees), as skyreader does with ``angular_error_floor``: rasterised (mass-conserving) onto a flat
HEALPix map whose pixels are at most sigma/2 wide (never finer than the scan's finest nside),
smoothed with ``healpy.smoothing`` (no iterations of map2alm: the input is smooth
and positive), clipped at zero, renormalised, and put back on the same tiles
(a coarse tile takes the probability of the pixels it covers, a fine tile its share of its pixel).

Tiles with a NaN llh (failed pixels) get zero probability. What was done is in ``Treatment``, which
every product records.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import healpy as hp
import numpy as np
import numpy.typing as npt

from .calibration import CALIBRATED_DELTA_LLH_90
from .multiorder import MultiOrderMap, radec_to_thetaphi

__all__ = [
    "CHI2_2DOF_90",
    "Convention",
    "ProbabilityMap",
    "Treatment",
    "make_treatment",
    "probability_map",
]

LOG = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CHI2_2DOF_90 = 2.0 * math.log(10.0)
"""90 % quantile of χ² with 2 degrees of freedom (4.605; Wilks' 4.61)."""

SR_TO_DEG2 = (180.0 / math.pi) ** 2


class Convention(StrEnum):
    """How the likelihood becomes a probability (see the module docstring)."""

    CALIBRATED = "calibrated"
    WILKS = "wilks"


@dataclass(frozen=True)
class Treatment:
    """What turned the likelihood into the probability map; recorded in every product."""

    convention: Convention
    llh_scale: float
    """``s`` in p ∝ exp(−s·ΔLLH)."""
    delta_llh_90: float
    """2ΔLLH of the 90 % region for a Gaussian likelihood (4.605 for Wilks, L90 if calibrated)."""
    smoothing_deg: float | None
    """Sigma of the Gaussian smoothing in degrees, or None."""

    @property
    def systematic_included(self) -> bool:
        """True when the map is widened beyond the bare likelihood (calibration or smoothing)."""
        return self.convention is Convention.CALIBRATED or bool(self.smoothing_deg)

    @property
    def description(self) -> str:
        """One sentence saying what was done, for people."""
        if self.convention is Convention.CALIBRATED:
            text = (
                f"p ∝ exp(-{self.llh_scale:.4f}·ΔLLH): likelihood widened so that a Gaussian "
                f"likelihood's 90 % region is the calibrated contour 2ΔLLH ≤ {self.delta_llh_90:g} "
                "(measured on simulation)"
            )
        else:
            text = "p ∝ exp(-ΔLLH): the likelihood as it is (Wilks, no systematic)"
        if self.smoothing_deg:
            text += f"; smoothed with a Gaussian of sigma {self.smoothing_deg:g}°"
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly record (the keys products use)."""
        return {
            "convention": self.convention.value,
            "systematic_included": self.systematic_included,
            "llh_scale": self.llh_scale,
            "delta_llh_90": self.delta_llh_90,
            "smoothing_deg": self.smoothing_deg,
            "description": self.description,
        }


def make_treatment(
    convention: Convention | str = Convention.CALIBRATED,
    *,
    smoothing_deg: float | None = None,
    calibrated_delta_llh_90: float = CALIBRATED_DELTA_LLH_90,
) -> Treatment:
    """The ``Treatment`` for a convention.

    Parameters
    ----------
    convention
        ``"calibrated"`` (default) or ``"wilks"``.
    smoothing_deg
        Sigma of an optional Gaussian smoothing [deg]; None or 0 for none.
    calibrated_delta_llh_90
        The calibrated 90 % 2ΔLLH level (dimensionless); only used by ``calibrated``.

    Returns
    -------
    Treatment
        The scale and the record of the choice.
    """
    conv = Convention(convention)
    if smoothing_deg is not None and not (0.0 <= smoothing_deg <= 90.0):
        raise ValueError(f"smoothing_deg={smoothing_deg}: give a sigma between 0 and 90 degrees")
    smooth = smoothing_deg if smoothing_deg else None
    if conv is Convention.WILKS:
        return Treatment(conv, 1.0, CHI2_2DOF_90, smooth)
    if not calibrated_delta_llh_90 > 0:
        raise ValueError(f"calibrated level {calibrated_delta_llh_90} must be > 0")
    scale = CHI2_2DOF_90 / calibrated_delta_llh_90
    return Treatment(conv, scale, float(calibrated_delta_llh_90), smooth)


def _orders(uniq: IntArray) -> tuple[IntArray, IntArray]:
    """(order, nest) of NUNIQ ids: uniq = 4·4**order + nest with 0 ≤ nest < 12·4**order."""
    if uniq.size and int(uniq.min()) < 4:
        raise ValueError("invalid UNIQ id (< 4)")
    order = np.floor(np.log2(uniq // 4) / 2).astype(np.int64)
    # the float estimate can be one off for huge ids: correct it with integer comparisons
    order = np.where(4 * 4 ** (order + 1) <= uniq, order + 1, order)
    order = np.where(4 * 4**order > uniq, order - 1, order)
    return order, uniq - 4 * 4**order


@dataclass(frozen=True)
class ProbabilityMap:
    """Non-overlapping multi-order tiles (sorted by NUNIQ) with a probability density in sr⁻¹."""

    uniq: IntArray
    density: FloatArray
    treatment: Treatment | None = None
    """None when read back from a file that does not say."""
    order: IntArray = field(init=False, repr=False)
    nest: IntArray = field(init=False, repr=False)
    _start: IntArray = field(init=False, repr=False)
    _stop: IntArray = field(init=False, repr=False)
    _by_start: IntArray = field(init=False, repr=False)
    _rank: IntArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        order, nest = _orders(self.uniq)
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "nest", nest)
        top = int(order.max())
        shift = 2 * (top - order)
        start, stop = nest << shift, (nest + 1) << shift
        by_start = np.argsort(start, kind="stable")
        object.__setattr__(self, "_start", start[by_start])
        object.__setattr__(self, "_stop", stop[by_start])
        object.__setattr__(self, "_by_start", by_start)
        # greedy order: density descending, ties by uniq (the arrays are uniq-sorted)
        object.__setattr__(self, "_rank", np.argsort(-self.density, kind="stable"))

    @property
    def max_order(self) -> int:
        return int(self.order.max())

    @property
    def max_nside(self) -> int:
        return 1 << self.max_order

    @property
    def nside(self) -> IntArray:
        return (np.int64(1) << self.order).astype(np.int64)

    @property
    def area_sr(self) -> FloatArray:
        """Solid angle of each tile [sr]."""
        return np.pi / (3.0 * 4.0 ** self.order.astype(np.float64))

    @property
    def probability(self) -> FloatArray:
        """Probability of each tile (density × solid angle), dimensionless."""
        out: FloatArray = self.density * self.area_sr
        return out

    @property
    def greedy(self) -> IntArray:
        """Tile positions by descending density (the order credible regions are filled in)."""
        return self._rank

    def centres(self) -> tuple[FloatArray, FloatArray]:
        """(RA, Dec) of each tile's centre [rad]."""
        ra = np.empty(self.uniq.size)
        dec = np.empty(self.uniq.size)
        for k in np.unique(self.order):
            sel = self.order == k
            theta, phi = hp.pix2ang(1 << int(k), self.nest[sel], nest=True)
            ra[sel], dec[sel] = phi, np.pi / 2 - theta
        return ra, dec

    def tile_of_pixels(self, nest: npt.ArrayLike, order: int) -> IntArray:
        """Position of the tile containing each NESTED pixel at ``order`` (≥ max_order), or -1."""
        if order < self.max_order:
            raise ValueError(f"order {order} is coarser than the map's finest order")
        ipix = np.asarray(nest, dtype=np.int64) >> (2 * (order - self.max_order))
        pos = np.searchsorted(self._start, ipix, side="right") - 1
        ok = (pos >= 0) & (ipix < self._stop[np.maximum(pos, 0)])
        return np.where(ok, self._by_start[np.maximum(pos, 0)], -1).astype(np.int64)

    def tile_at(self, ra: npt.ArrayLike, dec: npt.ArrayLike) -> IntArray:
        """Position of the tile containing each (RA, Dec) [rad], or -1 outside the map."""
        theta, phi = radec_to_thetaphi(ra, dec)
        ipix = hp.ang2pix(self.max_nside, theta, phi, nest=True)
        return self.tile_of_pixels(ipix, self.max_order)

    def flatten(self, nside: int) -> FloatArray:
        """Probability per pixel at ``nside`` (NESTED), conserving probability.

        A tile finer than the pixel adds its probability to the pixel; a coarser tile shares its
        probability equally among the pixels it covers.
        """
        order_out = _nside_to_order(nside)
        prob = self.probability
        lengths = self._stop - self._start
        if order_out == self.max_order and int(lengths.sum()) == 12 * nside * nside:
            # the tiles, in pixel order, cover the sky once: one repeat does it
            return np.repeat(prob[self._by_start] / lengths, lengths)
        out = np.zeros(12 * nside * nside)
        fine = self.order >= order_out
        parent = self.nest[fine] >> (2 * (self.order[fine] - order_out))
        out += np.bincount(parent, weights=prob[fine], minlength=out.size)
        coarse = ~fine
        if coarse.any():
            k = self.order[coarse]
            span = np.int64(1) << (2 * (order_out - k))
            first = self.nest[coarse] << (2 * (order_out - k))
            pixels = np.repeat(first - np.cumsum(span) + span, span) + np.arange(int(span.sum()))
            out[pixels] += np.repeat(prob[coarse] / span, span)
        return out

    def with_flat_probability(self, flat: FloatArray) -> ProbabilityMap:
        """A map on the same tiles from a flat per-pixel probability (NESTED), renormalised."""
        nside = hp.npix2nside(flat.size)
        order_in = _nside_to_order(nside)
        prob = np.empty(self.uniq.size)
        coarse = self.order <= order_in
        if coarse.any():
            cum = np.concatenate(([0.0], np.cumsum(flat)))
            shift = 2 * (order_in - self.order[coarse])
            start = self.nest[coarse] << shift
            stop = (self.nest[coarse] + 1) << shift
            prob[coarse] = cum[stop] - cum[start]
        fine = ~coarse
        if fine.any():
            parent = self.nest[fine] >> (2 * (self.order[fine] - order_in))
            prob[fine] = flat[parent] / 4.0 ** (self.order[fine] - order_in)
        total = float(prob.sum())
        if not total > 0:
            raise ValueError("the smoothed map has no probability left")
        return ProbabilityMap(self.uniq, prob / total / self.area_sr, self.treatment)


def _nside_to_order(nside: int) -> int:
    if nside < 1 or nside & (nside - 1):
        raise ValueError(f"nside {nside} is not a power of two")
    return nside.bit_length() - 1


def _smoothing_nside(sigma_deg: float, max_nside: int) -> int:
    """Smallest power of two whose pixels are ≤ sigma/2 wide, at least 16, at most ``max_nside``."""
    resol_needed = math.radians(sigma_deg) / 2.0
    nside = 16
    while nside < max_nside and hp.nside2resol(nside) > resol_needed:
        nside *= 2
    return min(nside, max(max_nside, 16))


def _smooth(pmap: ProbabilityMap, sigma_deg: float) -> ProbabilityMap:
    nside = _smoothing_nside(sigma_deg, pmap.max_nside)
    npix = 12 * nside * nside
    flat_nest = pmap.flatten(nside)
    ring = np.empty(npix)
    ring[hp.nest2ring(nside, np.arange(npix))] = flat_nest / hp.nside2pixarea(nside)
    smoothed = hp.smoothing(ring, sigma=math.radians(sigma_deg), iter=0)
    smoothed = np.clip(smoothed, 0.0, None)
    back = smoothed[hp.nest2ring(nside, np.arange(npix))] * hp.nside2pixarea(nside)
    LOG.debug("smoothed at nside %d with sigma %g deg", nside, sigma_deg)
    return pmap.with_flat_probability(back / back.sum())


def probability_map(skymap: MultiOrderMap, treatment: Treatment) -> ProbabilityMap:
    """The probability map of a merged likelihood map under ``treatment``.

    Parameters
    ----------
    skymap
        The merged multi-order likelihood map (2ΔLLH per tile).
    treatment
        The convention and smoothing (``make_treatment``).

    Returns
    -------
    ProbabilityMap
        Density in sr⁻¹ on the same tiles, Σ density·Ω = 1.
    """
    half = 0.5 * skymap.delta2  # ΔLLH
    finite = np.isfinite(half)
    if not finite.any():
        raise ValueError("cannot make a probability map: every llh is NaN")
    weight = np.zeros_like(half)
    weight[finite] = np.exp(-treatment.llh_scale * (half[finite] - half[finite].min()))
    area = skymap.pixel_area_sr
    density = weight / float((weight * area).sum())
    pmap = ProbabilityMap(skymap.uniq.astype(np.int64), density, treatment)
    if treatment.smoothing_deg:
        pmap = _smooth(pmap, treatment.smoothing_deg)
    return pmap
