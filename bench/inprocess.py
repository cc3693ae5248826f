"""The real scan loop with the reconstruction called in-process (no broker), for the benchmarks.

An in-process transport hands each published pixel straight to the reconstruction (built from the same JSON
startup data a worker reads; tasks and results are round-tripped through their JSON messages) and feeds the
answers back to the loop in publication order, as one worker would. The broker/worker overhead is measured by
``bench/overhead.py`` and the full scan through RabbitMQ by ``bench/reco_speed.py``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from skymap_scanner.recos import Reconstruction, StartupData, get_reco
from skymap_scanner.server.progress import ProgressTracker
from skymap_scanner.server.result import build_result
from skymap_scanner.server.scan import ClientsTimedOut, Reporter, run_scan, task_factory
from skymap_scanner.server.sinks import ReportSink
from skymap_scanner.server.state import ScanState
from skymap_scanner.startup import check_event_for_reco, make_startup_data
from skyscan_contract.messages import PixelResult, PixelTask, RecoPixelVariation
from skyscan_contract.nsides import NSideProgression


class InProcessTransport:
    """The `server.scan.Transport` of a single in-process worker: every published task is answered, in
    publication order, by calling the reconstruction directly (tasks and results go through their JSON
    messages, as through the broker). A raising reconstruction gives a failed result (NaN), as a worker
    reports a pixel that failed for good."""

    def __init__(self, reco: Reconstruction) -> None:
        self.reco = reco
        self.pending: deque[PixelTask] = deque()
        self.n_reconstructed = 0

    async def publish(self, tasks: list[PixelTask]) -> None:
        self.pending.extend(PixelTask.model_validate_json(t.model_dump_json()) for t in tasks)

    async def results(self) -> AsyncIterator[PixelResult]:
        while self.pending:
            task = self.pending.popleft()
            start = time.perf_counter()
            try:
                reco = self.reco.reconstruct(task)
                result = PixelResult(
                    reco_pixel_variation=reco,
                    runtime=time.perf_counter() - start,
                    sent_at=task.sent_at,
                    worker="in-process",
                )
            except Exception as e:
                nan = math.nan
                reco = RecoPixelVariation(
                    nside=task.nside,
                    pixel=task.pixel,
                    posvar=task.posvar,
                    **dict.fromkeys(("llh", "e_in", "e_tot", "x", "y", "z", "t", "energy"), nan),
                )
                result = PixelResult(
                    reco_pixel_variation=reco,
                    runtime=time.perf_counter() - start,
                    failed=True,
                    error=f"{type(e).__name__}: {e}",
                    worker="in-process",
                )
            self.n_reconstructed += 1
            yield PixelResult.model_validate_json(result.model_dump_json())
        raise ClientsTimedOut("the in-process transport has no task left")


def scan_in_process(
    event: dict[str, Any],
    reco_algo: str,
    nsides: str,
    *,
    scan_id: str,
    sinks: Sequence[ReportSink] = (),
    reco_config: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Reconstruction, InProcessTransport]:
    """Scan ``event`` like `server.main.run_server` does, minus the broker: same startup data, state,
    reporter (``sinks`` get every progress report and result) and send/collect loop. Returns the final
    SkyScanResult dict, the reconstruction object and the transport."""
    meta = check_event_for_reco(event, reco_algo)
    startup = make_startup_data(scan_id, reco_algo, event)
    if reco_config is not None:
        startup = startup.model_copy(update={"reco_config": reco_config})
    worker_startup = StartupData.model_validate_json(startup.model_dump_json())
    reco_cls = get_reco(reco_algo)
    reco = reco_cls(worker_startup)
    progression = NSideProgression.parse(nsides)
    state = ScanState(progression, reco_cls.n_posvar, 1.0)
    tracker = ProgressTracker(progression, reco_cls.n_posvar, 1.0, 1e9)
    scan_metadata: dict[str, object] = {
        "scan_id": scan_id,
        "nside_progression": progression.to_json_dict(),
        "position_variations": reco_cls.n_posvar,
    }
    reporter = Reporter(list(sinks), tracker, meta, scan_metadata, 1e9, 1e9)
    transport = InProcessTransport(reco)
    make_tasks = task_factory(
        scan_id, reco_algo, startup.realtime_format_version, state, startup.fallback_seed
    )

    async def drive() -> None:
        await reporter.send_progress(state, "The Skymap Scanner has started up.")
        await run_scan(state, transport, reporter, make_tasks, shuffle_seed=scan_id)
        await reporter.send_result(state, final=True)
        await reporter.send_progress(state, "The Skymap Scanner has finished.", urgent=True)

    asyncio.run(drive())
    return build_result(state.nsides_dict, meta, complete=True), reco, transport
