"""Pixel selection and refinement, ported from the original scanner's algorithm (reference §2.2).

All HEALPix use is RING ordering (through `healpix`, our numpy port of the few functions needed);
`pix2ang` gives (colatitude θ, RA φ) and Dec = π/2 − θ.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import healpix

#: The original's neighbour rule threshold on 2·|Δllh| (so large it practically never fires; kept for fidelity).
NEIGHBOUR_LLH_THRESHOLD = 200000.0


@dataclass(frozen=True)
class PixelReco:
    """The reconstruction of one pixel (its best position variation), as collected by the server."""

    nside: int
    pixel: int
    llh: float
    e_in: float
    e_tot: float
    x: float
    y: float
    z: float
    t: float
    energy: float
    failed: bool = False


#: {nside: {pixel: reco}}; insertion order is arrival order (it matters for the global-minimum quirk).
NSidesDict = dict[int, dict[int, PixelReco]]


def pixel_direction(nside: int, pixel: int) -> tuple[float, float]:
    """(RA, Dec) in radians of a RING pixel centre."""
    theta, phi = healpix.pix2ang(nside, pixel)
    return float(phi), float(math.pi / 2 - theta)


def positions_by_nside(pixels: Sequence[tuple[int, int]]) -> dict[int, list[int]]:
    """{nside: positions in `pixels` of that nside's pixels}, for batch work one nside at a time."""
    by_nside: dict[int, list[int]] = {}
    for i, (nside, _) in enumerate(pixels):
        by_nside.setdefault(nside, []).append(i)
    return by_nside


def pixel_directions(pixels: Sequence[tuple[int, int]]) -> list[tuple[float, float]]:
    """(RA, Dec) in radians of many (nside, RING pixel) centres, in order."""
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(pixels)
    for nside, idx in positions_by_nside(pixels).items():
        theta, phi = healpix.pix2ang(nside, [pixels[i][1] for i in idx])
        for i, ra, dec in zip(idx, phi.tolist(), (math.pi / 2 - theta).tolist(), strict=True):
            out[i] = (ra, dec)
    return out


def global_minimum(nsides_dict: NSidesDict) -> tuple[int, int] | None:
    """The (nside, pixel) with the smallest llh, with the original's quirk: the first pixel seen is the start
    value (even if NaN) and is replaced only by a strictly smaller, non-NaN llh."""
    best: PixelReco | None = None
    for pixels in nsides_dict.values():
        for reco in pixels.values():
            if best is None or (not math.isnan(reco.llh) and reco.llh < best.llh):
                best = reco
    return None if best is None else (best.nside, best.pixel)


def _upgrade_to_nside(nside: int, pixels: set[int], target: int) -> set[int]:
    """All descendants at `target` of RING pixels at `nside` (via nested indices: children of k are 4k..4k+3)."""
    if not pixels:
        return set()
    nested = healpix.ring2nest(nside, np.fromiter(pixels, dtype=np.int64))
    current = nside
    while current < target:
        nested = (nested[:, None] * 4 + np.arange(4, dtype=np.int64)[None, :]).ravel()
        current *= 2
    return {int(p) for p in healpix.nest2ring(target, nested)}


def choose_pixels_to_reconstruct(
    nsides_dict: NSidesDict, steps: Sequence[tuple[int, int]]
) -> set[tuple[int, int]]:
    """(nside, pixel) pairs to reconstruct next, given what has been collected and a progression slice."""
    if not nsides_dict:
        n0 = steps[0][0]
        return {(n0, p) for p in range(healpix.nside2npix(n0))}

    result: set[tuple[int, int]] = set()
    gmin = global_minimum(nsides_dict)
    for (cur, _), (nxt, ext) in itertools.pairwise(steps):
        if cur not in nsides_dict:
            continue
        finished = nsides_dict[cur]
        chosen: set[int] = set()
        # neighbour rule (practically never fires; kept as the original)
        scanned = [p for p, reco in finished.items() if not math.isnan(reco.llh)]
        for p, around in zip(scanned, healpix.neighbours(cur, scanned).tolist(), strict=True):
            for q in around:
                if q in finished and (
                    2 * abs(finished[p].llh - finished[q].llh) > NEIGHBOUR_LLH_THRESHOLD
                ):
                    chosen.update((p, q))
        # global-minimum rule: every cur-pixel within r of the global minimum's centre
        if gmin is not None:
            radius = math.sqrt(ext * healpix.nside2pixarea(cur) / math.pi)
            centre = healpix.pix2vec(*gmin)
            chosen.update(int(p) for p in healpix.pixels_within(cur, centre, radius))
        result.update((nxt, child) for child in _upgrade_to_nside(cur, chosen, nxt))
    return result


def tally(nsides_dict: Mapping[int, Mapping[int, PixelReco]]) -> dict[int, int]:
    """Number of finished pixels per nside."""
    return {n: len(p) for n, p in nsides_dict.items()}
