"""Credible regions of a probability map, their extent, and what the map says about a position.

Credible region at probability P (the greedy, highest-density region, as ligo.skymap defines it):
tiles are taken by descending density (ties by NUNIQ id) until their probability adds up to P.

- ``tiles``: the whole tiles of that region, the crossing tile included (so they hold ≥ P). The MOC
  and the GeoJSON regions are these tiles, and ``pixel_area_deg2`` is their summed area.
- ``area_deg2``: the area at which the cumulative probability reaches exactly P, interpolated
  linearly inside the crossing tile. This is ``ligo-skymap-stats``' ``area(P)``, and the area the
  stats, headers, notice and circular quote. It is ≤ ``pixel_area_deg2`` by less than one tile.

Asymmetric errors (the circulars' "RA: x (+a/-b deg 90% PSF containment)"): the extent of the
region's tiles (their boundaries, sampled at the map's finest resolution) around the best fit, in
degrees of RA (not multiplied by cos Dec) and of Dec. RA offsets are wrapped to ±180°; a region that
contains a celestial pole has no RA bound (None).

Searched area / probability of a position (ligo-skymap-stats' ``searched_area``/``searched_prob``):
the area / probability of all tiles at least as dense as the tile containing it, that tile
included. A position is inside the P region when its tile is one of the region's tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import healpy as hp
import numpy as np
import numpy.typing as npt

from .probability import SR_TO_DEG2, ProbabilityMap

__all__ = [
    "AsymmetricErrors",
    "CredibleRegion",
    "PositionStats",
    "asymmetric_errors",
    "cone_probability",
    "containment_radius_deg",
    "credible_region",
    "position_stats",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CredibleRegion:
    """The greedy credible region of one probability (see the module docstring)."""

    probability: float
    tiles: IntArray
    """Positions (into the map's uniq-sorted arrays) of the region's tiles, densest first."""
    area_deg2: float
    """Interpolated area at exactly ``probability`` [deg²] (ligo-skymap-stats' area(P))."""
    pixel_area_deg2: float
    """Summed area of ``tiles`` [deg²] (the MOC's and the GeoJSON's area)."""
    tiles_probability: float
    """Probability held by ``tiles`` (≥ ``probability``)."""
    density_threshold: float
    """Density of the least dense tile in the region [sr⁻¹]."""


def _cumulative(pmap: ProbabilityMap) -> tuple[IntArray, FloatArray, FloatArray]:
    rank = pmap.greedy
    return rank, np.cumsum(pmap.probability[rank]), np.cumsum(pmap.area_sr[rank]) * SR_TO_DEG2


def credible_region(pmap: ProbabilityMap, probability: float) -> CredibleRegion:
    """The greedy credible region holding ``probability`` (0 < probability ≤ 1).

    Parameters
    ----------
    pmap
        The probability map.
    probability
        The credible level, e.g. 0.9 (dimensionless).

    Returns
    -------
    CredibleRegion
        Its tiles, its interpolated area [deg²] and its whole-tile area [deg²].
    """
    if not 0.0 < probability <= 1.0:
        raise ValueError(f"credible probability {probability} must be in (0, 1]")
    rank, cum_p, cum_a = _cumulative(pmap)
    # tiles whose preceding cumulative probability is still below P (round-off: 1e-12 slack)
    n = int(np.searchsorted(cum_p, probability - 1e-12, side="left")) + 1
    n = min(n, rank.size)
    area = float(
        np.interp(probability, np.concatenate(([0.0], cum_p)), np.concatenate(([0.0], cum_a)))
    )
    tiles = rank[:n]
    return CredibleRegion(
        probability=probability,
        tiles=tiles,
        area_deg2=area,
        pixel_area_deg2=float(cum_a[n - 1]),
        tiles_probability=float(cum_p[n - 1]),
        density_threshold=float(pmap.density[tiles[-1]]),
    )


@dataclass(frozen=True)
class AsymmetricErrors:
    """Extent of a region around a position [deg]: RA is None when the region holds a pole."""

    ra_plus_deg: float | None
    ra_minus_deg: float | None
    dec_plus_deg: float
    dec_minus_deg: float

    def as_dict(self) -> dict[str, float | None]:
        return {
            "ra_plus_deg": self.ra_plus_deg,
            "ra_minus_deg": self.ra_minus_deg,
            "dec_plus_deg": self.dec_plus_deg,
            "dec_minus_deg": self.dec_minus_deg,
        }


def _tile_outline(pmap: ProbabilityMap, tiles: IntArray) -> tuple[FloatArray, FloatArray]:
    """(RA, Dec) [rad] of points along the boundaries of ``tiles``, spaced ≤ one finest pixel."""
    ras: list[FloatArray] = []
    decs: list[FloatArray] = []
    orders = pmap.order[tiles]
    for k in np.unique(orders):
        nest = pmap.nest[tiles[orders == k]]
        step = int(min(1 << (pmap.max_order - int(k)), 32))
        xyz = np.asarray(hp.boundaries(1 << int(k), nest, step=step, nest=True)).reshape(
            -1, 3, 4 * step
        )
        x, y, z = xyz[:, 0, :].ravel(), xyz[:, 1, :].ravel(), xyz[:, 2, :].ravel()
        ras.append(np.mod(np.arctan2(y, x), 2 * np.pi))
        decs.append(np.arcsin(np.clip(z, -1.0, 1.0)))
    return np.concatenate(ras), np.concatenate(decs)


def asymmetric_errors(
    pmap: ProbabilityMap, region: CredibleRegion, ra_rad: float, dec_rad: float
) -> AsymmetricErrors:
    """RA/Dec extent of ``region`` around (``ra_rad``, ``dec_rad``), in degrees.

    ``+`` is towards larger RA (East) / larger Dec. Both signs are ≥ 0 when the region contains the
    position; RA is None when the region contains a celestial pole.
    """
    ra, dec = _tile_outline(pmap, region.tiles)
    dra = np.degrees(np.mod(ra - ra_rad + np.pi, 2 * np.pi) - np.pi)
    ddec = np.degrees(dec - dec_rad)
    poles = pmap.tile_at(np.zeros(2), np.array([np.pi / 2, -np.pi / 2]))
    has_pole = bool(np.isin(poles, region.tiles).any())
    return AsymmetricErrors(
        ra_plus_deg=None if has_pole else max(float(dra.max()), 0.0),
        ra_minus_deg=None if has_pole else max(float(-dra.min()), 0.0),
        dec_plus_deg=max(float(ddec.max()), 0.0),
        dec_minus_deg=max(float(-ddec.min()), 0.0),
    )


def _distance_rad(ra1: Any, dec1: Any, ra2: Any, dec2: Any) -> Any:
    """Great-circle distance [rad] (haversine-free arctan2 form, stable at all angles)."""
    dra = ra2 - ra1
    num = np.hypot(
        np.cos(dec2) * np.sin(dra),
        np.cos(dec1) * np.sin(dec2) - np.sin(dec1) * np.cos(dec2) * np.cos(dra),
    )
    den = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(dra)
    return np.arctan2(num, den)


def containment_radius_deg(
    pmap: ProbabilityMap, ra_rad: float, dec_rad: float, probability: float
) -> float:
    """Radius [deg] of the circle around the position that holds ``probability``.

    The notice's ``ra_dec_error`` with ``containment_probability``. Tiles count at their centre's
    distance, and the radius is interpolated within the tile that crosses ``probability``.
    """
    ra, dec = pmap.centres()
    dist = _distance_rad(ra_rad, dec_rad, ra, dec)
    order = np.argsort(dist, kind="stable")
    cum = np.cumsum(pmap.probability[order])
    radius = np.interp(
        probability, np.concatenate(([0.0], cum)), np.concatenate(([0.0], dist[order]))
    )
    return float(np.degrees(radius))


def cone_probability(
    pmap: ProbabilityMap, ra_rad: float, dec_rad: float, radius_deg: float
) -> float:
    """Probability inside the cone of ``radius_deg`` around (``ra_rad``, ``dec_rad``).

    Counted on a HEALPix grid at least as fine as the map's finest tiles, fine enough for about
    1000 grid pixels inside the cone (or order 20); a grid pixel counts when its centre is inside.
    """
    if not 0.0 <= radius_deg <= 180.0:
        raise ValueError(f"cone radius {radius_deg} deg must be within 0-180")
    radius = math.radians(radius_deg)
    cap_sr = 2 * math.pi * (1 - math.cos(radius))
    order = pmap.max_order
    while order < 20 and cap_sr / (math.pi / (3.0 * 4.0**order)) < 1000:
        order += 1
    nside = 1 << order
    vec = hp.ang2vec(math.pi / 2 - dec_rad, ra_rad)
    pixels = hp.query_disc(nside, vec, radius, inclusive=False, nest=True)
    tiles = pmap.tile_of_pixels(pixels, order)
    tiles = tiles[tiles >= 0]
    return float(pmap.density[tiles].sum() * hp.nside2pixarea(nside))


@dataclass(frozen=True)
class PositionStats:
    """What the map says about one position."""

    ra_deg: float
    dec_deg: float
    probability_density: float
    """Density at the position [sr⁻¹]."""
    searched_area_deg2: float
    searched_probability: float
    inside: dict[str, bool]
    """Whether the position is inside each credible region, by region name."""
    offset_deg: float | None
    """Distance to the best fit [deg], when one was given."""
    cone_radius_deg: float | None = None
    cone_probability: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ra_deg": self.ra_deg,
            "dec_deg": self.dec_deg,
            "probability_density_sr": self.probability_density,
            "searched_area_deg2": self.searched_area_deg2,
            "searched_probability": self.searched_probability,
            "inside": dict(self.inside),
            "offset_from_best_fit_deg": self.offset_deg,
        }
        if self.cone_radius_deg is not None:
            out["cone"] = {"radius_deg": self.cone_radius_deg, "probability": self.cone_probability}
        return out


def position_stats(
    pmap: ProbabilityMap,
    ra_deg: float,
    dec_deg: float,
    *,
    regions: dict[str, float] | None = None,
    best_fit_deg: tuple[float, float] | None = None,
    cone_radius_deg: float | None = None,
) -> PositionStats:
    """Searched area and probability of (``ra_deg``, ``dec_deg``), and whether it is inside.

    Parameters
    ----------
    pmap
        The probability map.
    ra_deg, dec_deg
        The position [deg]; RA is taken modulo 360, Dec must be within ±90.
    regions
        Region name → credible probability, e.g. ``{"90": 0.9}``; default 50 % and 90 %.
    best_fit_deg
        (RA, Dec) [deg] to report the offset from.
    cone_radius_deg
        When given, also the probability inside this cone around the position.

    Returns
    -------
    PositionStats
    """
    if not (math.isfinite(ra_deg) and -90.0 <= dec_deg <= 90.0):
        raise ValueError(f"position ({ra_deg}, {dec_deg}): RA must be finite and Dec within ±90")
    ra, dec = math.radians(ra_deg % 360.0), math.radians(dec_deg)
    tile = int(pmap.tile_at(np.array([ra]), np.array([dec]))[0])
    rank, cum_p, cum_a = _cumulative(pmap)
    where = int(np.flatnonzero(rank == tile)[0])
    prob_before = float(cum_p[where] - pmap.probability[tile])
    levels = regions if regions is not None else {"50": 0.5, "90": 0.9}
    offset = None
    if best_fit_deg is not None:
        offset = float(
            np.degrees(
                _distance_rad(math.radians(best_fit_deg[0]), math.radians(best_fit_deg[1]), ra, dec)
            )
        )
    return PositionStats(
        ra_deg=ra_deg % 360.0,
        dec_deg=dec_deg,
        probability_density=float(pmap.density[tile]),
        searched_area_deg2=float(cum_a[where]),
        searched_probability=float(cum_p[where]),
        inside={name: prob_before < p - 1e-12 for name, p in levels.items()},
        offset_deg=offset,
        cone_radius_deg=cone_radius_deg,
        cone_probability=None
        if cone_radius_deg is None
        else cone_probability(pmap, ra, dec, cone_radius_deg),
    )
