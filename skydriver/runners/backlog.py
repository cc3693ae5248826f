"""The backlog runner: the only code that reads the backlog and calls a launcher.

It claims entries atomically (priority desc, then age), starts each scan's instance through the configured
launcher, records what it started in the manifest, and gives up on a scan after `backlog_max_attempts`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from ..launch.base import InstanceSpec, Launcher
from ..settings import Settings
from ..store.backlog import BacklogStore
from ..store.scans import ScanStore

LOG = logging.getLogger(__name__)

LauncherFactory = Callable[[str], Launcher]


def instance_spec(scan_id: str, request: dict[str, Any], user_env: dict[str, Any]) -> InstanceSpec:
    nsides = " ".join(f"{n}:{e}" for n, e in request["nsides"].items())
    return InstanceSpec(
        scan_id=scan_id,
        reco_algo=request["reco_algo"],
        nsides=nsides,
        real_event=str(request["real_or_simulated_event"]).startswith("real"),
        predictive_scanning_threshold=float(request["predictive_scanning_threshold"]),
        n_workers=sum(int(n) for _, n in request["request_clusters"]),
        max_pixel_reco_time=int(request["max_pixel_reco_time"]),
        priority=int(request["priority"]),
        scanner_server_env={k: str(v) for k, v in user_env.items()},
    )


class BacklogRunner:
    def __init__(
        self,
        settings: Settings,
        scans: ScanStore,
        backlog: BacklogStore,
        make_launcher: LauncherFactory,
        launchers: dict[str, Launcher],
        instance_token: Callable[[str], str] = lambda scan_id: "",
    ) -> None:
        self.settings = settings
        self.scans = scans
        self.backlog = backlog
        self.make_launcher = make_launcher
        self.launchers = launchers  # scan_id -> running launcher, shared with the instance watcher
        self.instance_token = instance_token
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

    async def launch_next(self) -> bool:
        """Claim and start one entry; False when nothing is claimable."""
        entry = await self.backlog.claim(self.settings.backlog_pending_entry_ttl_revive_s)
        if entry is None:
            return False
        scan_id = entry["scan_id"]
        manifest = await self.scans.get_manifest(scan_id, include_deleted=True)
        if manifest["is_deleted"]:
            LOG.info("scan %s was deleted while in the backlog; dropped", scan_id)
            await self.backlog.remove(scan_id)
            return True
        if entry["next_attempt"] > self.settings.backlog_max_attempts:
            reason = f"could not start after {self.settings.backlog_max_attempts} attempts"
            await self.scans.update_manifest(
                scan_id,
                {"instance": {"state": "failed", "reason": reason, "ended_at": time.time()}},
            )
            await self.backlog.remove(scan_id)
            LOG.error("scan %s: %s", scan_id, reason)
            return True
        request = await self.scans.get_request(scan_id)
        spec = instance_spec(scan_id, request, request.get("scanner_server_env_from_user") or {})
        spec = dataclasses.replace(spec, skydriver_token=self.instance_token(scan_id))
        launcher = self.make_launcher(scan_id)
        try:
            await launcher.start(spec)
        except Exception as e:
            LOG.exception("scan %s: start attempt %d failed", scan_id, entry["next_attempt"])
            await launcher.stop(now=True)
            await self.scans.update_manifest(
                scan_id, {"instance": {"state": "start-failed", "reason": str(e)}}
            )
            await self.backlog.release(scan_id)
            return True
        self.launchers[scan_id] = launcher
        await self.scans.update_manifest(
            scan_id,
            {
                "ewms_workflow_id": f"{launcher.name}:{scan_id}",
                "ewms_address": self.settings.launcher,
                "instance": {
                    "state": "running",
                    "launcher": launcher.name,
                    "started_at": time.time(),
                    "launcher_state": launcher.get_state(),
                },
            },
        )
        await self.backlog.remove(scan_id)
        LOG.info("scan %s started (%s launcher)", scan_id, launcher.name)
        return True
