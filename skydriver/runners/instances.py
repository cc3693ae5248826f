"""Watches running scan instances: stops those whose scan was deleted, records those that ended, and
re-attaches to instances after a SkyDriver restart (from the state kept in the manifest)."""

from __future__ import annotations

import asyncio
import logging

from skyscan_contract.documents import Manifest, ScanEventType
from skyscan_contract.errors import LaunchError

from ..broker import BrokerAccounts
from ..launch.base import Launcher
from ..settings import Settings
from ..store.scans import ScanStore
from .backlog import LauncherFactory

LOG = logging.getLogger(__name__)


class InstanceWatcher:
    def __init__(
        self,
        settings: Settings,
        scans: ScanStore,
        make_launcher: LauncherFactory,
        launchers: dict[str, Launcher],
        broker: BrokerAccounts,
    ) -> None:
        self.settings = settings
        self.scans = scans
        self.make_launcher = make_launcher
        self.launchers = launchers
        self.broker = broker

    async def run_forever(self) -> None:
        while True:
            try:
                await self.check_all()
            except Exception:
                LOG.exception("instance check failed; retrying")
            await asyncio.sleep(self.settings.instance_poll_interval_s)

    def _launcher_for(self, manifest: Manifest) -> Launcher:
        scan_id = manifest.scan_id
        launcher = self.launchers.get(scan_id)
        if launcher is None:  # after a restart: rebuild it from the stored state
            launcher = self.make_launcher(scan_id)
            launcher.load_state(manifest.instance.launcher_state if manifest.instance else {})
            self.launchers[scan_id] = launcher
        return launcher

    async def check_all(self) -> None:
        for manifest in await self.scans.active_instances():
            scan_id = manifest.scan_id
            launcher = self._launcher_for(manifest)
            if manifest.is_deleted:
                LOG.info("scan %s deleted: stopping its instance", scan_id)
                await launcher.stop()
            code = await launcher.poll()
            if code is None:
                continue
            reason = launcher.exit_reason() if code != 0 else None
            await self.scans.end_instance(scan_id, code, reason)
            self.launchers.pop(scan_id, None)
            if not manifest.is_deleted and not await self.scans.result_is_final(scan_id):
                said = f"the instance ended with {code}" + (f": {reason}" if reason else "")
                await self.scans.events.append(scan_id, ScanEventType.FAILED, {"reason": said})
            LOG.info("scan %s: instance ended (exit %s)", scan_id, code)
            try:  # its broker access, and whatever it left on the broker
                await self.broker.remove(scan_id)
            except LaunchError as e:
                LOG.warning("scan %s: %s (retried at the next start-up)", scan_id, e)

    async def stop_all(self) -> None:
        """Stop every instance this SkyDriver watches, and remove their broker access."""
        scan_ids = list(self.launchers)
        await asyncio.gather(*(launcher.stop() for launcher in self.launchers.values()))
        for scan_id in scan_ids:
            try:
                await self.broker.remove(scan_id)
            except LaunchError as e:
                LOG.warning("scan %s: %s", scan_id, e)
