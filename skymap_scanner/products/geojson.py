"""Credible regions as GeoJSON (RFC 7946) polygons on the sky.

Coordinates are ``[longitude, latitude]`` in degrees with longitude = RA wrapped to −180…180
(RA 350° is −10°) and latitude = Dec; straight edges between positions, as RFC 7946 reads them.
A region is one ``MultiPolygon``: outer rings counter-clockwise, holes clockwise, every ring
closed (first position repeated last, at least four positions).

From rings on the sphere (``outline.boundary_rings``) to the plane:

- each ring's longitudes are unwrapped along the ring. A ring that winds once around a pole
  (net ±360°) is closed through that pole's edge of the plane (latitude ±90°); a corner at a pole
  becomes the stretch of the pole's edge between its neighbours' longitudes, walked with the region
  on the left;
- every ring's polygon is folded into −180…180 (cut at ±180°, the antimeridian, RA = 180°, as
  RFC 7946 §3.1.9 asks; RA = 0 is an ordinary longitude here);
- the region is the symmetric difference of all the folded polygons (each boundary toggles
  inside/outside), complemented if its densest tile's centre ends up outside.

The result is checked to be a valid polygon set (shapely) before it is written.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from .outline import boundary_rings
from .probability import ProbabilityMap

__all__ = ["feature_collection", "region_feature", "region_geometry"]

FloatArray = npt.NDArray[np.float64]

_POLE_Z = 1.0 - 1e-12
_WORLD = box(-180.0, -90.0, 180.0, 90.0)
_DECIMALS = 8
_GRID_DEG = 1e-9


def _planar_ring(ring: FloatArray) -> tuple[list[tuple[float, float]], int]:
    """Unwrapped (lon, lat) of a closed ring [deg], and its winding around the pole axis."""
    xyz = ring[:-1]
    at_pole = np.abs(xyz[:, 2]) >= _POLE_Z
    xyz = np.roll(xyz, -int(np.argmin(at_pole)), axis=0)  # start away from a pole
    at_pole = np.abs(xyz[:, 2]) >= _POLE_Z
    lon = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
    lat = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
    n = len(xyz)
    points: list[tuple[float, float]] = [(float(lon[0]), float(lat[0]))]
    current = float(lon[0])
    for i in range(1, n):
        if at_pole[i]:
            before, after = lon[i - 1], lon[(i + 1) % n]
            north = xyz[i, 2] > 0
            # north edge: walked westwards (region below, on the left); south edge: eastwards
            span = -((before - after) % 360.0) if north else (after - before) % 360.0
            pole_lat = 90.0 if north else -90.0
            points += [(current, pole_lat), (current + span, pole_lat)]
            current += span
            continue
        current += (lon[i] - current + 180.0) % 360.0 - 180.0
        points.append((current, float(lat[i])))
    # closing step back to the first point
    first_lon = points[0][0]
    close = current + (first_lon - current + 180.0) % 360.0 - 180.0
    winding = round((close - first_lon) / 360.0)
    return points, winding


def _ring_polygon(ring: FloatArray) -> Polygon:
    """The planar polygon a ring bounds: itself, or (winding once) the part above it."""
    points, winding = _planar_ring(ring)
    if winding == 0:
        return Polygon(points)
    lon0 = points[0][0]
    end = lon0 + 360.0 * winding
    return Polygon([*points, (end, points[0][1]), (end, 90.0), (lon0, 90.0)])


def _fold(poly: Polygon) -> Any:
    """The polygon cut at the antimeridian and shifted into −180…180."""
    geom: BaseGeometry = poly if poly.is_valid else shapely.make_valid(poly)
    minx, _, maxx, _ = geom.bounds
    if -180.0 <= minx and maxx <= 180.0:
        return shapely.set_precision(geom, _GRID_DEG)
    pieces = []
    for k in range(math.floor((minx + 180.0) / 360.0), math.floor((maxx + 180.0) / 360.0) + 1):
        part = geom.intersection(box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0))
        if not part.is_empty:
            moved = affinity.translate(part, xoff=-360.0 * k)
            # snap to a grid, so that the pieces of a cut polygon meet exactly again
            pieces.append(shapely.set_precision(moved, _GRID_DEG))
    return shapely.unary_union(pieces, grid_size=_GRID_DEG)


def _pieces(geom: Any) -> list[Polygon]:
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    return [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon) and g.area > 0]


def _even_odd(pieces: list[Polygon], inside: Point) -> list[Polygon]:
    """The faces of the pieces' outlines covered by an odd number of pieces (or an even number,
    when that is what puts ``inside`` in the region)."""
    lines = [p.exterior for p in pieces] + [_WORLD.exterior]
    noded = shapely.union_all(lines, grid_size=_GRID_DEG)
    faces = list(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    tree = shapely.STRtree(pieces)
    points = shapely.point_on_surface(faces)
    hits = tree.query(points, predicate="within")
    parity = np.bincount(hits[0], minlength=len(faces)) % 2
    holder = tree.query(inside, predicate="within")
    wanted = len(holder) % 2
    return [f for f, k in zip(faces, parity, strict=True) if k == wanted]


def region_geometry(pmap: ProbabilityMap, tiles: npt.NDArray[np.int64]) -> MultiPolygon:
    """The union of ``tiles`` as a planar MultiPolygon in (lon = RA wrapped, lat = Dec) degrees.

    Parameters
    ----------
    pmap
        The map the tiles belong to.
    tiles
        Positions of the tiles; ``tiles[0]`` must be inside (any of them is).

    Returns
    -------
    shapely.geometry.MultiPolygon
        Valid, oriented (outer rings counter-clockwise), longitudes within −180…180.
    """
    pieces = [p for r in boundary_rings(pmap, tiles) for p in _pieces(_fold(_ring_polygon(r)))]
    ra, dec = pmap.centres()
    lon = (math.degrees(ra[tiles[0]]) + 180.0) % 360.0 - 180.0
    lon = min(max(lon, -180.0 + 1e-6), 180.0 - 1e-6)  # a centre on the antimeridian: nudge it
    anchor = Point(lon, math.degrees(dec[tiles[0]]))
    faces = _even_odd(pieces, anchor) if pieces else [_WORLD]
    faces = [orient(f, sign=1.0) for f in faces]
    out = MultiPolygon(faces)
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
