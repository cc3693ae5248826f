"""Which DOM spheres a straight photon path segment crosses: a spatial index of IceCube's strings.

DOMs hang on vertical strings, so a segment can only reach a DOM sphere of radius ``R`` if its
horizontal projection comes within ``R`` of a string axis. The index keeps a 2-D raster (cell
``RASTER_CELL_M``) that stores, for every cell, the nearest string if it lies within
``R + SAMPLE_SPACING_M / 2 + cell diagonal`` of the cell, else -1. A segment is sampled every
``SAMPLE_SPACING_M`` (horizontally) and the strings found at its sample points are the candidates:
a segment passing within ``R`` of a string has a sample point within ``R + SAMPLE_SPACING_M / 2``
of it, and that string is the nearest one to that point as long as no two strings are closer than
``2 R + SAMPLE_SPACING_M`` (IceCube-86: the closest pair is checked at construction).
Candidates are then tested exactly: the z range over which the segment is within ``R`` of the axis
selects the DOMs (searched in the per-string sorted depths), and each DOM sphere is intersected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Horizontal spacing of the sample points along a segment, m.
SAMPLE_SPACING_M = 20.0
#: Cell size of the nearest-string raster, m.
RASTER_CELL_M = 2.0
_Z_OFFSET = 1.0e4
_KEY_STRIDE = 1.0e5


@dataclass(frozen=True)
class SegmentHits:
    """Sphere entries: the photon (row of the segment arrays), the DOM, and the distance along the
    segment of the closest approach to the DOM centre (m; may exceed the segment length)."""

    photon: IntArray
    dom: IntArray
    s_closest: FloatArray


class DomIndex:
    """Spatial index of DOM spheres of radius ``radius_m`` at ``positions`` (n, 3)."""

    def __init__(
        self, positions: NDArray[np.float64], strings: NDArray[np.int64], radius_m: float
    ) -> None:
        pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        self.radius = float(radius_m)
        self.positions = pos
        _, string_of = np.unique(np.asarray(strings), return_inverse=True)
        string_of = string_of.ravel()
        n_strings = int(string_of.max()) + 1
        self.string_xy = np.array(
            [pos[string_of == s, :2].mean(axis=0) for s in range(n_strings)], dtype=np.float64
        )
        # DOMs of a string are not exactly on one vertical line (IceCube-86: within 0.31 m)
        spread = np.hypot(*(pos[:, :2] - self.string_xy[string_of]).T)
        self.axis_radius = self.radius + float(spread.max()) + 1e-6
        diff = self.string_xy[:, None, :] - self.string_xy[None, :, :]
        dist = np.hypot(diff[..., 0], diff[..., 1]) + np.eye(n_strings) * 1e9
        min_sep = float(dist.min()) if n_strings > 1 else math.inf
        if min_sep < 2.0 * self.axis_radius + SAMPLE_SPACING_M + 2.0 * RASTER_CELL_M:
            raise ValueError(
                f"strings {min_sep:.1f} m apart are too close for a {self.radius} m DOM radius"
            )
        # DOMs sorted by (string, z) with a searchable key
        key = string_of * _KEY_STRIDE + (pos[:, 2] + _Z_OFFSET)
        order = np.argsort(key, kind="stable")
        self.sorted_key = key[order]
        self.sorted_dom = order.astype(np.int64)
        # nearest-string raster
        margin = self.axis_radius + SAMPLE_SPACING_M
        self.x0 = float(self.string_xy[:, 0].min() - margin)
        self.y0 = float(self.string_xy[:, 1].min() - margin)
        nx = math.ceil((self.string_xy[:, 0].max() + margin - self.x0) / RASTER_CELL_M) + 1
        ny = math.ceil((self.string_xy[:, 1].max() + margin - self.y0) / RASTER_CELL_M) + 1
        cx = self.x0 + (np.arange(nx) + 0.5) * RASTER_CELL_M
        cy = self.y0 + (np.arange(ny) + 0.5) * RASTER_CELL_M
        gx, gy = np.meshgrid(cx, cy, indexing="ij")
        best = np.full(gx.shape, np.inf)
        nearest = np.full(gx.shape, -1, dtype=np.int64)
        for s, (sx, sy) in enumerate(self.string_xy):
            d = np.hypot(gx - sx, gy - sy)
            closer = d < best
            best[closer] = d[closer]
            nearest[closer] = s
        keep = self.axis_radius + 0.5 * SAMPLE_SPACING_M + RASTER_CELL_M * math.sqrt(2.0)
        nearest[best > keep] = -1
        self.raster = nearest
        self.raster_flat = nearest.ravel()
        self.nx, self.ny = nx, ny

    def _candidates(
        self, p0: FloatArray, u: FloatArray, length: FloatArray
    ) -> tuple[IntArray, IntArray]:
        """(photon, string) pairs whose string is nearest to some sample point of the segment."""
        # sample points at the centres of n_k equal parts: every point of the segment is within
        # SAMPLE_SPACING_M / 2 (horizontally) of one
        horiz = length * np.hypot(u[:, 0], u[:, 1])
        n_k = np.maximum(1, np.ceil(horiz / SAMPLE_SPACING_M).astype(np.int64))
        if int(n_k.max()) == 1:
            photon = np.arange(p0.shape[0], dtype=np.int64)
            s = 0.5 * length
            x = p0[:, 0] + s * u[:, 0]
            y = p0[:, 1] + s * u[:, 1]
        else:
            photon = np.repeat(np.arange(p0.shape[0], dtype=np.int64), n_k)
            start = np.cumsum(n_k) - n_k
            k = np.arange(photon.shape[0], dtype=np.int64) - np.repeat(start, n_k)
            s = (k + 0.5) / n_k[photon] * length[photon]
            x = p0[photon, 0] + s * u[photon, 0]
            y = p0[photon, 1] + s * u[photon, 1]
        ix = ((x - self.x0) * (1.0 / RASTER_CELL_M)).astype(np.int64)
        iy = ((y - self.y0) * (1.0 / RASTER_CELL_M)).astype(np.int64)
        inside = (x >= self.x0) & (ix < self.nx) & (y >= self.y0) & (iy < self.ny)
        string = np.full(photon.shape[0], -1, dtype=np.int64)
        string[inside] = self.raster_flat[ix[inside] * self.ny + iy[inside]]
        ok = string >= 0
        if int(n_k.max()) == 1:
            return photon[ok], string[ok]
        pair = np.unique(photon[ok] * 1024 + string[ok])
        return pair // 1024, pair % 1024

    def crossings(
        self, p0: FloatArray, u: FloatArray, length: FloatArray, first: NDArray[np.bool_]
    ) -> SegmentHits:
        """DOM spheres entered by the segments ``p0 + s u``, ``0 <= s < length``.

        A segment starting inside a sphere counts only when it is the photon's first
        (``first``: the photon was emitted there) and it moves towards the DOM centre.
        """
        empty = SegmentHits(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        if p0.shape[0] == 0:
            return empty
        photon, string = self._candidates(p0, u, length)
        if photon.size == 0:
            return empty
        r2 = self.radius * self.radius
        # horizontal: |q + s u_h|^2 <= R^2 with q = p0_h - string_xy
        qx = p0[photon, 0] - self.string_xy[string, 0]
        qy = p0[photon, 1] - self.string_xy[string, 1]
        ux, uy, uz = u[photon, 0], u[photon, 1], u[photon, 2]
        seg = length[photon]
        aa = ux * ux + uy * uy
        bb = qx * ux + qy * uy
        cc = qx * qx + qy * qy - self.axis_radius**2
        vertical = aa < 1e-12
        disc = bb * bb - aa * cc
        safe_a = np.where(vertical, 1.0, aa)
        root = np.sqrt(np.maximum(disc, 0.0))
        s_lo = np.where(vertical, 0.0, (-bb - root) / safe_a)
        s_hi = np.where(vertical, seg, (-bb + root) / safe_a)
        ok = np.where(vertical, cc <= 0.0, disc >= 0.0)
        s_lo = np.maximum(s_lo, 0.0)
        s_hi = np.minimum(s_hi, seg)
        ok &= s_hi >= s_lo
        photon, string = photon[ok], string[ok]
        z0 = p0[photon, 2]
        za = z0 + s_lo[ok] * uz[ok]
        zb = z0 + s_hi[ok] * uz[ok]
        zlo = np.minimum(za, zb) - self.axis_radius + _Z_OFFSET
        zhi = np.maximum(za, zb) + self.axis_radius + _Z_OFFSET
        base = string * _KEY_STRIDE
        lo = np.searchsorted(self.sorted_key, base + zlo, side="left")
        hi = np.searchsorted(self.sorted_key, base + zhi, side="right")
        count = hi - lo
        if int(count.sum()) == 0:
            return empty
        rep = np.repeat(np.arange(photon.shape[0]), count)
        offs = np.arange(rep.shape[0]) - np.repeat(np.cumsum(count) - count, count)
        dom = self.sorted_dom[lo[rep] + offs]
        ph = photon[rep]
        w = self.positions[dom] - p0[ph]
        uu = u[ph]
        s_ca = np.einsum("ij,ij->i", w, uu)
        d2 = np.einsum("ij,ij->i", w, w) - s_ca * s_ca
        inside_r = d2 < r2
        s_in = s_ca - np.sqrt(np.maximum(r2 - d2, 0.0))
        entered = (s_in >= 0.0) & (s_in < length[ph])
        started_inside = first[ph] & (s_in < 0.0) & (s_ca >= 0.0)
        hit = inside_r & (entered | started_inside)
        return SegmentHits(ph[hit], dom[hit], s_ca[hit])
