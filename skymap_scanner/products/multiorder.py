"""Read a SkyScanResult JSON dict and merge its nsides into one multi-order HEALPix map.

The input is the "nsides dict" written by icecube-skyreader's ``SkyScanResult.serialize()``:
``{"nside-<n>": {"columns": [...], "data": [[index, llh, ...], ...], "metadata": {...}}}``.
Pixel indices are HEALPix RING indices at their own nside; NaN may be the string
``"<skyreader.nan>"``, a bare JSON ``NaN`` or ``null``.

Merging rule ("finest value wins"): every point of the sky takes the value of the finest scanned
pixel that contains it. A coarse pixel that is partly covered by finer pixels is split into the
fewest NESTED sub-pixels that tile its uncovered part (a minimal quad-tree); those sub-pixels keep
the coarse value. The resulting tiles never overlap. A NaN llh in a finer pixel also wins (the
point is then "unknown" and lies outside every region). Each tile is identified by its NUNIQ id
``uniq = 4 * nside**2 + nest_index``.

The reference for ΔLLH is the best-fit llh, chosen exactly as skyreader's ``best_fit`` does:
nsides are visited in the dict's key order, **an nside that contains any NaN llh is skipped
entirely**, and a later nside replaces the current minimum only with a strictly smaller llh (so
ties go to the first nside listed, and within an nside to the lowest pixel index). Values are
``2ΔLLH = 2 * (llh - best_llh)``; pixels of a skipped nside may therefore be negative.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import healpy as hp
import numpy as np
import numpy.typing as npt

__all__ = [
    "NAN_SENTINEL",
    "BestFit",
    "MultiOrderMap",
    "NsideScan",
    "ParsedResult",
    "build_multiorder",
    "find_best_fit",
    "multiorder_from_result",
    "parse_result",
    "radec_to_thetaphi",
    "thetaphi_to_radec",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

NAN_SENTINEL = "<skyreader.nan>"
"""How skyreader (>= 1.4.6) writes NaN into the JSON."""

_KEY_PREFIX = "nside-"


@dataclass(frozen=True)
class NsideScan:
    """The scanned pixels of one nside, sorted by RING index."""

    nside: int
    index: IntArray
    llh: FloatArray
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class BestFit:
    """The minimum-llh pixel (skyreader's ``best_fit`` / ``best_dir``)."""

    nside: int
    pixel: int
    llh: float
    ra_rad: float
    dec_rad: float

    @property
    def ra_deg(self) -> float:
        return math.degrees(self.ra_rad)

    @property
    def dec_deg(self) -> float:
        return math.degrees(self.dec_rad)


@dataclass(frozen=True)
class ParsedResult:
    """All nsides of a result, in the dict's key order, plus the shared event metadata."""

    scans: tuple[NsideScan, ...]
    metadata: Mapping[str, Any]

    @property
    def nsides(self) -> tuple[int, ...]:
        return tuple(sorted(s.nside for s in self.scans))

    @property
    def complete(self) -> bool:
        return all(bool(s.metadata.get("complete", True)) for s in self.scans)


def thetaphi_to_radec(theta: npt.ArrayLike, phi: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """HEALPix (colatitude, longitude) → (RA, Dec) in radians."""
    return np.asarray(phi, dtype=np.float64), np.pi / 2 - np.asarray(theta, dtype=np.float64)


def radec_to_thetaphi(ra: npt.ArrayLike, dec: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(RA, Dec) in radians → HEALPix (colatitude, longitude), longitude wrapped to [0, 2π)."""
    theta = np.pi / 2 - np.asarray(dec, dtype=np.float64)
    phi = np.mod(np.asarray(ra, dtype=np.float64), 2 * np.pi)
    return theta, phi


def _nside_to_order(nside: int) -> int:
    if nside < 1 or nside & (nside - 1):
        raise ValueError(f"nside {nside} is not a power of two; a multi-order map needs 2**k")
    return nside.bit_length() - 1


def _as_float(value: Any) -> float:
    if value is None or (isinstance(value, str) and value == NAN_SENTINEL):
        return math.nan
    return float(value)


def parse_result(result: Mapping[str, Any]) -> ParsedResult:
    """Parse a SkyScanResult JSON dict (versions 0 and 1) into per-nside arrays.

    Raises ``ValueError`` for a malformed entry, naming the key and what is wrong.
    """
    scans: list[NsideScan] = []
    metadata: dict[str, Any] = {}
    for key, entry in result.items():
        if not key.startswith(_KEY_PREFIX):
            raise ValueError(f"result key {key!r}: expected 'nside-<n>'")
        try:
            nside = int(key[len(_KEY_PREFIX) :])
        except ValueError as exc:
            raise ValueError(f"result key {key!r}: nside is not an integer") from exc
        _nside_to_order(nside)
        try:
            columns = list(entry["columns"])
            data = entry["data"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{key}: needs 'columns' and 'data'") from exc
        meta = dict(entry.get("metadata") or {})
        if "nside" in meta and int(meta["nside"]) != nside:
            raise ValueError(f"{key}: metadata nside {meta['nside']} does not match the key")
        try:
            i_idx, i_llh = columns.index("index"), columns.index("llh")
        except ValueError as exc:
            raise ValueError(f"{key}: columns {columns} lack 'index' or 'llh'") from exc
        index = np.array([int(row[i_idx]) for row in data], dtype=np.int64)
        llh = np.array([_as_float(row[i_llh]) for row in data], dtype=np.float64)
        if index.size and (index.min() < 0 or index.max() >= 12 * nside * nside):
            raise ValueError(f"{key}: pixel index out of range for nside {nside}")
        order = np.argsort(index, kind="stable")
        scans.append(NsideScan(nside, index[order], llh[order], meta))
        for name, value in meta.items():
            if name not in ("nside", "complete"):
                metadata.setdefault(name, value)
    if not scans:
        raise ValueError("result has no 'nside-<n>' entries")
    return ParsedResult(tuple(scans), metadata)


def find_best_fit(parsed: ParsedResult) -> BestFit:
    """The minimum-llh pixel, with skyreader's rules (see the module docstring)."""
    best: tuple[NsideScan, int] | None = None
    best_llh = math.inf
    for scan in parsed.scans:
        if scan.llh.size == 0 or np.isnan(scan.llh).any():
            continue  # skyreader: numpy's min over an nside with a NaN is NaN → never chosen
        i = int(np.argmin(scan.llh))
        if best is None or scan.llh[i] < best_llh:
            best, best_llh = (scan, i), float(scan.llh[i])
    if best is None:
        raise ValueError("no best fit: every nside is empty or contains a NaN llh")
    scan, i = best
    pixel = int(scan.index[i])
    theta, phi = hp.pix2ang(scan.nside, pixel)
    ra, dec = thetaphi_to_radec(theta, phi)
    return BestFit(scan.nside, pixel, best_llh, float(ra), float(dec))


@dataclass(frozen=True)
class MultiOrderMap:
    """Non-overlapping multi-order tiles, sorted by NUNIQ id.

    ``delta2`` is 2ΔLLH relative to ``reference_llh`` (NaN where the llh is NaN).
    """

    uniq: IntArray
    nside: IntArray
    nest: IntArray
    llh: FloatArray
    reference_llh: float
    scanned_nsides: tuple[int, ...]
    delta2: FloatArray = field(init=False)
    _start: IntArray = field(init=False, repr=False)
    _stop: IntArray = field(init=False, repr=False)
    _by_start: IntArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "delta2", 2.0 * (self.llh - self.reference_llh))
        shift = 2 * (self.max_order - np.log2(self.nside).astype(np.int64))
        start = self.nest << shift
        stop = (self.nest + 1) << shift
        by_start = np.argsort(start, kind="stable")
        object.__setattr__(self, "_start", start[by_start])
        object.__setattr__(self, "_stop", stop[by_start])
        object.__setattr__(self, "_by_start", by_start)

    @property
    def max_nside(self) -> int:
        return int(self.nside.max())

    @property
    def max_order(self) -> int:
        return _nside_to_order(self.max_nside)

    @property
    def pixel_area_sr(self) -> FloatArray:
        """Solid angle of each tile in steradians (4π / (12 nside²))."""
        return 4.0 * np.pi / (12.0 * self.nside.astype(np.float64) ** 2)

    def centres(self) -> tuple[FloatArray, FloatArray]:
        """(RA, Dec) of each tile's centre in radians."""
        ra = np.empty(self.uniq.size)
        dec = np.empty(self.uniq.size)
        for n in np.unique(self.nside):
            sel = self.nside == n
            theta, phi = hp.pix2ang(int(n), self.nest[sel], nest=True)
            ra[sel], dec[sel] = thetaphi_to_radec(theta, phi)
        return ra, dec

    def tile_at(self, ra: npt.ArrayLike, dec: npt.ArrayLike) -> IntArray:
        """Position (into the uniq-sorted arrays) of the tile containing each point, or -1."""
        theta, phi = radec_to_thetaphi(ra, dec)
        ipix = np.asarray(hp.ang2pix(self.max_nside, theta, phi, nest=True), dtype=np.int64)
        pos = np.searchsorted(self._start, ipix, side="right") - 1
        inside = (pos >= 0) & (ipix < self._stop[np.maximum(pos, 0)])
        return np.where(inside, self._by_start[np.maximum(pos, 0)], -1).astype(np.int64)

    def values_at(self, ra: npt.ArrayLike, dec: npt.ArrayLike) -> FloatArray:
        """2ΔLLH of the finest scanned pixel containing each point (NaN outside the scan).

        The result has the broadcast shape of ``ra`` and ``dec`` (0-d for scalars).
        """
        tile = self.tile_at(ra, dec)
        return np.where(tile >= 0, self.delta2[np.maximum(tile, 0)], np.nan)

    def flat_map(self, nest: bool = False) -> FloatArray:
        """2ΔLLH at ``max_nside`` (coarse tiles filled down), RING order unless ``nest``.

        Pixels not covered by any scanned pixel are NaN.
        """
        npix = 12 * self.max_nside**2
        out = np.full(npix, np.nan)
        lengths = self._stop - self._start
        offsets = np.repeat(self._start - np.cumsum(lengths) + lengths, lengths)
        positions = np.arange(int(lengths.sum()), dtype=np.int64) + offsets
        out[positions] = np.repeat(self.delta2[self._by_start], lengths)
        if nest:
            return out
        ring = np.empty_like(out)
        ring[hp.nest2ring(self.max_nside, np.arange(npix))] = out
        return ring


def build_multiorder(parsed: ParsedResult, reference_llh: float) -> MultiOrderMap:
    """Merge all nsides of ``parsed`` into non-overlapping tiles (finest value wins)."""
    tiles: dict[tuple[int, int], float] = {}  # (order, nest) -> llh
    for scan in sorted(parsed.scans, key=lambda s: s.nside):
        order = _nside_to_order(scan.nside)
        nest = np.asarray(hp.ring2nest(scan.nside, scan.index), dtype=np.int64)
        for p, value in zip(nest.tolist(), scan.llh.tolist(), strict=True):
            # Tiles made by earlier splits may sit at any coarser order: look at all of them.
            for k in range(order - 1, -1, -1):
                ancestor = (k, p >> (2 * (order - k)))
                if ancestor in tiles:
                    _split_towards(tiles, ancestor, order, p)
                    break
            tiles[(order, p)] = value
    keys = sorted(tiles, key=lambda t: 4 * 4 ** t[0] + t[1])
    orders = np.array([k for k, _ in keys], dtype=np.int64)
    nest_arr = np.array([p for _, p in keys], dtype=np.int64)
    nside_arr = (np.int64(1) << orders).astype(np.int64)
    return MultiOrderMap(
        uniq=4 * nside_arr**2 + nest_arr,
        nside=nside_arr,
        nest=nest_arr,
        llh=np.array([tiles[k] for k in keys], dtype=np.float64),
        reference_llh=reference_llh,
        scanned_nsides=parsed.nsides,
    )


def _split_towards(
    tiles: dict[tuple[int, int], float], tile: tuple[int, int], order: int, target: int
) -> None:
    """Replace ``tile`` by its sub-tiles down to ``order``, leaving ``target``'s path open.

    The three siblings at each level keep the coarse value; the caller fills ``(order, target)``.
    """
    value = tiles.pop(tile)
    k, p = tile
    for j in range(k + 1, order + 1):
        on_path = target >> (2 * (order - j))
        for child in range(4 * p, 4 * p + 4):
            if child != on_path:
                tiles[(j, child)] = value
        p = on_path
    tiles[(order, target)] = value


def multiorder_from_result(result: Mapping[str, Any]) -> tuple[MultiOrderMap, BestFit]:
    """Parse ``result``, find the skyreader-compatible best fit and build the merged map."""
    parsed = parse_result(result)
    best = find_best_fit(parsed)
    return build_multiorder(parsed, best.llh), best
