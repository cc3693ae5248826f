"""Repairs, once at start-up and before the runners run, what a SkyDriver that died mid-way can leave
half done (the crash windows of `POST /scan`, the backlog runner and rescans):

- a backlog entry whose scan was deleted, or whose manifest never got written: dropped;
- a scan that was stored but never queued (death between the manifest and the backlog entry), or whose
  start was decided but not confirmed (instance `starting`): queued again, claimable at once — a launch
  is idempotent per scan (the local launcher adopts the processes it finds running, the k8s launcher
  the Job named after the scan), so nothing is started twice;

A rescan is recorded in its scan request before it is created (`rest/actions.py`), so a rescan never
lacks its request.
"""

from __future__ import annotations

import logging
from collections import Counter

from skyscan_contract.documents import NOT_YET_REQUESTED, BacklogEntry, InstanceState, Manifest
from skyscan_contract.errors import LaunchError, ScanNotFound

from ..broker import BrokerAccounts
from ..store.backlog import BacklogStore
from ..store.scans import ScanStore

LOG = logging.getLogger(__name__)
#: instance states of a scan that still has to be (re)started
NOT_STARTED = (None, InstanceState.START_FAILED, InstanceState.STARTING)


async def reconcile(
    scans: ScanStore, backlog: BacklogStore, broker: BrokerAccounts
) -> Counter[str]:
    """Repair what a crash left half done; returns what was repaired, by kind (also logged)."""
    done: Counter[str] = Counter()
    for scan_id in await broker.scans_with_access():
        # only scans of this database that are over: another deployment's scans are not ours to touch
        try:
            over = (await scans.get_manifest(scan_id, include_deleted=True)).instance_state
        except ScanNotFound:
            continue
        if over in (InstanceState.ENDED, InstanceState.FAILED):
            try:
                await broker.remove(scan_id)
                done["broker accounts of ended scans removed"] += 1
            except LaunchError as e:
                LOG.warning("scan %s: %s", scan_id, e)
    queued = set()
    for entry in await backlog.entries():
        try:
            manifest: Manifest | None = await scans.get_manifest(
                entry.scan_id, include_deleted=True
            )
        except ScanNotFound:
            manifest = None
        if manifest is None or manifest.is_deleted:
            await backlog.remove(entry.scan_id)
            done["dropped backlog entries"] += 1
            continue
        queued.add(entry.scan_id)
        if manifest.instance_state is InstanceState.STARTING:
            await backlog.claimable_now(entry.scan_id)
            done["interrupted starts retried"] += 1
    for manifest in await scans.find_manifests(
        {"is_deleted": False, "ewms_workflow_id": NOT_YET_REQUESTED}, None, limit=100_000
    ):
        if manifest.scan_id in queued or manifest.instance_state not in NOT_STARTED:
            continue
        if await scans.result_is_final(manifest.scan_id):
            continue
        request = await scans.get_request(manifest.scan_id)
        await backlog.enqueue(
            BacklogEntry(
                scan_id=manifest.scan_id,
                timestamp=manifest.timestamp,
                priority=manifest.priority,
                clusters=request.cluster_names,
            )
        )
        done["orphaned scans queued"] += 1
    for kind, n in done.items():
        LOG.warning("start-up reconciliation: %d %s", n, kind)
    return done
