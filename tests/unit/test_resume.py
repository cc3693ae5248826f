"""A restarted scanner server resumes from the stored partial result while the broker redelivers the
results its predecessor had not acknowledged (ack-after-persist): it takes those over instead of
ignoring them, re-sends only what is missing, and completes the scan (the real send/collect loop, with
an in-process transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
