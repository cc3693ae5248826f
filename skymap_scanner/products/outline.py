"""The outline of a set of multi-order tiles: closed rings of boundary vertices, traced exactly.

The boundary is traced on the HEALPix grid of the map's finest order K. Every tile of the set is
walked along its four sides in unit edges of order K; a unit edge is on the boundary when the
order-K pixel across it belongs to a tile outside the set. Each boundary edge is directed so that
the set lies on its left when the sky is seen from outside the sphere (RA increasing to the right,
Dec up: the GeoJSON/RFC 7946 orientation), i.e. a pixel's corners N → W → S → E → N.

Edges are chained into rings at their shared corners (corners computed by healpy from different
pixels are merged when closer than 1e-4 of a pixel: by grid cell, or, when two computations of a
corner straddle a cell edge, by proximity). Where two parts of the set touch at one corner
only, the walk turns as far left as it can, so that the parts get separate rings. Outer rings then
run counter-clockwise and rings around holes clockwise.
"""

from __future__ import annotations

import logging
import math

import healpy as hp
import numpy as np
import numpy.typing as npt

from .probability import ProbabilityMap

__all__ = ["boundary_rings"]

LOG = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# side of a pixel → (corner index from, corner index to, row in healpy's get_all_neighbours)
# healpy's corners are N, W, S, E; neighbours SW, W, NW, N, NE, E, SE, S
_SIDES = {"NW": (0, 1, 2), "SW": (1, 2, 0), "SE": (2, 3, 6), "NE": (3, 0, 4)}
# an edge spanning more RA than this keeps points along its curve
_LONG_EDGE_RAD = math.radians(0.5)


def _side_pixels(
    x0: IntArray, y0: IntArray, face: IntArray, span: int, side: str
) -> tuple[IntArray, IntArray, IntArray]:
    """(x, y, face) at order K of the unit pixels along one side of tiles ``span`` pixels wide."""
    j = np.arange(span, dtype=np.int64)
    xs, ys = x0[:, None] * span, y0[:, None] * span
    if side == "SW":
        x, y = np.broadcast_to(xs, (x0.size, span)), ys + j
    elif side == "NE":
        x, y = np.broadcast_to(xs + span - 1, (x0.size, span)), ys + j
    elif side == "SE":
        x, y = xs + j, np.broadcast_to(ys, (x0.size, span))
    else:  # NW
        x, y = xs + j, np.broadcast_to(ys + span - 1, (x0.size, span))
    f = np.broadcast_to(face[:, None], (x0.size, span))
    return x.ravel(), y.ravel(), f.ravel()


def _boundary_edges(
    pmap: ProbabilityMap, tiles: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The directed boundary edges: start corners, end corners (unit vectors, shape (n, 3)) and
    three points along each edge between them (shape (n, 3, 3))."""
    top = pmap.max_order
    nside_top = 1 << top
    member = np.zeros(pmap.uniq.size, dtype=bool)
    member[tiles] = True
    starts: list[FloatArray] = []
    ends: list[FloatArray] = []
    middles: list[FloatArray] = []
    orders = pmap.order[tiles]
    for k in np.unique(orders):
        nest = pmap.nest[tiles[orders == k]]
        x0, y0, face = (
            np.asarray(a, dtype=np.int64) for a in hp.pix2xyf(1 << int(k), nest, nest=True)
        )
        span = 1 << (top - int(k))
        for side, (c_from, c_to, row) in _SIDES.items():
            x, y, f = _side_pixels(x0, y0, face, span, side)
            unit = np.asarray(hp.xyf2pix(nside_top, x, y, f, nest=True), dtype=np.int64)
            across = np.asarray(hp.get_all_neighbours(nside_top, unit, nest=True))[row]
            owner = pmap.tile_of_pixels(np.maximum(across, 0), top)
            outside = (across < 0) | (owner < 0) | ~member[np.maximum(owner, 0)]
            if not outside.any():
                continue
            # four points per side: corner N, three along N→W, corner W, ...
            points = np.asarray(hp.boundaries(nside_top, unit[outside], step=4, nest=True))
            points = np.moveaxis(points.reshape(-1, 3, 16), 1, 2)
            starts.append(points[:, 4 * c_from])
            ends.append(points[:, 4 * c_to])
            middles.append(points[:, 4 * c_from + 1 : 4 * c_from + 4])
    if not starts:
        return np.empty((0, 3)), np.empty((0, 3)), np.empty((0, 3, 3))
    return np.concatenate(starts), np.concatenate(ends), np.concatenate(middles)


def _grid_ids(points: FloatArray, tolerance: float) -> IntArray:
    """Ids of points by their cell on a grid ``tolerance`` wide (fast; two computations of one
    corner can fall into two cells when they straddle a cell edge: ``_balanced`` catches that)."""
    keys = np.floor(points / tolerance).astype(np.int64)
    _, ids = np.unique(keys, axis=0, return_inverse=True)
    return np.asarray(ids, dtype=np.int64).ravel()


def _balanced(a: IntArray, b: IntArray) -> bool:
    """Every vertex starts as many edges as end there (a necessary condition for closed rings)."""
    n = int(max(a.max(), b.max())) + 1
    return bool(np.array_equal(np.bincount(a, minlength=n), np.bincount(b, minlength=n)))


def _cluster_ids(points: FloatArray, tolerance: float) -> IntArray:
    """Cluster points closer than ``tolerance`` (chord length) into ids (slower, always right)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    tree = cKDTree(points)
    pairs = tree.query_pairs(tolerance, output_type="ndarray")
    n = points.shape[0]
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int64)


def _left_turn(prev: FloatArray, at: FloatArray, nxt: FloatArray) -> float:
    """Signed turn angle at ``at`` (positive = left, seen from outside the sphere)."""
    d_in, d_out = at - prev, nxt - at
    return math.atan2(float(np.dot(at, np.cross(d_in, d_out))), float(np.dot(d_in, d_out)))


def boundary_rings(pmap: ProbabilityMap, tiles: IntArray) -> list[FloatArray]:
    """Closed boundary rings of the union of ``tiles``.

    Parameters
    ----------
    pmap
        The map the tiles belong to.
    tiles
        Positions of the tiles (into the map's uniq-sorted arrays).

    Returns
    -------
    list of ndarray
        Each ring as unit vectors of shape (n, 3), first vertex repeated at the end; outer rings
        counter-clockwise, holes clockwise (seen from outside). Empty when the tiles cover the sky.
    """
    start, end, middle = _boundary_edges(pmap, tiles)
    n_edges = start.shape[0]
    if n_edges == 0:
        return []
    tolerance = 1e-4 * hp.nside2resol(pmap.max_nside)
    points = np.concatenate([start, end])
    ids = _grid_ids(points, tolerance)
    if not _balanced(ids[:n_edges], ids[n_edges:]):
        LOG.debug("corner ids by grid cell are unbalanced: clustering them instead")
        ids = _cluster_ids(points, tolerance)
    a, b = ids[:n_edges], ids[n_edges:]
    # successor of each edge: the edge leaving its end vertex (the leftmost one where several do)
    by_start = np.argsort(a, kind="stable")
    first = np.searchsorted(a[by_start], b, side="left")
    last = np.searchsorted(a[by_start], b, side="right")
    if np.any(last == first):
        raise RuntimeError("the region's boundary is not closed (a corner was not matched)")
    succ = by_start[first].copy()
    for pinch in np.flatnonzero(last - first > 1):
        options = by_start[first[pinch] : last[pinch]]
        turns = [_left_turn(start[pinch], end[pinch], end[o]) for o in options]
        succ[pinch] = options[int(np.argmax(turns))]
    if np.unique(succ).size != n_edges:
        raise RuntimeError("the region's boundary edges do not form rings")
    rings: list[FloatArray] = []
    seen = np.zeros(n_edges, dtype=bool)
    for e0 in range(n_edges):
        if seen[e0]:
            continue
        chain = []
        e = e0
        while not seen[e]:
            seen[e] = True
            chain.append(e)
            e = int(succ[e])
        rings.append(_ring_points(start[chain], middle[chain], end[chain]))
    return rings


def _ring_points(start: FloatArray, middle: FloatArray, end: FloatArray) -> FloatArray:
    """A closed ring from its edges, with the points along an edge kept where it is long in RA.

    HEALPix edges are not straight in (RA, Dec); near the poles and at coarse orders one edge can
    span many degrees of RA, so its three inner points are kept to follow its curve.
    """
    lon_start = np.arctan2(start[:, 1], start[:, 0])
    lon_end = np.arctan2(end[:, 1], end[:, 0])
    span = np.abs(np.mod(lon_end - lon_start + np.pi, 2 * np.pi) - np.pi)
    long_edge = span > _LONG_EDGE_RAD
    parts: list[FloatArray] = []
    for i in range(start.shape[0]):
        parts.append(start[i : i + 1])
        if long_edge[i]:
            parts.append(middle[i])
    ring = np.concatenate(parts)
    return np.vstack([ring, ring[:1]])
