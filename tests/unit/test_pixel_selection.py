"""Pixel selection and refinement with a deterministic likelihood (angular distance to a chosen direction),
driven through the real send/collect loop with an in-process transport (no broker needed for pure logic)."""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import AsyncIterator

import healpy
import numpy as np
import pytest

from skymap_scanner.events import EventMetadata
from skymap_scanner.pixels import PixelReco, choose_pixels_to_reconstruct
from skymap_scanner.server.progress import ProgressTracker
from skymap_scanner.server.scan import (
    ClientsTimedOut,
    Reporter,
    parent_seeds,
    run_scan,
    task_factory,
)
from skymap_scanner.server.state import ScanState
from skyscan_contract.messages import PixelResult, PixelTask, RecoPixelVariation, Seed
from skyscan_contract.nsides import InvalidNsides, NSideProgression

TARGET_RA, TARGET_DEC = 1.2345, -0.4321  # radians
META = EventMetadata(
    run_id=136662, event_id=35405932, event_type="neutrino", mjd=59723.3, is_real_event=True
)


def distance_llh(ra: float, dec: float) -> float:
    v1 = healpy.ang2vec(math.pi / 2 - dec, ra)
    v2 = healpy.ang2vec(math.pi / 2 - TARGET_DEC, TARGET_RA)
    return float(np.arccos(np.clip(np.dot(v1, v2), -1, 1)))


class InMemoryTransport:
    """Answers every published task with the deterministic llh, in publication order."""

    def __init__(self) -> None:
        self.pending: deque[PixelTask] = deque()
        self.sent: list[tuple[int, int, int]] = []
        self.rounds: list[Counter[int]] = []  # pixels per nside in each publication

    async def publish(self, tasks: list[PixelTask]) -> None:
        self.pending.extend(tasks)
        self.sent.extend(t.id_tuple for t in tasks)
        self.rounds.append(Counter(t.nside for t in tasks))

    async def results(self) -> AsyncIterator[PixelResult]:
        while self.pending:
            t = self.pending.popleft()
            llh = distance_llh(t.ra, t.dec)
            reco = RecoPixelVariation(
                nside=t.nside,
                pixel=t.pixel,
                posvar=t.posvar,
                llh=llh,
                e_in=0,
                e_tot=0,
                x=0,
                y=0,
                z=0,
                t=0,
                energy=0,
            )
            yield PixelResult(reco_pixel_variation=reco, runtime=0.0)
        raise ClientsTimedOut("nothing left")


async def scan(nsides: str, threshold: float) -> tuple[ScanState, InMemoryTransport]:
    progression = NSideProgression.parse(nsides)
    state = ScanState(progression, 1, threshold)
    transport = InMemoryTransport()
    tracker = ProgressTracker(progression, 1, threshold, 60)
    reporter = Reporter([], tracker, META, {}, 60, 120)
    make_tasks = task_factory("test", "dummy", "", state, Seed(x=0, y=0, z=0, t=0))
    await run_scan(state, transport, reporter, make_tasks, shuffle_seed="fixed")
    return state, transport


async def test_finest_best_pixel_contains_the_direction() -> None:
    state, transport = await scan("8:0 64:12 512:24", 1.0)
    best = min(state.nsides_dict[512].values(), key=lambda r: r.llh)
    assert best.pixel == healpy.ang2pix(512, math.pi / 2 - TARGET_DEC, TARGET_RA)
    # every sent pixel-variation came back exactly once
    assert len(transport.sent) == len(set(transport.sent)) == state.n_finished_pixels


async def test_pixel_counts_per_nside_follow_the_reference() -> None:
    state, transport = await scan("8:0 64:12 512:24", 1.0)
    assert len(state.nsides_dict[8]) == 768
    # first refinement of each step is in the reference's ranges (§2.2); later rounds only add
    # pixels around a moved global minimum
    assert transport.rounds[0] == Counter({8: 768})
    assert 576 <= transport.rounds[1][64] <= 832 and set(transport.rounds[1]) == {64}
    assert 1344 <= transport.rounds[2][512] <= 1728
    assert all(c % 64 == 0 for r in transport.rounds[1:] for c in r.values())


async def test_ci_progression_counts() -> None:
    state, transport = await scan("1:0 2:12 4:12", 1.0)
    assert len(state.nsides_dict[1]) == 12
    assert transport.rounds[0] == Counter({1: 12})
    assert transport.rounds[1] == Counter({2: 28})  # r = 114.6 deg: always 7 coarse pixels
    assert 32 <= transport.rounds[2][4] <= 44


async def test_predictive_threshold_finishes_with_the_same_pixels() -> None:
    """Refining early (0.65) re-refines when the minimum moves, so it may send extra pixels, but it
    never misses one that the complete-before-refining scan (1.0) reconstructs, and it ends on the same
    best pixel."""
    full, _ = await scan("8:0 64:12 512:24", 1.0)
    early, _ = await scan("8:0 64:12 512:24", 0.65)
    assert set(full.nsides_dict) == set(early.nsides_dict)
    for nside, pixels in full.nsides_dict.items():
        assert set(pixels) <= set(early.nsides_dict[nside])

    def best(s: ScanState) -> int:
        return min(s.nsides_dict[512].values(), key=lambda r: r.llh).pixel

    assert best(full) == best(early) == healpy.ang2pix(512, math.pi / 2 - TARGET_DEC, TARGET_RA)


def test_refinement_sizes_match_the_reference_radii() -> None:
    # 8 -> 64 with extension 12: 9-13 coarse pixels (576-832 fine) for any position of the minimum
    sizes = Counter()
    for pixel in range(0, 768, 7):
        d = {
            8: {
                p: PixelReco(8, p, 0.0 if p == pixel else 1.0, 0, 0, 0, 0, 0, 0, 0)
                for p in range(768)
            }
        }
        chosen = choose_pixels_to_reconstruct(d, [(8, 0), (64, 12)])
        sizes[len(chosen)] += 1
    assert min(sizes) >= 576 and max(sizes) <= 832


@pytest.mark.parametrize(
    "spec, message",
    [
        ("8:12 64:12", "first nside's extension must be 0"),
        ("8:0 63:12", "63 is not a power of two"),
        ("64:0 8:12", "strictly ascending"),
        ("8:0 8:12", "duplicate nside"),
        ("8-0", "not of the form NSIDE:EXTENSION"),
    ],
)
def test_bad_progressions_are_refused(spec: str, message: str) -> None:
    with pytest.raises(InvalidNsides, match=message):
        NSideProgression.parse(spec)


def _reco(nside: int, pixel: int, llh: float, x: float) -> PixelReco:
    return PixelReco(nside, pixel, llh, 0.0, 0.0, x, 0.0, 0.0, 0.0, 1.0)


def test_seeds_come_from_the_nearest_scanned_ancestor() -> None:
    fallback = Seed(x=-1.0, y=0.0, z=0.0, t=0.0)
    fine = [(64, p) for p in (0, 1000, 20000, 49151)]
    ancestors_8 = [int(healpy.ang2pix(8, *healpy.pix2ang(64, p))) for _, p in fine]
    ancestors_32 = [int(healpy.ang2pix(32, *healpy.pix2ang(64, p))) for _, p in fine]
    nsides_dict = {
        8: {
            ancestors_8[0]: _reco(8, ancestors_8[0], 1.0, 8.0),
            ancestors_8[1]: _reco(8, ancestors_8[1], 1.0, 8.0),
        },
        # nside 32 holds pixel 0's ancestor (nearer than nside 8) and a failed fit for pixel 2's
        32: {
            ancestors_32[0]: _reco(32, ancestors_32[0], 1.0, 32.0),
            ancestors_32[2]: _reco(32, ancestors_32[2], math.nan, 32.0),
        },
    }
    seeds = parent_seeds(nsides_dict, 8, fine, fallback)
    assert [s.x for s in seeds] == [32.0, 8.0, -1.0, -1.0]  # nearest; next coarser; NaN; none
    # the finest scanned nside is never its own ancestor
    assert parent_seeds(nsides_dict, 8, [(8, ancestors_8[0])], fallback) == [fallback]
