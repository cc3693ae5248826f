"""The scanner server's bookkeeping at the value level (`skymap_scanner/server/state.py`, `scan.py`,
`progress.py`): when the predictive-scanning threshold makes the server refine, that a duplicate result (a
redelivered message) is counted once, and how a failed pixel is reported. Pure logic: the real send/collect loop
driven by an in-process transport, no broker."""

from __future__ import annotations

import contextlib
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from skymap_scanner.events import EventMetadata
from skymap_scanner.server.progress import ProgressTracker
from skymap_scanner.server.scan import ClientsTimedOut, Reporter, run_scan, task_factory
from skymap_scanner.server.state import DuplicateResult, ScanState
from skyscan_contract.messages import (
    ManifestPatchBody,
    PixelResult,
    PixelTask,
    RecoPixelVariation,
    Seed,
)
from skyscan_contract.nsides import NSideProgression

META = EventMetadata(
    run_id=136662, event_id=35405932, event_type="neutrino", mjd=59723.3, is_real_event=True
)


def llh_of(nside: int, pixel: int) -> float:
    """A likelihood with one clear minimum (pixel 0 of every nside)."""
    return float(pixel) + 1.0 / nside


def result(nside: int, pixel: int, llh: float, posvar: int = 0, **fields: Any) -> PixelResult:
    reco = RecoPixelVariation(
        nside=nside,
        pixel=pixel,
        posvar=posvar,
        llh=llh,
        e_in=0,
        e_tot=0,
        x=0,
        y=0,
        z=0,
        t=0,
        energy=0,
    )
    return PixelResult(reco_pixel_variation=reco, runtime=0.01, **fields)


class RecordingSink:
    """A report sink that keeps every progress body and result it is given."""

    def __init__(self) -> None:
        self.progress_bodies: list[dict[str, Any]] = []
        self.results: list[tuple[dict[str, Any], bool]] = []

    async def progress(self, body: ManifestPatchBody, *, urgent: bool) -> None:
        self.progress_bodies.append(body.model_dump())

    async def result(self, result: dict[str, Any], *, is_final: bool, urgent: bool) -> None:
        self.results.append((result, is_final))


class Transport:
    """Answers published tasks in order; `answer(task)` gives the results delivered for one task (more than
    one: redeliveries). Records, at each publication, how many results had been delivered before it."""

    def __init__(self, answer: Callable[[PixelTask], list[PixelResult]] | None = None) -> None:
        self.answer = answer or (lambda t: [result(t.nside, t.pixel, llh_of(t.nside, t.pixel))])
        self.pending: deque[PixelResult] = deque()
        self.delivered = 0
        #: (results delivered before this publication, {nside: tasks published})
        self.publications: list[tuple[int, dict[int, int]]] = []

    async def publish(self, tasks: list[PixelTask]) -> None:
        per_nside: dict[int, int] = {}
        for t in tasks:
            per_nside[t.nside] = per_nside.get(t.nside, 0) + 1
            self.pending.extend(self.answer(t))
        self.publications.append((self.delivered, per_nside))

    async def results(self) -> AsyncIterator[PixelResult]:
        while self.pending:
            self.delivered += 1
            yield self.pending.popleft()
        raise ClientsTimedOut("nothing left")


async def scan(
    nsides: str, threshold: float, transport: Transport, n_posvar: int = 1
) -> tuple[ScanState, Reporter, RecordingSink]:
    progression = NSideProgression.parse(nsides)
    state = ScanState(progression, n_posvar, threshold)
    sink = RecordingSink()
    reporter = Reporter(
        [sink], ProgressTracker(progression, n_posvar, threshold, 60), META, {}, 60, 120
    )
    make_tasks = task_factory("test", "dummy", "", state, Seed(x=0, y=0, z=0, t=0))
    await run_scan(state, transport, reporter, make_tasks, shuffle_seed="fixed")
    return state, reporter, sink


# -- the predictive-scanning threshold ---------------------------------------------------------


@pytest.mark.parametrize(
    "threshold, crossings",
    [
        # 12 pixels at nside 1: 8/12 = 0.67 is the first fraction >= 0.65, then every base bin above it
        (0.65, [8, 9, 10, 11, 12]),
        (1.0, [12]),
    ],
)
def test_the_threshold_decides_after_which_result_the_first_nside_is_refined(
    threshold: float, crossings: list[int]
) -> None:
    state = ScanState(NSideProgression.parse("1:0 2:12"), 1, threshold)
    first = state.next_pixels(None)
    assert first == [(1, p) for p in range(12)]
    state.register_sent(first)
    crossed_at: list[int] = []
    for n, (nside, pixel) in enumerate(first, start=1):
        if state.collect(result(nside, pixel, llh_of(nside, pixel))) == 1:
            crossed_at.append(n)
        if n == 8:
            # what the server would send now: refinement pixels, or nothing before the threshold
            refinement = state.next_pixels(1 if threshold <= 8 / 12 else None)
    assert crossed_at == crossings
    if threshold <= 8 / 12:
        assert refinement and {n for n, _ in refinement} == {2}
    else:
        assert refinement == []  # the whole first nside was sent already: nothing new yet


@pytest.mark.parametrize("threshold, results_before_refining", [(0.65, 8), (1.0, 12)])
async def test_the_threshold_decides_when_the_next_nside_is_sent(
    threshold: float, results_before_refining: int
) -> None:
    transport = Transport()
    state, _, _ = await scan("1:0 2:12 4:12", threshold, transport)
    (before_first, first), (before_second, second), *_ = transport.publications
    assert (before_first, first) == (0, {1: 12})
    assert set(second) == {2}
    assert before_second == results_before_refining
    assert state.predictive_scanning_threshold == threshold


# -- duplicates --------------------------------------------------------------------------------


def tallies(sink: RecordingSink) -> dict[str, Any]:
    last: dict[str, Any] = sink.progress_bodies[-1]["progress"]["tallies"]
    return last


async def test_a_redelivered_result_is_counted_once_and_the_first_kept() -> None:
    def twice(t: PixelTask) -> list[PixelResult]:
        # a worker killed before its ack: the pixel is redelivered, reconstructed again (another value)
        llh = llh_of(t.nside, t.pixel)
        return [result(t.nside, t.pixel, llh), result(t.nside, t.pixel, llh + 100.0)]

    transport = Transport(twice)
    state, reporter, sink = await scan("1:0 2:12 4:12", 1.0, transport)
    await reporter.send_progress(state, "done")
    n_unique = state.n_finished_pixels
    # every duplicate was delivered (the last one may still wait when the scan ends)
    assert transport.delivered + len(transport.pending) == 2 * n_unique
    assert len(transport.pending) <= 1
    recorded = len(reporter.tracker.recos)  # what the rates and the timeline count
    assert recorded == n_unique, f"{recorded} recos recorded for {n_unique} pixels"
    counts = tallies(sink)
    for nside, pixels in state.nsides_dict.items():
        block = counts["nsides"][str(nside)]
        assert block["recos"]["done"] == block["recos"]["generated"] == len(pixels)
        assert block["pixels"]["done"] == block["pixels"]["generated"] == len(pixels)
        assert all(reco.llh == llh_of(nside, p) for p, reco in pixels.items())  # the first
    assert counts["overall"]["recos"]["done"] == n_unique
    assert counts["overall"]["pixels"]["done"] == n_unique


def test_a_duplicate_variation_does_not_finish_its_pixel() -> None:
    """With two position variations, a pixel is done when both came back: the same variation twice is
    one reco, and the pixel stays unfinished."""
    progression = NSideProgression.parse("1:0 2:12")
    state = ScanState(progression, 2, 1.0)
    state.register_sent(state.next_pixels(None))
    tracker = ProgressTracker(progression, 2, 1.0, 60)
    for delivered in (result(1, 4, 1.0, posvar=0), result(1, 4, 2.0, posvar=0)):
        with contextlib.suppress(DuplicateResult):  # the loop ignores a duplicate the same way
            state.collect(delivered)
    counts = tracker.report(state, "")["tallies"]["nsides"]["1"]
    assert counts["recos"]["done"] == 1
    assert counts["pixels"]["done"] == 0
    assert 4 not in state.nsides_dict.get(1, {})
    state.collect(result(1, 4, 0.5, posvar=1))
    counts = tracker.report(state, "")["tallies"]["nsides"]["1"]
    assert (counts["recos"]["done"], counts["pixels"]["done"]) == (2, 1)
    assert state.nsides_dict[1][4].llh == 0.5  # the better of the two variations


# -- a failed pixel ----------------------------------------------------------------------------


async def test_a_failed_pixel_is_listed_with_its_attempts_and_its_result_row_is_nan() -> None:
    def fail_pixel_3(t: PixelTask) -> list[PixelResult]:
        if (t.nside, t.pixel) == (1, 3):
            return [result(1, 3, math.nan, failed=True, attempts=3, error="KeyError: boom")]
        return [result(t.nside, t.pixel, llh_of(t.nside, t.pixel))]

    state, reporter, sink = await scan("1:0 2:12", 1.0, Transport(fail_pixel_3))
    await reporter.send_progress(state, "done")
    await reporter.send_result(state, final=True)
    assert sink.progress_bodies[-1]["progress"]["failed_pixels"] == [
        {"nside": 1, "pixel": 3, "attempts": 3, "error": "KeyError: boom"}
    ]
    final, is_final = sink.results[-1]
    assert is_final
    rows = {row[0]: row for row in final["nside-1"]["data"]}
    assert rows[3][1] == "<skyreader.nan>"
    assert all(isinstance(rows[p][1], float) for p in rows if p != 3)


def test_time_left_is_a_range_from_the_measured_rate_never_from_one_reco() -> None:
    from skymap_scanner.server.progress import MIN_RECOS_FOR_ETA

    tracker = ProgressTracker(NSideProgression.parse("1:0"), 1, 1.0, 10, start=1000.0)
    tracker.recos = [(1, 1.0, 1.0, 1500.0)]  # one reco after a long start-up
    assert tracker.time_left_range(100, 400) is None
    # then one reco every 0.5 s: the start-up is not in the rate
    tracker.recos += [(1, 0.5, 0.5, 1500.0 + 0.5 * i) for i in range(1, 101)]
    low, high = tracker.time_left_range(100, 400) or (0.0, 0.0)
    assert low < 50.0 < high  # 100 recos at 2 per second
    assert high - low < 25.0  # 100 recos measured: a range of a few tens of percent
    few = ProgressTracker(NSideProgression.parse("1:0"), 1, 1.0, 10, start=1000.0)
    few.recos = [(1, 0.5, 0.5, 1500.0 + 0.5 * i) for i in range(MIN_RECOS_FOR_ETA + 1)]
    few_low, few_high = few.time_left_range(100, 400) or (0.0, 0.0)
    assert few_high - few_low > high - low  # less evidence, a wider range


# -- values the state keeps (survivors of a mutmut run, tests/mutants/MUTMUT.md) ---------------------------


def test_the_thresholds_per_nside_and_their_bounds() -> None:
    from skymap_scanner.server.state import thresholds_for

    progression = NSideProgression.parse("1:0 2:12 4:12")
    assert thresholds_for(progression, 0.65) == {
        1: [0.65, 0.7, 0.8, 0.9, 1.0],
        2: [0.65, 0.7, 0.8, 0.9, 1.0],
        4: [1.0],
    }
    assert thresholds_for(progression, 0.7)[1] == [0.7, 0.8, 0.9, 1.0]  # the base bin once
    assert thresholds_for(progression, 1.0)[1] == [1.0]
    for bad in (0.1, 1.5):
        with pytest.raises(ValueError) as info:
            thresholds_for(progression, bad)
        assert str(info.value) == f"predictive_scanning_threshold must be in (0.1, 1.0], got {bad}"


def _fields(reco: Any) -> tuple[Any, ...]:
    """A pixel's values, NaN as None (NaN is never equal to itself)."""
    values = (
        reco.nside,
        reco.pixel,
        reco.llh,
        reco.e_in,
        reco.e_tot,
        reco.x,
        reco.y,
        reco.z,
        reco.t,
    )
    return (*(None if isinstance(v, float) and math.isnan(v) else v for v in values), reco.failed)


def test_a_resumed_state_has_every_stored_value_of_each_pixel() -> None:
    from skymap_scanner.server.result import build_result

    progression = NSideProgression.parse("1:0 2:12")
    state = ScanState(progression, 1, 1.0)
    state.register_sent(state.next_pixels(None))
    for pixel in range(12):
        reco = RecoPixelVariation(
            nside=1,
            pixel=pixel,
            posvar=0,
            llh=math.nan if pixel == 5 else 10.0 + pixel,
            e_in=100.0 + pixel,
            e_tot=200.0 + pixel,
            x=1.0 + pixel,
            y=-2.0 - pixel,
            z=3.5 * pixel,
            t=1e4 + pixel,
            energy=0.0,
        )
        failed = pixel == 5
        state.collect(
            PixelResult(
                reco_pixel_variation=reco,
                runtime=0.0,
                failed=failed,
                attempts=3 if failed else 1,
                error="boom" if failed else None,
            )
        )
    stored = build_result(state.nsides_dict, META, complete=False)
    resumed = ScanState(progression, 1, 1.0)
    assert resumed.resume(stored) == 12
    assert [_fields(r) for r in resumed.nsides_dict[1].values()] == [
        _fields(r) for r in state.nsides_dict[1].values()
    ]
    assert resumed.nsides_dict[1][5].failed and not resumed.nsides_dict[1][4].failed
    assert resumed.failed == {(1, 5): (0, "failed before the server restarted")}


def test_a_resumed_state_takes_over_only_results_it_could_have_sent() -> None:
    """After a restart, a result of a task the previous server sent is taken over if its nside is in the
    progression and its pixel and position variation exist there; anything else is unknown."""
    from skymap_scanner.server.state import UnknownResult

    progression = NSideProgression.parse("1:0 2:12")
    fresh = ScanState(progression, 2, 1.0)
    with pytest.raises(UnknownResult):  # not resumed: never sent means unknown
        fresh.collect(result(2, 0, 1.0))
    state = ScanState(progression, 2, 1.0)
    state.resumed = True
    for nside, pixel, posvar in ((2, 0, 0), (2, 47, 1), (1, 11, 0)):  # first and last pixels
        state.collect(result(nside, pixel, 1.0, posvar=posvar))
    for nside, pixel, posvar in ((2, 48, 0), (4, 0, 0), (2, 3, 2), (2, -1, 0), (1, 12, 0)):
        with pytest.raises(UnknownResult):
            state.collect(result(nside, pixel, 1.0, posvar=posvar))


def _variation(pixel: int, posvar: int, llh: float, x: float = 0.0, **fields: Any) -> PixelResult:
    reco = RecoPixelVariation(
        nside=1, pixel=pixel, posvar=posvar, llh=llh, e_in=0, e_tot=0, x=x, y=0, z=0, t=0, energy=0
    )
    return PixelResult(reco_pixel_variation=reco, runtime=0.0, **fields)


def test_with_position_variations_counts_fractions_and_the_best_variation() -> None:
    """Three variations per pixel: sent and done are counted in variations, the best variation is the
    smallest llh (the first of equal ones), and a variation index beyond the last is unknown."""
    from skymap_scanner.server.state import UnknownResult

    state = ScanState(NSideProgression.parse("1:0 2:12"), 3, 1.0)
    state.register_sent(state.next_pixels(None))
    assert state.n_sent_nside(1) == 36
    for pixel in range(6):
        for posvar, llh in enumerate((2.0, 0.5, 1.0)):
            state.collect(_variation(pixel, posvar, llh, x=float(posvar)))
    assert state.percent_done(1) == 0.5
    assert state.nsides_dict[1][0].llh == 0.5
    for posvar in range(3):
        state.collect(_variation(6, posvar, 1.0, x=float(posvar)))
    assert state.nsides_dict[1][6].x == 0.0  # a tie keeps the first
    with pytest.raises(UnknownResult, match=r"result for \(1, 7, 3\), which was never sent"):
        state.collect(_variation(7, 3, 1.0))
    with pytest.raises(DuplicateResult, match=r"already collected \(1, 0, 1\)"):
        state.collect(_variation(0, 1, 1.0))


def test_a_pixel_is_failed_only_when_reported_failed_and_no_variation_has_a_likelihood() -> None:
    state = ScanState(NSideProgression.parse("1:0 2:12"), 2, 1.0)
    state.register_sent(state.next_pixels(None))
    # one variation failed, the other has a likelihood: not failed
    state.collect(_variation(0, 0, math.nan, failed=True, attempts=3, error="boom"))
    state.collect(_variation(0, 1, 4.0))
    # NaN likelihoods without a failure report: not failed either (the reco answered)
    state.collect(_variation(1, 0, math.nan))
    state.collect(_variation(1, 1, math.nan))
    # both failed, the report without an error text
    state.collect(_variation(2, 0, math.nan, failed=True, attempts=3))
    state.collect(_variation(2, 1, math.nan, failed=True, attempts=3))
    assert [state.nsides_dict[1][p].failed for p in (0, 1, 2)] == [False, False, True]
    assert state.failed == {(1, 2): (3, "")}


def test_resuming_from_nothing_is_not_a_resumed_scan(caplog: pytest.LogCaptureFixture) -> None:
    from skymap_scanner.server.result import build_result

    progression = NSideProgression.parse("1:0 2:12")
    empty = ScanState(progression, 1, 1.0)
    assert empty.resume({}) == 0 and not empty.resumed
    one = ScanState(progression, 1, 1.0)
    one.register_sent([(1, 3)])
    one.collect(result(1, 3, 1.0))
    again = ScanState(progression, 1, 1.0)
    assert again.resume(build_result(one.nsides_dict, META, complete=False)) == 1 and again.resumed
    caplog.set_level(logging.INFO, logger="skymap_scanner.server.state")
    again.collect(result(2, 5, 1.0))  # redelivered from before the restart: taken over
    assert "took over (2, 5, 0), sent before the restart" in caplog.messages


def test_one_more_pixel_of_a_complete_nside_crosses_its_threshold_again() -> None:
    """A refinement may add a single pixel of an nside that was complete: sending it lowers that
    nside's completion, so its result crosses the threshold again and the server refines on
    (else no crossing comes, and the scan waits until its clients time out)."""
    state = ScanState(NSideProgression.parse("1:0 2:12"), 1, 1.0)
    state.register_sent(state.next_pixels(None))
    crossings = [state.collect(result(1, p, llh_of(1, p))) for p in range(12)]
    assert crossings[:-1] == [None] * 11 and crossings[-1] == 1
    state.register_sent([(2, 0), (2, 1)])
    state.collect(result(2, 0, 0.5))
    assert state.collect(result(2, 1, 0.5)) == 2
    state.register_sent([(2, 2)])  # one more pixel of the complete nside 2
    assert state.collect(result(2, 2, 0.5)) == 2
