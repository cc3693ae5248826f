"""The few HEALPix RING-scheme operations the scanner server needs, in plain numpy.

Why not healpy: importing healpy pulls in matplotlib and astropy (about 0.7 s of CPU), and the server's start-up
is on the critical path of every scan — a realtime alert waits for it. These functions follow the HEALPix
library's integer algorithms (Górski et al. 2005; `healpix_base.cc`), and tests/unit/test_healpix.py checks them
against healpy pixel by pixel. healpy stays in use where its weight does not matter (skymap products, plots).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: ring number (in units of nside) of each base face's southernmost corner, and its longitude index
_JRLL = np.array([2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4], dtype=np.int64)
_JPLL = np.array([1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7], dtype=np.int64)

# Neighbour lookup across base-face edges: the 8 directions as (dx, dy); for a step that leaves the face,
# the neighbouring face (-1: none, i.e. the pixel has only 7 neighbours) and how to map (x, y) into it
# (bit 1: mirror x, bit 2: mirror y, bit 4: swap x and y). Rows are indexed by where the step lands
# (0..8 = S, SE, E, SW, same face, NE, W, NW, N), columns by the face (faces 0-3 north, 4-7 equator, 8-11 south).
_DX = np.array([-1, -1, 0, 1, 1, 1, 0, -1], dtype=np.int64)
_DY = np.array([0, 1, 1, 1, 0, -1, -1, -1], dtype=np.int64)
_FACE_ACROSS = np.array(
    [
        [8, 9, 10, 11, -1, -1, -1, -1, 10, 11, 8, 9],
        [5, 6, 7, 4, 8, 9, 10, 11, 9, 10, 11, 8],
        [-1, -1, -1, -1, 5, 6, 7, 4, -1, -1, -1, -1],
        [4, 5, 6, 7, 11, 8, 9, 10, 11, 8, 9, 10],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        [1, 2, 3, 0, 0, 1, 2, 3, 5, 6, 7, 4],
        [-1, -1, -1, -1, 7, 4, 5, 6, -1, -1, -1, -1],
        [3, 0, 1, 2, 3, 0, 1, 2, 4, 5, 6, 7],
        [2, 3, 0, 1, -1, -1, -1, -1, 0, 1, 2, 3],
    ],
    dtype=np.int64,
)
_SWAP_ACROSS = np.array(  # by face row: north, equator, south
    [
        [0, 0, 3],
        [0, 0, 6],
        [0, 0, 0],
        [0, 0, 5],
        [0, 0, 0],
        [5, 0, 0],
        [0, 0, 0],
        [6, 0, 0],
        [3, 0, 0],
    ],
    dtype=np.int64,
)


def nside2npix(nside: int) -> int:
    return 12 * nside * nside


def nside2pixarea(nside: int) -> float:
    """Pixel area in steradians."""
    return 4 * math.pi / nside2npix(nside)


def _isqrt(v: IntArray) -> IntArray:
    """Integer square root of non-negative int64s (exact for every pixel index)."""
    r = np.sqrt(v.astype(np.float64)).astype(np.int64)
    r -= (r * r > v).astype(np.int64)
    r += ((r + 1) * (r + 1) <= v).astype(np.int64)
    return r


def _ring_and_phi_index(nside: int, pix: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """(ring number 1..4nside-1 from the north, index 1.. of the pixel in its ring, kshift) of RING pixels."""
    npix, ncap = nside2npix(nside), 2 * nside * (nside - 1)
    iring = np.empty_like(pix)
    iphi = np.empty_like(pix)
    kshift = np.zeros_like(pix)
    north, south = pix < ncap, pix >= npix - ncap
    equator = ~(north | south)

    p = pix[north]
    r = (1 + _isqrt(1 + 2 * p)) >> 1
    iring[north], iphi[north] = r, p + 1 - 2 * r * (r - 1)

    ip = pix[equator] - ncap
    tmp = ip // (4 * nside)
    iring[equator] = tmp + nside
    iphi[equator] = ip - tmp * 4 * nside + 1
    kshift[equator] = (tmp + 2 * nside) & 1

    ip = npix - pix[south]
    r = (1 + _isqrt(2 * ip - 1)) >> 1
    iring[south], iphi[south] = 4 * nside - r, 4 * r + 1 - (ip - 2 * r * (r - 1))
    return iring, iphi, kshift


def _pixels_in_ring(nside: int, iring: IntArray) -> IntArray:
    """Number of pixels in each ring."""
    return 4 * np.minimum(np.minimum(iring, 4 * nside - iring), nside)


def pix2ang(nside: int, pix: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(colatitude θ, longitude φ) in radians of RING pixel centres, in the shape of `pix`."""
    shape = np.shape(pix)
    p = np.atleast_1d(np.asarray(pix, dtype=np.int64)).ravel()
    iring, iphi, kshift = _ring_and_phi_index(nside, p)
    npix = nside2npix(nside)
    fact2 = 4.0 / npix
    fact1 = 2 * nside * fact2
    theta = np.empty(p.shape, dtype=np.float64)
    phi = np.empty(p.shape, dtype=np.float64)

    cap = (iring < nside) | (iring > 3 * nside)
    k = np.minimum(iring, 4 * nside - iring)[cap]
    tmp = (k * k) * fact2
    sth = np.sqrt(tmp * (2.0 - tmp))
    z = np.where(iring[cap] < nside, 1.0 - tmp, tmp - 1.0)
    theta[cap] = np.arctan2(sth, z)
    phi[cap] = (iphi[cap] - 0.5) * (math.pi / 2) / k

    eq = ~cap
    fodd = np.where(kshift[eq] == 1, 1.0, 0.5)  # (iring + nside) odd ⇔ kshift
    theta[eq] = np.arccos((2 * nside - iring[eq]) * fact1)
    phi[eq] = (iphi[eq] - fodd) * math.pi * 0.75 * fact1
    return theta.reshape(shape), phi.reshape(shape)


def pix2vec(nside: int, pix: npt.ArrayLike) -> FloatArray:
    """Unit vectors of RING pixel centres, shape `np.shape(pix) + (3,)`."""
    theta, phi = pix2ang(nside, pix)
    st = np.sin(theta)
    return np.stack([st * np.cos(phi), st * np.sin(phi), np.cos(theta)], axis=-1)


# -- RING <-> (x, y, face) <-> NESTED --------------------------------------------------------------
def _ring2xyf(nside: int, pix: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    iring, iphi, kshift = _ring_and_phi_index(nside, pix)
    nr = np.minimum(np.minimum(iring, 4 * nside - iring), nside)
    face = np.empty_like(pix)
    north, south = iring < nside, iring > 3 * nside
    equator = ~(north | south)
    face[north] = (iphi[north] - 1) // nr[north]
    face[south] = 8 + (iphi[south] - 1) // nr[south]
    ire = iring[equator] - nside + 1
    irm = 2 * nside + 2 - ire
    ifm = (iphi[equator] - (ire >> 1) + nside - 1) // nside
    ifp = (iphi[equator] - (irm >> 1) + nside - 1) // nside
    face[equator] = np.where(ifp == ifm, ifp | 4, np.where(ifp < ifm, ifp, ifm + 8))
    irt = iring - _JRLL[face] * nside + 1
    ipt = 2 * iphi - _JPLL[face] * nr - kshift - 1
    ipt = np.where(ipt >= 2 * nside, ipt - 8 * nside, ipt)
    return (ipt - irt) >> 1, (-ipt - irt) >> 1, face


def _xyf2ring(nside: int, ix: IntArray, iy: IntArray, face: IntArray) -> IntArray:
    nl4, npix, ncap = 4 * nside, nside2npix(nside), 2 * nside * (nside - 1)
    jr = _JRLL[face] * nside - ix - iy - 1
    north, south = jr < nside, jr > 3 * nside
    nr = np.where(north, jr, np.where(south, nl4 - jr, nside))
    n_before = np.where(
        north,
        2 * nr * (nr - 1),
        np.where(south, npix - 2 * (nr + 1) * nr, ncap + (jr - nside) * nl4),
    )
    kshift = np.where(north | south, 0, (jr - nside) & 1)
    jp = (_JPLL[face] * nr + ix - iy + 1 + kshift) // 2
    jp = np.where(jp > nl4, jp - nl4, np.where(jp < 1, jp + nl4, jp))
    ring: IntArray = n_before + jp - 1
    return ring


def _spread_bits(v: IntArray) -> IntArray:
    """Interleave zeros between the bits of v (bit k moves to bit 2k)."""
    out = np.zeros_like(v)
    for k in range(30):
        out |= ((v >> k) & 1) << (2 * k)
    return out


def _compress_bits(v: IntArray) -> IntArray:
    """Inverse of _spread_bits on the even bits."""
    out = np.zeros_like(v)
    for k in range(30):
        out |= ((v >> (2 * k)) & 1) << k
    return out


def ring2nest(nside: int, pix: npt.ArrayLike) -> IntArray:
    ix, iy, face = _ring2xyf(nside, np.atleast_1d(np.asarray(pix, dtype=np.int64)))
    return face * nside * nside + _spread_bits(ix) + (_spread_bits(iy) << 1)


def nest2ring(nside: int, pix: npt.ArrayLike) -> IntArray:
    p = np.atleast_1d(np.asarray(pix, dtype=np.int64))
    npface = nside * nside
    face, within = p // npface, p % npface
    return _xyf2ring(nside, _compress_bits(within), _compress_bits(within >> 1), face)


def neighbours(nside: int, pix: npt.ArrayLike) -> IntArray:
    """The RING pixels adjacent to each of `pix`: shape (n, 8), in no particular order, -1 where a pixel has
    only 7 neighbours."""
    ix, iy, face = _ring2xyf(nside, np.atleast_1d(np.asarray(pix, dtype=np.int64)))
    out = np.empty((ix.size, 8), dtype=np.int64)
    for k, (dx, dy) in enumerate(zip(_DX.tolist(), _DY.tolist(), strict=True)):
        x, y = ix + dx, iy + dy
        across = 4 - (x < 0) + (x >= nside) - 3 * (y < 0) + 3 * (y >= nside)
        x, y = x % nside, y % nside
        f = _FACE_ACROSS[across, face]
        bits = _SWAP_ACROSS[across, face >> 2]
        x = np.where(bits & 1, nside - x - 1, x)
        y = np.where(bits & 2, nside - y - 1, y)
        x, y = np.where(bits & 4, y, x), np.where(bits & 4, x, y)
        ring = _xyf2ring(nside, x, y, np.maximum(f, 0))
        out[:, k] = np.where(f >= 0, ring, -1)
    return out


def parent(nside: int, pix: npt.ArrayLike, coarse: int) -> IntArray:
    """The RING pixel at the coarser `coarse` that contains each RING pixel at `nside` (nested: drop 2 bits per
    halving), which is also the coarse pixel holding the fine pixel's centre."""
    nested = ring2nest(nside, pix)
    levels = (nside // coarse).bit_length() - 1
    return nest2ring(coarse, nested >> (2 * levels))


def pixels_within(nside: int, centre: FloatArray, radius: float) -> IntArray:
    """RING pixels whose centres are less than `radius` (radians) from the unit vector `centre`."""
    theta_c = math.acos(max(-1.0, min(1.0, float(centre[2]))))
    rings = np.arange(1, 4 * nside, dtype=np.int64)
    first = np.where(
        rings < nside,
        2 * rings * (rings - 1),
        np.where(
            rings <= 3 * nside,
            2 * nside * (nside - 1) + (rings - nside) * 4 * nside,
            nside2npix(nside) - 2 * (4 * nside - rings) * (4 * nside - rings + 1),
        ),
    )
    ring_theta = pix2ang(nside, first)[0]
    margin = radius + 1e-9
    band = (ring_theta >= theta_c - margin) & (ring_theta <= theta_c + margin)
    counts = _pixels_in_ring(nside, rings[band])
    if not counts.size:
        return np.empty(0, dtype=np.int64)
    starts = first[band]
    offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    candidates = np.repeat(starts, counts) + offsets
    dots = np.clip(pix2vec(nside, candidates) @ np.asarray(centre, dtype=np.float64), -1.0, 1.0)
    return candidates[np.arccos(dots) < radius]
