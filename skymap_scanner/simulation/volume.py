"""The instrumented volume of IceCube-86 and the chords of straight tracks through it.

The instrumented volume is the vertical prism over the convex hull of the strings (horizontal) and
between the lowest and the highest DOM (vertical). Track lengths "in the detector" are lengths of
the part of the track inside it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import ConvexHull

from ..events.geometry import DEFAULT_DETECTOR, load_geometry

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Prism:
    """A vertical prism: a convex polygon (counter-clockwise vertices, (k, 2)) and a z range."""

    polygon: FloatArray
    z_min: float
    z_max: float

    def chord(self, point: FloatArray, direction: FloatArray) -> tuple[float, float] | None:
        """Parameters ``(s_in, s_out)`` where the line ``point + s direction`` enters and leaves
        the prism (``s_in < s_out``), or None if it misses (Cyrus-Beck clipping)."""
        lo, hi = -math.inf, math.inf
        p = np.asarray(point, dtype=np.float64)
        d = np.asarray(direction, dtype=np.float64)
        # the two z planes
        if abs(d[2]) < 1e-12:
            if not self.z_min <= p[2] <= self.z_max:
                return None
        else:
            a, b = (self.z_min - p[2]) / d[2], (self.z_max - p[2]) / d[2]
            lo, hi = max(lo, min(a, b)), min(hi, max(a, b))
        # the polygon's edges, outward normals for a counter-clockwise polygon
        v = self.polygon
        edges = np.roll(v, -1, axis=0) - v
        normals = np.column_stack([edges[:, 1], -edges[:, 0]])
        for n_k, v_k in zip(normals, v, strict=True):
            denom = float(n_k @ d[:2])
            num = float(n_k @ (v_k - p[:2]))
            if abs(denom) < 1e-12:
                if num < 0.0:
                    return None
                continue
            t = num / denom
            if denom > 0.0:
                hi = min(hi, t)
            else:
                lo = max(lo, t)
        if lo >= hi:
            return None
        return lo, hi

    def contains(self, points: FloatArray) -> NDArray[np.bool_]:
        """Whether each point (n, 3) is inside."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        inside = (pts[:, 2] >= self.z_min) & (pts[:, 2] <= self.z_max)
        v = self.polygon
        edges = np.roll(v, -1, axis=0) - v
        for e_k, v_k in zip(edges, v, strict=True):
            cross = e_k[0] * (pts[:, 1] - v_k[1]) - e_k[1] * (pts[:, 0] - v_k[0])
            inside &= cross >= 0.0
        return inside

    def sample_inside(self, rng: np.random.Generator) -> FloatArray:
        """A point uniform in the prism (rejection from its bounding box)."""
        xmin, ymin = self.polygon.min(axis=0)
        xmax, ymax = self.polygon.max(axis=0)
        while True:
            pt = np.array(
                [
                    rng.uniform(xmin, xmax),
                    rng.uniform(ymin, ymax),
                    rng.uniform(self.z_min, self.z_max),
                ]
            )
            if bool(self.contains(pt)[0]):
                return pt


@functools.lru_cache(maxsize=4)
def instrumented_volume(detector: str = DEFAULT_DETECTOR) -> Prism:
    """The instrumented prism of a shipped detector (module docstring)."""
    geo = load_geometry(detector)
    pos = geo.position[geo.live]
    xy = pos[:, :2]
    hull = ConvexHull(xy)
    poly = xy[hull.vertices]  # counter-clockwise for 2-D hulls
    return Prism(np.ascontiguousarray(poly), float(pos[:, 2].min()), float(pos[:, 2].max()))


def length_inside(prism: Prism, start: FloatArray, direction: FloatArray, length: float) -> float:
    """Length (m) of the segment ``start + s direction``, ``0 <= s <= length``, inside ``prism``."""
    ch = prism.chord(start, direction)
    if ch is None:
        return 0.0
    lo, hi = max(ch[0], 0.0), min(ch[1], length)
    return max(hi - lo, 0.0)
