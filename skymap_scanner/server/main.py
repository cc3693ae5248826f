"""The scanner server program: get the event, prepare it, run the scan, deliver the result."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyscan_contract.nsides import NSideProgression
from skyscan_contract.queues import (
    dead_letters_queue,
    from_clients_queue,
    scan_queues,
    to_clients_queue,
)
from skyscan_contract.settings import ServerSettings

from ..mq import delete_queues, open_consumer, open_publisher
from ..recos import StartupData, get_reco
from ..startup import check_event_for_reco, make_startup_data, write_startup_data
from .deadletters import DeadLetterTally
from .progress import ProgressTracker
from .result import result_filename
from .scan import ClientsTimedOut, Reporter, ScanAborted, run_scan, task_factory
from .sinks import FileSink, Refused, ReportSink, SkyDriverSink
from .state import ScanState
from .transport import MQTransport

LOG = logging.getLogger(__name__)


@dataclass
class ScanRequest:
    reco_algo: str
    progression: NSideProgression
    real_event: bool
    predictive_scanning_threshold: float = 1.0
    event_file: Path | None = None
    output_dir: Path | None = None
    client_startup_json: Path | None = None


class KillSwitch:
    """Checks SkyDriver's /status at most every `interval_s`; raises ScanAborted for a deleted scan."""

    def __init__(self, sink: SkyDriverSink | None, interval_s: float) -> None:
        self.sink = sink
        self.interval_s = interval_s
        self._last = time.monotonic()

    async def __call__(self) -> None:
        if self.sink is None or time.monotonic() - self._last < self.interval_s:
            return
        await self.check_now()

    async def check_now(self) -> None:
        if self.sink is None:
            return
        self._last = time.monotonic()
        status = await self.sink.get_status()
        if status and (status.get("is_deleted") or status.get("ewms_deactivated")):
            raise ScanAborted("the scan was deleted in SkyDriver; stopping")


async def run_server(
    settings: ServerSettings,
    request: ScanRequest,
    on_startup: Callable[[StartupData], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Run one scan; return a summary (pixels per nside, failed pixels). Without SkyDriver, results go to
    `request.output_dir`. `on_startup` runs once the workers' startup data exists."""
    scan_id = settings.skydriver_scan_id
    reco_cls = get_reco(request.reco_algo)
    async with AsyncExitStack() as stack:
        skydriver: SkyDriverSink | None = None
        if settings.skydriver_address:
            skydriver = SkyDriverSink(
                settings.skydriver_address, settings.skydriver_auth.get_secret_value(), scan_id
            )
            stack.push_async_callback(skydriver.aclose)
            status = await skydriver.get_status()
            if status and status.get("is_deleted"):
                raise ScanAborted(f"scan {scan_id} is deleted; not starting")
            event = await skydriver.get_event()
        elif request.event_file is not None:
            event = json.loads(request.event_file.read_text())
        else:
            raise ValueError("either SKYSCAN_SKYDRIVER_ADDRESS or an event file is needed")
        meta = check_event_for_reco(event, request.reco_algo)
        startup = make_startup_data(scan_id, request.reco_algo, event, reco_cls)
        if request.client_startup_json is not None:
            write_startup_data(startup, request.client_startup_json)

        state = ScanState(
            request.progression, reco_cls.n_posvar, request.predictive_scanning_threshold
        )
        if skydriver is not None:
            previous = await skydriver.get_result()
            if previous.get("is_final"):
                LOG.info("scan %s already has its final result; nothing to do", scan_id)
                return {"nsides": {}, "failed": [], "already_final": True}
            if previous.get("skyscan_result"):
                n = state.resume(previous["skyscan_result"])
                LOG.warning("resuming scan %s from %d pixels already in SkyDriver", scan_id, n)
        sinks: list[ReportSink] = []
        if skydriver is not None:
            sinks.append(skydriver)
        if request.output_dir is not None:
            sinks.append(
                FileSink(request.output_dir, result_filename(meta, request.progression.nsides))
            )
        tracker = ProgressTracker(
            request.progression,
            reco_cls.n_posvar,
            request.predictive_scanning_threshold,
            settings.progress_interval_sec,
        )
        scan_metadata: dict[str, object] = {
            "scan_id": scan_id,
            "nside_progression": request.progression.to_json_dict(),
            "position_variations": reco_cls.n_posvar,
        }
        reporter = Reporter(
            sinks,
            tracker,
            meta,
            scan_metadata,
            settings.progress_interval_sec,
            settings.result_interval_sec,
        )
        await reporter.send_progress(state, "The Skymap Scanner has started up.")
        if on_startup is not None:
            await on_startup(startup)

        kill_switch = KillSwitch(skydriver, settings.kill_switch_check_interval)
        publisher = await stack.enter_async_context(
            open_publisher(settings, to_clients_queue(scan_id))
        )
        dead_letters = await stack.enter_async_context(
            open_publisher(settings, dead_letters_queue(scan_id))
        )
        consumer = await stack.enter_async_context(
            open_consumer(
                settings,
                from_clients_queue(scan_id),
                also=[dead_letters_queue(scan_id)],
                prefetch=settings.mq_prefetch_from_clients,
                timeout_s=1,
            )
        )
        tally = DeadLetterTally()
        transport = MQTransport(
            scan_id,
            publisher,
            consumer,
            dead_letters,
            prefetch=settings.mq_prefetch_from_clients,
            idle_timeout_s=settings.mq_timeout_from_clients,
            kill_switch=kill_switch,
            tally=tally,
        )
        reporter.acknowledge = transport.acknowledge
        reporter.dead_letters = tally
        make_tasks = task_factory(
            scan_id,
            request.reco_algo,
            startup.realtime_format_version,
            state,
            startup.fallback_seed,
        )
        try:
            await run_scan(
                state, transport, reporter, make_tasks, kill_switch, shuffle_seed=scan_id
            )
        except ScanAborted:
            LOG.warning("scan %s aborted (deleted in SkyDriver)", scan_id)
            raise
        except ClientsTimedOut:
            LOG.error("scan %s: workers stopped sending results", scan_id)
            raise
        except Refused:
            await kill_switch.check_now()  # refused because the scan was deleted: that is an abort
            raise
        # the final progress first: once the final result is in, SkyDriver refuses every write to the scan
        await reporter.send_progress(state, "The Skymap Scanner has finished.", urgent=True)
        await reporter.send_result(state, final=True)
        return {
            "nsides": {n: len(p) for n, p in state.nsides_dict.items()},
            "failed": sorted(state.failed),
        }


async def cleanup_queues(settings: ServerSettings, scan_id: str) -> None:
    """Delete a scan's queues (after its final result, or when it is aborted); a failure is only logged
    (the scan itself is done)."""
    try:
        await delete_queues(settings, scan_queues(scan_id))
    except Exception as e:
        LOG.warning("could not delete the queues of scan %s: %s", scan_id, e)
