"""Credible regions as GeoJSON (RFC 7946) polygons on the sky.

Coordinates are ``[longitude, latitude]`` in degrees with longitude = RA wrapped to −180…180
(RA 350° is −10°) and latitude = Dec; straight edges between positions, as RFC 7946 reads them.
A region is one ``MultiPolygon``: outer rings counter-clockwise, holes clockwise, every ring
closed (first position repeated last, at least four positions).

From the outline on the sphere (``outline.boundary_rings``) to the plane:

- every edge of the outline becomes a straight segment in (lon, lat); one crossing the
  antimeridian (RA = 180°, as RFC 7946 §3.1.9 asks; RA = 0 is an ordinary longitude here) is cut
  there into two, and one ending at a pole ends at that pole's edge of the plane (latitude ±90°),
  where HEALPix edges meet the pole along meridians;
- those segments and the plane's border cut the plane into faces; a face belongs to the region
  when the tile under a point inside it is one of the region's tiles;
- the faces that belong are merged into the region's polygons.

No face is decided by winding or by which side of a ring it lies on, so an outline of any shape
(rings around a pole, through a pole, touching themselves or each other) gives the region of its
tiles. The result is checked to be a valid polygon set (shapely) before it is written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.polygon import orient

from .outline import boundary_rings
from .probability import ProbabilityMap

__all__ = ["feature_collection", "region_feature", "region_geometry"]

FloatArray = npt.NDArray[np.float64]

_POLE_Z = 1.0 - 1e-12
_WORLD = box(-180.0, -90.0, 180.0, 90.0)
_DECIMALS = 8
_GRID_DEG = 1e-9


def _segments(ring: FloatArray) -> FloatArray:
    """The ring's edges as planar segments ``[[lon0, lat0], [lon1, lat1]]`` [deg], shape (n, 2, 2),
    longitudes within −180…180."""
    a, b = ring[:-1], ring[1:]
    lon_a = np.degrees(np.arctan2(a[:, 1], a[:, 0]))
    lon_b = np.degrees(np.arctan2(b[:, 1], b[:, 0]))
    lat_a = np.degrees(np.arcsin(np.clip(a[:, 2], -1.0, 1.0)))
    lat_b = np.degrees(np.arcsin(np.clip(b[:, 2], -1.0, 1.0)))
    pole_a, pole_b = np.abs(a[:, 2]) >= _POLE_Z, np.abs(b[:, 2]) >= _POLE_Z
    # an edge to or from a pole runs along the meridian of its other end
    lon_a = np.where(pole_a, lon_b, lon_a)
    lon_b = np.where(pole_b, lon_a, lon_b)
    lat_a = np.where(pole_a, np.sign(a[:, 2]) * 90.0, lat_a)
    lat_b = np.where(pole_b, np.sign(b[:, 2]) * 90.0, lat_b)
    lon_b = lon_a + (lon_b - lon_a + 180.0) % 360.0 - 180.0  # the short way round
    keep = ~(pole_a & pole_b)
    lon_a, lat_a, lon_b, lat_b = lon_a[keep], lat_a[keep], lon_b[keep], lat_b[keep]
    out = np.stack([np.stack([lon_a, lat_a], -1), np.stack([lon_b, lat_b], -1)], axis=1)
    crossing = np.abs(lon_b) > 180.0
    if not crossing.any():
        return out
    # cut at the antimeridian: the part up to ±180° and the rest, moved by ∓360°
    la, fa, lb, fb = lon_a[crossing], lat_a[crossing], lon_b[crossing], lat_b[crossing]
    edge = np.sign(lb) * 180.0
    lat_cut = fa + (fb - fa) * (edge - la) / (lb - la)
    first = np.stack([np.stack([la, fa], -1), np.stack([edge, lat_cut], -1)], axis=1)
    second = np.stack([np.stack([-edge, lat_cut], -1), np.stack([lb - 2 * edge, fb], -1)], axis=1)
    return np.concatenate([out[~crossing], first, second])


def _faces(segments: FloatArray) -> list[Polygon]:
    """The faces the segments and the plane's border cut the plane into."""
    corners = np.asarray(_WORLD.exterior.coords)
    border = np.stack([corners[:-1], corners[1:]], axis=1)
    lines = shapely.linestrings(np.concatenate([segments, border]))
    noded = shapely.union_all(lines, grid_size=_GRID_DEG)
    return list(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))


def region_geometry(pmap: ProbabilityMap, tiles: npt.NDArray[np.int64]) -> MultiPolygon:
    """The union of ``tiles`` as a planar MultiPolygon in (lon = RA wrapped, lat = Dec) degrees.

    Parameters
    ----------
    pmap
        The map the tiles belong to.
    tiles
        Positions of the tiles (into the map's uniq-sorted arrays).

    Returns
    -------
    shapely.geometry.MultiPolygon
        Valid, oriented (outer rings counter-clockwise), longitudes within −180…180.
    """
    rings = boundary_rings(pmap, tiles)
    faces = _faces(np.concatenate([_segments(r) for r in rings])) if rings else [_WORLD]
    points = shapely.get_coordinates(shapely.point_on_surface(faces))
    member = np.zeros(pmap.uniq.size, dtype=bool)
    member[tiles] = True
    owner = pmap.tile_at(np.radians(points[:, 0]), np.radians(points[:, 1]))
    inside = [f for f, t in zip(faces, owner, strict=True) if t >= 0 and member[t]]
    merged = shapely.union_all(inside, grid_size=_GRID_DEG)
    polygons = [g for g in shapely.get_parts(merged) if isinstance(g, Polygon) and g.area > 0]
    out = MultiPolygon([orient(p, sign=1.0) for p in polygons])
    if not out.is_valid:
        raise RuntimeError(f"invalid region outline: {shapely.is_valid_reason(out)}")
    return out


def _ring_coords(coords: Any) -> list[list[float]]:
    values: list[list[float]] = np.round(np.asarray(coords)[:, :2], _DECIMALS).tolist()
    return values


def region_feature(geometry: MultiPolygon, properties: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON Feature (MultiPolygon) with ``properties``."""
    polygons = [
        [_ring_coords(p.exterior.coords), *(_ring_coords(h.coords) for h in p.interiors)]
        for p in geometry.geoms
    ]
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": {"type": "MultiPolygon", "coordinates": polygons},
    }


def feature_collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of ``features``."""
    return {"type": "FeatureCollection", "features": features}
