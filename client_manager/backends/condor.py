"""The `condor` backend: a scan's workers as HTCondor jobs (submit description: `condor_submit.py`).

`start(n)` submits one cluster of `n` procs; `add_workers(n)` submits another cluster; `poll()` queries
the scan's clusters and maps `JobStatus` to `WorkerStatus` (held jobs are FAILED, their HoldReason goes to
the top errors; jobs no longer in the queue have ended: GONE); `stop()` removes the clusters (graceful:
HTCondor signals the job and waits), and after `stop_timeout_s` force-removes what is still leaving.

The schedd is injected (`htcondor2.Schedd()` in production); every call runs in a thread
(`asyncio.to_thread`, the bindings block) under `asyncio.wait_for`. A submit is not retried (it is not
idempotent); a failed query answers the last known workforce (unknown is not dead).

Tested against a scripted fake schedd only: no HTCondor pool exists on the build machines."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

import htcondor2

from skyscan_contract.errors import LaunchError
from skyscan_contract.settings import CondorWorkerSettings

from .base import WorkerBackend, WorkerStatus, Workforce
from .condor_submit import TOKEN_FILE_NAME, make_submit

LOG = logging.getLogger(__name__)

#: HTCondor JobStatus codes
JOB_STATUS: dict[int, WorkerStatus] = {
    1: WorkerStatus.PENDING,  # idle
    2: WorkerStatus.RUNNING,
    3: WorkerStatus.GONE,  # removed (leaving the queue)
    4: WorkerStatus.GONE,  # completed (FAILED if its exit code is not 0)
    5: WorkerStatus.FAILED,  # held
    6: WorkerStatus.RUNNING,  # transferring output
    7: WorkerStatus.PENDING,  # suspended
}
PROJECTION = ["ClusterId", "ProcId", "JobStatus", "HoldReason", "ExitCode"]
MAX_ERROR_LEN = 200


def submit_description(
    cfg: CondorWorkerSettings,
    scan_id: str,
    startup_json: Path,
    work_dir: Path,
    replacements_per_worker: int,
) -> Any:
    """The workers' submit description (also what `client-manager --dry-run` prints); the broker token,
    if any, is the file `TOKEN_FILE_NAME` in `work_dir` (written by the backend, never printed)."""
    token_file = work_dir / TOKEN_FILE_NAME if cfg.broker_auth.get_secret_value() else None
    return make_submit(
        scan_id,
        image=cfg.worker_image,
        startup_json=startup_json,
        token_file=token_file,
        memory_bytes=cfg.worker_memory_bytes,
        disk_bytes=cfg.worker_disk_bytes,
        priority=cfg.worker_priority,
        broker_type=cfg.broker_type,
        broker_address=cfg.broker_address,
        pixel_timeout_s=cfg.pixel_timeout_s,
        log_dir=work_dir,
        requirements=cfg.condor_requirements,
        max_runtime_s=cfg.worker_max_runtime_s,
        max_retries=replacements_per_worker,
        python=cfg.condor_worker_python,
    )


def default_work_dir(startup_json: Path, scan_id: str) -> Path:
    return startup_json.parent / f"condor-{scan_id}"


class Schedd(Protocol):
    """The part of `htcondor2.Schedd` the backend uses."""

    def submit(self, description: Any, count: int = 0, spool: bool = False) -> Any: ...

    def spool(self, result: Any) -> None: ...

    def query(self, constraint: str = "True", projection: list[str] = ...) -> list[Any]: ...

    def act(self, action: Any, job_spec: Any, reason: str | None = None) -> Any: ...


class CondorBackend(WorkerBackend):
    name = "condor"

    def __init__(
        self,
        settings: CondorWorkerSettings,
        scan_id: str,
        startup_json: Path,
        *,
        schedd: Schedd,
        replacements_per_worker: int,
        stop_timeout_s: float,
        work_dir: Path | None = None,
    ) -> None:
        self.cfg = settings
        self.scan_id = scan_id
        self.startup_json = startup_json
        self.schedd = schedd
        self.replacements_per_worker = replacements_per_worker
        self.stop_timeout_s = stop_timeout_s
        self.work_dir = work_dir or default_work_dir(startup_json, scan_id)
        self.clusters: dict[int, int] = {}  # cluster id -> procs submitted
        self.removed: set[int] = set()
        self._last = Workforce()

    @property
    def n_requested(self) -> int:
        return sum(self.clusters.values())

    @property
    def token_file(self) -> Path:
        return self.work_dir / TOKEN_FILE_NAME

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(fn, *args, **kwargs), self.cfg.condor_schedd_timeout_s
            )
        except TimeoutError as e:
            raise TimeoutError(
                f"{what}: the schedd did not answer within {self.cfg.condor_schedd_timeout_s:g}s "
                "(CLIENT_MANAGER_CONDOR_SCHEDD_TIMEOUT_S)"
            ) from e

    def _write_token(self) -> Path | None:
        """The broker token in a 0600 file inside a 0700 directory; None if there is no token."""
        token = self.cfg.broker_auth.get_secret_value()
        self.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not token:
            return None
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        os.chmod(self.token_file, 0o600)  # in case the file existed with other bits
        return self.token_file

    async def _submit(self, n: int) -> int:
        await asyncio.to_thread(self._write_token)
        description = submit_description(
            self.cfg, self.scan_id, self.startup_json, self.work_dir, self.replacements_per_worker
        )
        what = f"submit {n} workers of scan {self.scan_id}"
        try:
            result = await self._call(
                what, self.schedd.submit, description, count=n, spool=self.cfg.condor_spool
            )
            if self.cfg.condor_spool:
                await self._call(
                    f"spool input files of scan {self.scan_id}", self.schedd.spool, result
                )
        except TimeoutError as e:
            raise LaunchError(str(e), reason="timeout") from e
        except Exception as e:
            raise LaunchError(f"{what}: {type(e).__name__}: {e}", reason="unreachable") from e
        cluster = int(result.cluster())
        self.clusters[cluster] = n
        LOG.info("scan %s: submitted %d workers as cluster %d", self.scan_id, n, cluster)
        return cluster

    async def start(self, n_workers: int) -> None:
        await self._submit(n_workers)
        self._last = Workforce(
            statuses=Counter({WorkerStatus.PENDING: n_workers}), n_requested=self.n_requested
        )

    async def add_workers(self, n: int) -> None:
        """`n` more workers, as a new cluster."""
        await self._submit(n)

    def _constraint(self, clusters: list[int]) -> str:
        return " || ".join(f"ClusterId == {c}" for c in clusters)

    async def poll(self) -> Workforce:
        if not self.clusters:
            return Workforce()
        try:
            ads = await self._call(
                f"query workers of scan {self.scan_id}",
                self.schedd.query,
                constraint=self._constraint(sorted(self.clusters)),
                projection=PROJECTION,
            )
        except Exception as e:
            LOG.warning("scan %s: schedd query failed (%s); last state kept", self.scan_id, e)
            return self._last
        statuses: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for ad in ads:
            code = int(ad.get("JobStatus", 0))
            status = JOB_STATUS.get(code, WorkerStatus.UNKNOWN)
            exit_code = ad.get("ExitCode")
            if code == 4 and exit_code not in (None, 0):
                status = WorkerStatus.FAILED
                errors[f"exit code {exit_code}"] += 1
            if code == 5:
                errors[str(ad.get("HoldReason") or "held")[:MAX_ERROR_LEN]] += 1
            statuses[status] += 1
        # a job that left the queue has ended (completed, or removed)
        statuses[WorkerStatus.GONE] += max(0, self.n_requested - len(ads))
        self._last = Workforce(statuses=+statuses, top_errors=errors, n_requested=self.n_requested)
        return self._last

    async def _remaining(self, cluster: int) -> int | None:
        try:
            ads = await self._call(
                f"query cluster {cluster}",
                self.schedd.query,
                constraint=f"ClusterId == {cluster}",
                projection=["ProcId", "JobStatus"],
            )
        except Exception as e:
            LOG.warning("query of cluster %d failed: %s", cluster, e)
            return None
        return len(ads)

    async def stop(self) -> None:
        """Remove every cluster; after `stop_timeout_s`, force-remove (RemoveX) what is still
        leaving the queue. Safe to repeat; errors are logged. The token file is deleted."""
        for cluster in sorted(set(self.clusters) - self.removed):
            try:
                await self._call(
                    f"remove cluster {cluster}",
                    self.schedd.act,
                    htcondor2.JobAction.Remove,
                    f"ClusterId == {cluster}",
                    reason=f"SkyDriver: scan {self.scan_id} stopped its workers",
                )
            except Exception as e:
                LOG.error("scan %s: remove of cluster %d failed: %s", self.scan_id, cluster, e)
                continue
            deadline = time.monotonic() + self.stop_timeout_s
            left = await self._remaining(cluster)
            while left and time.monotonic() < deadline:
                await asyncio.sleep(min(1.0, self.stop_timeout_s / 10))
                left = await self._remaining(cluster)
            if left:
                try:
                    await self._call(
                        f"force-remove cluster {cluster}",
                        self.schedd.act,
                        htcondor2.JobAction.RemoveX,
                        f"ClusterId == {cluster} && JobStatus == 3",
                        reason=f"SkyDriver: scan {self.scan_id}: workers did not leave in time",
                    )
                except Exception as e:
                    LOG.error(
                        "scan %s: force-remove of cluster %d failed: %s", self.scan_id, cluster, e
                    )
                    continue
            self.removed.add(cluster)
        if self.removed == set(self.clusters):
            self.token_file.unlink(missing_ok=True)
