"""A restarted scanner server resumes from the stored partial result while the broker redelivers the
results its predecessor had not acknowledged (ack-after-persist): it takes those over instead of
ignoring them, re-sends only what is missing, and completes the scan (the real send/collect loop, with
an in-process transport)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from skymap_scanner.server.progress import ProgressTracker
from skymap_scanner.server.result import build_result
from skymap_scanner.server.scan import Reporter, run_scan, task_factory
from skymap_scanner.server.state import ScanState
from skyscan_contract.messages import PixelResult, RecoPixelVariation, Seed
from skyscan_contract.nsides import NSideProgression
from tests.unit.test_pixel_selection import META, InMemoryTransport, scan

NSIDES = "1:0 2:12 4:12"


class RestartedTransport(InMemoryTransport):
    """First the redelivered results of the previous server, then answers to what is published."""

    def __init__(self, redelivered: list[PixelResult]) -> None:
        super().__init__()
        self.redelivered = redelivered

    async def results(self) -> AsyncIterator[PixelResult]:
        while self.redelivered:
            yield self.redelivered.pop(0)
        async for result in super().results():
            yield result


def _result(reco: RecoPixelVariation) -> PixelResult:
    return PixelResult(reco_pixel_variation=reco, runtime=0.0)


async def test_resumed_scan_takes_over_redelivered_results_and_completes() -> None:
    fresh, _ = await scan(NSIDES, 1.0)
    stored = build_result(fresh.nsides_dict, META, complete=False)
    # the crash: one nside-2 pixel and three nside-4 pixels were collected but not yet persisted
    lost2 = stored["nside-2"]["data"].pop(0)[0]
    lost4 = [row[0] for row in stored["nside-4"]["data"][:3]]
    del stored["nside-4"]["data"][:3]
    redelivered = [
        _result(RecoPixelVariation(nside=4, pixel=p, posvar=0, llh=fresh.nsides_dict[4][p].llh,
                                   e_in=0, e_tot=0, x=0, y=0, z=0, t=0, energy=0))
        for p in lost4
    ]  # fmt: skip

    progression = NSideProgression.parse(NSIDES)
    state = ScanState(progression, 1, 1.0)
    assert state.resume(stored) == fresh.n_finished_pixels - 4
    transport = RestartedTransport(redelivered)
    reporter = Reporter([], ProgressTracker(progression, 1, 1.0, 60), META, {}, 60, 120)
    make_tasks = task_factory("test", "dummy", "", state, Seed(x=0, y=0, z=0, t=0))
    await run_scan(state, transport, reporter, make_tasks, shuffle_seed="fixed")

    assert (2, lost2, 0) in transport.sent  # missing from the stored result: sent again
    assert not {(4, p, 0) for p in lost4} & set(transport.sent)  # redelivered: taken over
    for nside, pixels in fresh.nsides_dict.items():
        assert set(pixels) <= set(state.nsides_dict[nside]), nside


async def test_resumed_scan_that_only_resends_completes() -> None:
    """The stored result lacks one pixel of a coarser nside and nothing is redelivered: completing that
    pixel must cross the nside's threshold again (the bins read at resume counted only the stored pixels
    as sent, so the nside looked complete and the scan waited for ever)."""
    fresh, _ = await scan(NSIDES, 1.0)
    stored = build_result(fresh.nsides_dict, META, complete=False)
    lost2 = stored["nside-2"]["data"].pop(0)[0]

    progression = NSideProgression.parse(NSIDES)
    state = ScanState(progression, 1, 1.0)
    state.resume(stored)
    transport = RestartedTransport([])
    reporter = Reporter([], ProgressTracker(progression, 1, 1.0, 60), META, {}, 60, 120)
    make_tasks = task_factory("test", "dummy", "", state, Seed(x=0, y=0, z=0, t=0))
    await run_scan(state, transport, reporter, make_tasks, shuffle_seed="fixed")

    assert transport.sent[0] == (2, lost2, 0)
    for nside, pixels in fresh.nsides_dict.items():
        assert set(pixels) <= set(state.nsides_dict[nside]), nside


class NoisyTransport(InMemoryTransport):
    """A likelihood of noise (a seeded random number per pixel, as the `dummy` reconstruction's):
    the global minimum jumps between nsides and moves as results arrive, in the order given by
    ``order_seed``. ``snapshots`` keeps the collected pixels after every result."""

    def __init__(self, noise_seed: int, order_seed: str, state: ScanState | None = None) -> None:
        super().__init__()
        self.noise_seed = noise_seed
        self.order = random.Random(order_seed)
        self.state = state
        self.snapshots: list[dict[int, dict[int, float]]] = []

    async def results(self) -> AsyncIterator[PixelResult]:
        while self.pending:
            t = self.pending[self.order.randrange(len(self.pending))]
            self.pending.remove(t)
            yield _result(noise(t.nside, t.pixel, self.noise_seed))
            if self.state is not None:
                self.snapshots.append(
                    {
                        n: {p: r.llh for p, r in px.items()}
                        for n, px in self.state.nsides_dict.items()
                    }
                )


def noise(nside: int, pixel: int, seed: int) -> RecoPixelVariation:
    llh = random.Random(f"{seed}:{nside}:{pixel}").random()
    return RecoPixelVariation(nside=nside, pixel=pixel, posvar=0, llh=llh,
                              e_in=0, e_tot=0, x=0, y=0, z=0, t=0, energy=0)  # fmt: skip


async def noisy_scan(
    noise_seed: int,
    order_seed: str,
    stored: dict[str, Any] | None = None,
    keep_snapshots: bool = False,
) -> tuple[ScanState, NoisyTransport]:
    progression = NSideProgression.parse(NSIDES)
    state = ScanState(progression, 1, 1.0)
    if stored is not None:
        state.resume(stored)
    transport = NoisyTransport(noise_seed, order_seed, state if keep_snapshots else None)
    reporter = Reporter([], ProgressTracker(progression, 1, 1.0, 60), META, {}, 60, 120)
    make_tasks = task_factory("test", "dummy", "", state, Seed(x=0, y=0, z=0, t=0))
    await run_scan(state, transport, reporter, make_tasks, shuffle_seed=order_seed)
    return state, transport


def pixels_of(state: ScanState) -> set[tuple[int, int]]:
    return {(n, p) for n, pixels in state.nsides_dict.items() for p in pixels}


@pytest.mark.parametrize("noise_seed", [0, 1, 2])
async def test_the_pixels_of_a_scan_do_not_depend_on_the_order_results_arrive_in(
    noise_seed: int,
) -> None:
    """Without predictive scanning the refinement waits for whole batches: twenty arrival orders of
    a noisy likelihood reconstruct one set of pixels (deciding at the first nside completed instead,
    with results of the next still arriving, gave a second set for some orders)."""
    reference, _ = await noisy_scan(noise_seed, "order-0")
    for k in range(1, 20):
        state, transport = await noisy_scan(noise_seed, f"order-{k}")
        assert pixels_of(state) == pixels_of(reference), f"order-{k}"
        assert len(transport.sent) == len(set(transport.sent)) == state.n_finished_pixels


@pytest.mark.parametrize("noise_seed", [0, 1, 2])
async def test_a_scan_resumed_from_any_stored_result_reconstructs_the_same_pixels(
    noise_seed: int,
) -> None:
    """A server restarted at any moment (its predecessor's results up to then stored, nothing
    redelivered) completes the scan with exactly the pixels of the scan that never stopped: the
    resumed server chooses each refinement from the batches before it, not from results its
    predecessor collected later (which moved the global minimum and added pixels)."""
    fresh, transport = await noisy_scan(noise_seed, "order-1", keep_snapshots=True)
    progression = NSideProgression.parse(NSIDES)
    snapshots = transport.snapshots[:: max(1, len(transport.snapshots) // 25)]
    assert len(snapshots) >= 20
    for i, snapshot in enumerate(snapshots):
        nsides_dict = {
            n: {p: fresh.nsides_dict[n][p] for p in pixels} for n, pixels in snapshot.items()
        }
        stored = build_result(nsides_dict, META, complete=False)
        resumed, _ = await noisy_scan(noise_seed, f"resumed-{i}", stored=stored)
        assert pixels_of(resumed) == pixels_of(fresh), f"resumed after {len(stored)} nsides"
        assert resumed.progression == progression


class AfterACrash(NoisyTransport):
    """The broker after a server died between two batches: first the results its predecessor had
    collected but not stored (redelivered), then the answers to what is published, and last the
    results of tasks the predecessor had sent that were still being reconstructed."""

    def __init__(self, noise_seed: int, redelivered: list[PixelResult], later: list[PixelResult]):
        super().__init__(noise_seed, "after-a-crash")
        self.redelivered, self.later = redelivered, later

    async def results(self) -> AsyncIterator[PixelResult]:
        while self.redelivered:
            yield self.redelivered.pop(0)
        while self.pending:
            t = self.pending.popleft()
            yield _result(noise(t.nside, t.pixel, self.noise_seed))
            if not self.pending:
                while self.later:  # then what the predecessor's workers were still busy with
                    yield self.later.pop(0)


@pytest.mark.parametrize("noise_seed", [0, 1, 2])
async def test_a_server_that_died_after_sending_the_next_batch_resumes_to_the_same_pixels(
    noise_seed: int,
) -> None:
    """The predecessor collected the first two batches, sent the third and died before storing
    three results of the second and any of the third. The broker redelivers what it had collected
    (half of the third batch, then the three) and its workers finish the rest of the third later.
    The restarted server sends the three again and waits for the whole third batch before choosing
    the fourth: choosing when its own pixels were back, with half of the third batch known, moved
    the global minimum and added pixels the scan never reconstructs."""
    fresh, transport = await noisy_scan(noise_seed, "order-1")
    batches, start = [], 0
    for size in (sum(r.values()) for r in transport.rounds):
        batches.append([(n, p) for n, p, _ in transport.sent[start : start + size]])
        start += size
    assert len(batches) >= 3
    unstored, third = batches[1][:3], batches[2]
    stored_pixels = {n: {} for n, _ in batches[0] + batches[1]}
    for n, p in batches[0] + batches[1][3:]:
        stored_pixels[n][p] = fresh.nsides_dict[n][p]
    stored = build_result(stored_pixels, META, complete=False)

    def results_of(pixels: list[tuple[int, int]]) -> list[PixelResult]:
        return [_result(noise(n, p, noise_seed)) for n, p in pixels]

    half = len(third) // 2
    progression = NSideProgression.parse(NSIDES)
    state = ScanState(progression, 1, 1.0)
    state.resume(stored)
    restarted = AfterACrash(
        noise_seed, results_of(third[:half] + unstored), results_of(third[half:])
    )
    reporter = Reporter([], ProgressTracker(progression, 1, 1.0, 60), META, {}, 60, 120)
    make_tasks = task_factory("test", "dummy", "", state, Seed(x=0, y=0, z=0, t=0))
    await run_scan(state, restarted, reporter, make_tasks, shuffle_seed="restarted")
    assert pixels_of(state) == pixels_of(fresh)
    assert restarted.rounds[0] == Counter(n for n, _ in unstored)  # sent again: the unstored ones
