"""Distinct minima of a scanned sky: does a second, separate minimum lie within the 90 % level?

A skymap scan refines only around its best pixel, so a second minimum elsewhere on the sky (the other
branch of an ambiguous event, e.g. a track whose direction is nearly reversed) stays a few coarse
pixels; if it lies within the calibrated 90 % level, the reported best fit is not the only place the
neutrino may have come from. This module finds such minima in plain numpy (the scanner server uses it
for every result it writes, without healpy):

* every scanned pixel (all nsides) with a finite llh and ``2 (llh - best) <= level`` is a candidate;
* two candidates are connected when their centres are closer than the sum of their radii (the radius
  of a pixel being ``RADIUS_FACTOR`` times that of a disc of its area, which reaches its corners), so
  overlapping pixels of different nsides and neighbours of one nside join;
* each connected group is one minimum, represented by its lowest-llh pixel; the first is the group of
  the global best fit.

The 90 % region at the level (all tiles with 2ΔLLH <= level, as `products.contours.region`) contains
every minimum reported, since each is a pixel below the level.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from . import healpix

#: Pixel radius as a multiple of the radius of a disc of the pixel's area.
RADIUS_FACTOR = 1.5


@dataclass(frozen=True)
class Minimum:
    """The lowest pixel of one group: nside, RING pixel, RA/Dec (degrees), llh, 2ΔLLH to the best,
    the number of pixels in the group and its angular distance to the best fit (degrees)."""

    nside: int
    pixel: int
    ra_deg: float
    dec_deg: float
    llh: float
    delta2: float
    n_pixels: int
    distance_deg: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "nside": self.nside,
            "pixel": self.pixel,
            "ra_deg": round(self.ra_deg, 6),
            "dec_deg": round(self.dec_deg, 6),
            "llh": self.llh,
            "delta2": round(self.delta2, 6),
            "n_pixels": self.n_pixels,
            "distance_deg": round(self.distance_deg, 6),
        }


def _components(adjacent: np.ndarray) -> np.ndarray:
    """Connected-component label of each node of a boolean adjacency matrix."""
    n = adjacent.shape[0]
    label = np.full(n, -1, dtype=np.int64)
    current = 0
    for start in range(n):
        if label[start] >= 0:
            continue
        frontier = np.array([start])
        label[start] = current
        while frontier.size:
            reach = np.flatnonzero(adjacent[frontier].any(axis=0) & (label < 0))
            label[reach] = current
            frontier = reach
        current += 1
    return label


def find_minima(pixels: Iterable[tuple[int, int, float]], level: float) -> list[Minimum]:
    """The distinct minima (module docstring) of scanned ``(nside, pixel, llh)`` at a 2ΔLLH level.

    Sorted by llh: the first is the global best fit's group. Empty if nothing has a finite llh.
    """
    rows = [(n, p, llh) for n, p, llh in pixels if math.isfinite(llh)]
    if not rows:
        return []
    nside = np.array([r[0] for r in rows], dtype=np.int64)
    pix = np.array([r[1] for r in rows], dtype=np.int64)
    llh = np.array([r[2] for r in rows], dtype=np.float64)
    delta2 = 2.0 * (llh - llh.min())
    keep = delta2 <= level
    nside, pix, llh, delta2 = nside[keep], pix[keep], llh[keep], delta2[keep]
    vec = np.empty((pix.shape[0], 3))
    for n in np.unique(nside):
        sel = nside == n
        vec[sel] = healpix.pix2vec(int(n), pix[sel])
    radius = RADIUS_FACTOR * np.sqrt(4.0 / (12.0 * nside.astype(np.float64) ** 2))
    cos_angle = np.clip(vec @ vec.T, -1.0, 1.0)
    adjacent = np.arccos(cos_angle) <= radius[:, None] + radius[None, :]
    label = _components(adjacent)
    best_vec = vec[int(np.argmin(llh))]
    out = []
    for g in np.unique(label):
        members = np.flatnonzero(label == g)
        i = int(members[np.argmin(llh[members])])
        theta = math.acos(max(-1.0, min(1.0, float(vec[i, 2]))))
        ra = math.degrees(math.atan2(float(vec[i, 1]), float(vec[i, 0]))) % 360.0
        dist = math.degrees(math.acos(max(-1.0, min(1.0, float(vec[i] @ best_vec)))))
        out.append(
            Minimum(
                nside=int(nside[i]),
                pixel=int(pix[i]),
                ra_deg=ra,
                dec_deg=90.0 - math.degrees(theta),
                llh=float(llh[i]),
                delta2=float(delta2[i]),
                n_pixels=int(members.shape[0]),
                distance_deg=dist,
            )
        )
    out.sort(key=lambda m: (m.llh, m.nside, m.pixel))
    return out
