"""The send/collect loop (reference §2.4): publish pixels, collect results, refine when a threshold is
crossed, report progress and results, until no new pixel is left and every sent one came back."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

from skyscan_contract.messages import (
    EventMetadataBody,
    ManifestPatchBody,
    PixelResult,
    PixelTask,
    ProgressBody,
    Seed,
)

from .. import healpix
from ..events import EventMetadata
from ..pixels import NSidesDict, pixel_directions, positions_by_nside
from .deadletters import DeadLetterTally
from .progress import ProgressTracker
from .result import RowCache, build_result
from .sinks import NotDelivered, ReportSink
from .state import DuplicateResult, ScanState, UnknownResult

LOG = logging.getLogger(__name__)


class ClientsTimedOut(RuntimeError):
    """No result arrived for `mq_timeout_from_clients` seconds: the workers are gone."""


class ScanAborted(RuntimeError):
    """The scan was deleted in SkyDriver (the kill switch)."""


#: after a partial result that did not reach its sinks, the next persist is tried no sooner than this
PERSIST_RETRY_S = 5.0


class Transport(Protocol):
    async def publish(self, tasks: list[PixelTask]) -> None: ...

    def results(self) -> AsyncIterator[PixelResult | None]:
        """Results until the caller stops iterating; None asks the caller to persist what it collected
        (`Reporter.persist`); raises ClientsTimedOut after the idle limit."""
        ...


def parent_seeds(
    nsides_dict: NSidesDict, min_nside: int, pixels: Sequence[tuple[int, int]], fallback: Seed
) -> list[Seed]:
    """The seed of each (nside, pixel): its ancestor's fit at the nearest coarser scanned nside that has the
    ancestor (the fallback if that fit failed, or if no coarser nside has it)."""
    seeds = [fallback] * len(pixels)
    for nside, pending in positions_by_nside(pixels).items():
        coarse = nside // 2
        while pending and coarse >= min_nside:
            known = nsides_dict.get(coarse)
            if known:
                ancestors = healpix.parent(nside, [pixels[i][1] for i in pending], coarse)
                unresolved = []
                for i, ancestor_pixel in zip(pending, ancestors.tolist(), strict=True):
                    ancestor = known.get(ancestor_pixel)
                    if ancestor is None:
                        unresolved.append(i)
                    elif not math.isnan(ancestor.llh):
                        seeds[i] = Seed(
                            x=ancestor.x,
                            y=ancestor.y,
                            z=ancestor.z,
                            t=ancestor.t,
                            energy=ancestor.energy,
                        )
                pending = unresolved
            coarse //= 2
    return seeds


class Reporter:
    """Decides when to report (the original's rules) and sends to every sink. Once a result reached every
    sink, `acknowledge` (the transport's) acknowledges the results it contains."""

    def __init__(
        self,
        sinks: list[ReportSink],
        tracker: ProgressTracker,
        meta: EventMetadata,
        scan_metadata: dict[str, object],
        progress_interval_s: float,
        result_interval_s: float,
    ) -> None:
        self.sinks = sinks
        self.tracker = tracker
        self.meta = meta
        self.scan_metadata = scan_metadata
        self.progress_interval_s = progress_interval_s
        self.result_interval_s = result_interval_s
        self._last_progress = 0.0
        self._last_result = 0.0
        self._nsides_seen: set[int] = set()
        self._persist_retry_at = 0.0
        self._rows = RowCache()
        self.acknowledge: Callable[[], Awaitable[None]] | None = None
        self.dead_letters: DeadLetterTally | None = None

    async def send_progress(self, state: ScanState, summary: str, *, urgent: bool = False) -> None:
        progress = self.tracker.report(state, summary)
        progress["failed_pixels"] = [
            {"nside": n, "pixel": p, "attempts": a, "error": e}
            for (n, p), (a, e) in state.failed.items()
        ]
        if self.dead_letters is not None:
            progress["dead_letters"] = self.dead_letters.report()
        body = ManifestPatchBody(
            progress=ProgressBody.model_validate(progress),
            event_metadata=EventMetadataBody.model_validate(self.meta.to_dict()),
            scan_metadata=self.scan_metadata,
        )
        for sink in self.sinks:
            await sink.progress(body, urgent=urgent)
        self._last_progress = time.monotonic()

    async def send_result(self, state: ScanState, *, final: bool) -> bool:
        """Send the result to every sink; once all have it, acknowledge what it contains. Returns
        whether it was delivered (a partial result may not be: NotDelivered; it is tried again later)."""
        result = build_result(state.nsides_dict, self.meta, complete=final, cache=self._rows)
        if result:
            try:
                for sink in self.sinks:
                    await sink.result(result, is_final=final, urgent=final)
            except NotDelivered as e:
                LOG.warning("partial result not delivered, its results stay unacknowledged: %s", e)
                self._persist_retry_at = time.monotonic() + PERSIST_RETRY_S
                return False
            self._last_result = time.monotonic()
        if self.acknowledge is not None:
            await self.acknowledge()
        return True

    async def persist(self, state: ScanState) -> None:
        """A partial result now (the transport has enough unacknowledged results, or a quiet moment)."""
        if time.monotonic() >= self._persist_retry_at:
            await self.send_result(state, final=False)

    async def after_sent(self, state: ScanState, n_new: int) -> None:
        await self.send_progress(
            state,
            f"The Skymap Scanner has sent out {n_new} pixels and is waiting to receive recos.",
        )
        await self.send_result(state, final=False)

    async def after_received(self, state: ScanState, nside: int) -> None:
        now = time.monotonic()
        if nside not in self._nsides_seen:
            self._nsides_seen.add(nside)
            await self.send_progress(state, "The Skymap Scanner is busy scanning pixels.")
            await self.send_result(state, final=False)
            return
        if now - self._last_progress > self.progress_interval_s:
            await self.send_progress(state, "The Skymap Scanner is busy scanning pixels.")
        if now - self._last_result > self.result_interval_s:
            await self.send_result(state, final=False)


async def run_scan(
    state: ScanState,
    transport: Transport,
    reporter: Reporter,
    make_tasks: Callable[[Sequence[tuple[int, int]]], list[PixelTask]],
    kill_switch: Callable[[], Awaitable[None]] | None = None,
    shuffle_seed: str = "",
) -> None:
    """Drive one scan to completion (raises ClientsTimedOut / ScanAborted)."""
    rng = random.Random(shuffle_seed)
    last_thresholded: int | None = None
    resuming = bool(state.nsides_dict)  # continue where the known pixels leave the refinement
    while True:
        if resuming or state.refines_on_whole_batches:
            new = state.next_batch()
        else:
            new = state.next_pixels(last_thresholded)
        resuming = False
        if not new and state.has_collected_all_sent():
            break
        if new:
            rng.shuffle(new)
            state.register_sent(new)
            tasks = make_tasks(new)
            LOG.info("sending %d pixels (%d messages)", len(new), len(tasks))
            await transport.publish(tasks)
            await reporter.after_sent(state, len(new))
        last_thresholded = None
        async for result in transport.results():
            if result is None:
                await reporter.persist(state)
                continue
            try:
                crossed = state.collect(result)
            except DuplicateResult:
                LOG.info("ignored a duplicate result %s", result.reco_pixel_variation.id_tuple)
                continue
            except UnknownResult as e:
                LOG.warning("ignored a result: %s", e)
                continue
            reco = result.reco_pixel_variation
            reporter.tracker.record(reco.nside, result.runtime, result.sent_at)
            await reporter.after_received(state, reco.nside)
            if kill_switch is not None:
                await kill_switch()
            if crossed is not None:
                last_thresholded = crossed
                break
        if last_thresholded is None:
            raise ClientsTimedOut("no result arrived in time: MQ-sub must have timed out")
    reporter.tracker.end = time.time()
    LOG.info("scan done: %d pixels, %d failed", state.n_finished_pixels, len(state.failed))


def task_factory(
    scan_id: str,
    reco_algo: str,
    realtime_format_version: str,
    state: ScanState,
    fallback: Seed,
) -> Callable[[Sequence[tuple[int, int]]], list[PixelTask]]:
    """Makes the messages for a batch of (nside, pixel): one per position variation, in the batch's order."""

    def make(pixels: Sequence[tuple[int, int]]) -> list[PixelTask]:
        seeds = parent_seeds(state.nsides_dict, state.progression.min_nside, pixels, fallback)
        sent_at = time.time()
        return [
            PixelTask(
                scan_id=scan_id,
                reco_algo=reco_algo,
                realtime_format_version=realtime_format_version,
                nside=nside,
                pixel=pixel,
                posvar=posvar,
                ra=ra,
                dec=dec,
                seed=seed,
                sent_at=sent_at,
            )
            for (nside, pixel), (ra, dec), seed in zip(
                pixels, pixel_directions(pixels), seeds, strict=True
            )
            for posvar in range(state.n_posvar)
        ]

    return make
