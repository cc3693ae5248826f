"""The backlog runner: the only code that reads the backlog and calls a launcher.

It claims entries atomically (priority desc, then age), starts each scan's instance through the configured
launcher, records what it started in the manifest, and gives up on a scan after `backlog_max_attempts`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable

from skyscan_contract.documents import BacklogEntry, InstanceRecord, InstanceState
from skyscan_contract.errors import LaunchError
from skyscan_contract.instance import InstanceSpec

from ..broker import BrokerAccounts
from ..launch.base import InstanceCredentials, Launcher
from ..scanning import SCAN_MIN_PRIORITY_TO_START_ASAP
from ..settings import Settings
from ..store.backlog import BacklogStore
from ..store.scans import ScanStore

LOG = logging.getLogger(__name__)

LauncherFactory = Callable[[str], Launcher]


class BacklogRunner:
    def __init__(
        self,
        settings: Settings,
        scans: ScanStore,
        backlog: BacklogStore,
        make_launcher: LauncherFactory,
        launchers: dict[str, Launcher],
        instance_token: Callable[[str], str],
        broker: BrokerAccounts,
    ) -> None:
        self.settings = settings
        self.scans = scans
        self.backlog = backlog
        self.make_launcher = make_launcher
        self.launchers = launchers  # scan_id -> running launcher, shared with the instance watcher
        self.instance_token = instance_token
        self.broker = broker
        self.wake = asyncio.Event()

    async def run_forever(self) -> None:
        while True:
            try:
                while await self.launch_next():
                    pass
            except Exception:
                LOG.exception("backlog runner iteration failed; retrying")
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), self.settings.backlog_runner_short_delay_s)
            except TimeoutError:
                pass

    async def _claim(self) -> BacklogEntry | None:
        """The next entry allowed to start under the concurrency caps. Realtime scans (priority >=
        SCAN_MIN_PRIORITY_TO_START_ASAP) are not held back by the global cap."""
        active = await self.scans.active_instances()
        only_realtime = 0 < self.settings.max_running_scans <= len(active)
        per_cluster: Counter[str] = Counter(
            c for m in active if m.instance is not None for c in set(m.instance.clusters)
        )
        full = [
            c
            for c, cap in self.settings.max_running_scans_per_cluster.items()
            if per_cluster[c] >= cap
        ]
        return await self.backlog.claim(
            self.settings.backlog_pending_entry_ttl_revive_s,
            min_priority=SCAN_MIN_PRIORITY_TO_START_ASAP if only_realtime else None,
            exclude_clusters=full,
        )

    async def launch_next(self) -> bool:
        """Claim and start one entry; False when nothing is claimable."""
        entry = await self._claim()
        if entry is None:
            return False
        scan_id = entry.scan_id
        manifest = await self.scans.get_manifest(scan_id, include_deleted=True)
        if manifest.is_deleted:
            LOG.info("scan %s was deleted while in the backlog; dropped", scan_id)
            await self.backlog.remove(scan_id)
            return True
        if manifest.instance_state in (InstanceState.RUNNING, InstanceState.ENDED):
            LOG.warning(
                "scan %s was started already (its entry outlived a crash); dropped", scan_id
            )
            await self.backlog.remove(scan_id)
            return True
        if entry.next_attempt > self.settings.backlog_max_attempts:
            reason = f"could not start after {self.settings.backlog_max_attempts} attempts"
            await self.scans.set_instance(
                scan_id,
                InstanceRecord(state=InstanceState.FAILED, reason=reason, ended_at=time.time()),
            )
            await self.backlog.remove(scan_id)
            LOG.error("scan %s: %s", scan_id, reason)
            return True
        request = await self.scans.get_request(scan_id)
        spec = InstanceSpec.from_request(request, scan_id)
        launcher: Launcher | None = None
        try:
            launcher = self.make_launcher(scan_id)
            # the intent first: a SkyDriver that dies during start() finds it (runners/reconcile.py),
            # and start() again adopts what was started (a launch is idempotent per scan)
            await self.scans.set_instance(
                scan_id,
                InstanceRecord(
                    state=InstanceState.STARTING,
                    launcher=launcher.name,
                    launcher_state=launcher.get_state(),
                ),
            )
            credentials = InstanceCredentials(
                skydriver_token=self.instance_token(scan_id),
                broker=await self.broker.create(scan_id),
            )
            await launcher.start(spec, credentials)
        except Exception as e:
            quota = isinstance(e, LaunchError) and e.reason == "quota"
            LOG.warning(
                "scan %s: start attempt %d failed%s: %s",
                scan_id,
                entry.next_attempt,
                " (quota; not counted)" if quota else "",
                e,
            )
            if launcher is not None:
                await launcher.stop(now=True)
            await self._remove_broker_access(scan_id)
            await self.scans.set_instance(
                scan_id, InstanceRecord(state=InstanceState.START_FAILED, reason=str(e))
            )
            await self.backlog.retry_later(
                scan_id,
                self.settings.backlog_retry_delay_s,
                self.settings.backlog_pending_entry_ttl_revive_s,
                count_attempt=not quota,
            )
            return True
        self.launchers[scan_id] = launcher
        await self.scans.set_instance(
            scan_id,
            InstanceRecord(
                state=InstanceState.RUNNING,
                clusters=request.cluster_names,
                launcher=launcher.name,
                started_at=time.time(),
                launcher_state=launcher.get_state(),
            ),
            workflow=(f"{launcher.name}:{scan_id}", self.settings.launcher),
        )
        await self.backlog.remove(scan_id)
        LOG.info("scan %s started (%s launcher)", scan_id, launcher.name)
        return True

    async def _remove_broker_access(self, scan_id: str) -> None:
        try:
            await self.broker.remove(scan_id)
        except LaunchError as e:  # the next attempt replaces it; the watcher removes it at the end
            LOG.warning("scan %s: %s", scan_id, e)
