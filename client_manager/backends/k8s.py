"""The `k8s` backend: a scan's workers as ONE Kubernetes Job (see `k8s_objects` for its shape).

`start(n)` copies the scanner server's startup.json into a ConfigMap and creates the worker Job;
`add_workers(n)` raises its parallelism and completions; `poll()` lists the worker pods and maps their
phases to `WorkerStatus` (errors from container terminations); `stop()` deletes the Job (Foreground, so
its pods go first, with `stop_grace_s` to finish) and the ConfigMap. API calls go through
`skyscan_contract.k8s_api.call_api` (timeout, retries of transient failures; the one retry policy).

Tested against scripted fakes of `BatchV1Api`/`CoreV1Api` only: no cluster exists on the build machines."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from skyscan_contract.errors import LaunchError
from skyscan_contract.k8s_api import (
    BatchApi,
    RetryPolicy,
    api_body,
    api_status,
    call_api,
    describe_error,
    is_quota_refusal,
    load_api_client,
)
from skyscan_contract.settings import K8sWorkerSettings

from .base import WorkerBackend, WorkerStatus, Workforce
from .k8s_objects import (
    make_startup_configmap,
    make_worker_job,
    owner_reference,
    scale_patch,
    startup_configmap_name,
    worker_job_name,
    worker_selector,
    workforce_counts,
)

if TYPE_CHECKING:
    from kubernetes.client import V1ConfigMap, V1Job, V1PodList

LOG = logging.getLogger(__name__)


def retry_policy(cfg: K8sWorkerSettings) -> RetryPolicy:
    return RetryPolicy(
        cfg.k8s_api_timeout_s, cfg.k8s_api_retries, cfg.k8s_api_backoff_s, cfg.k8s_api_backoff_max_s
    )


class WorkerBatchApi(BatchApi, Protocol):
    """The part of `kubernetes.client.BatchV1Api` the backend uses: the launcher's, plus patch (scaling)."""

    def patch_namespaced_job(
        self, name: str, namespace: str, body: Any, *, _request_timeout: float | None = None
    ) -> V1Job: ...


class CoreApi(Protocol):
    """The part of `kubernetes.client.CoreV1Api` the backend uses."""

    def create_namespaced_config_map(
        self, namespace: str, body: V1ConfigMap, *, _request_timeout: float | None = None
    ) -> V1ConfigMap: ...

    def delete_namespaced_config_map(
        self, name: str, namespace: str, *, _request_timeout: float | None = None
    ) -> object: ...

    def list_namespaced_pod(
        self,
        namespace: str,
        *,
        label_selector: str | None = None,
        _request_timeout: float | None = None,
    ) -> V1PodList: ...


def load_k8s_apis() -> tuple[Any, Any]:
    """(BatchV1Api, CoreV1Api) sharing one ApiClient, from the pod's service account (else
    ~/.kube/config). Call once in the client manager's main() and pass both in."""
    from kubernetes import client

    api_client = load_api_client()
    return client.BatchV1Api(api_client), client.CoreV1Api(api_client)


def worker_objects(
    cfg: K8sWorkerSettings,
    scan_id: str,
    startup_text: str,
    n_workers: int,
    replacements_per_worker: int,
) -> tuple[V1ConfigMap, V1Job]:
    """The ConfigMap (the startup data) and the worker Job the backend creates for `n_workers` (also
    what `client-manager --dry-run` prints)."""
    owner = None
    if cfg.k8s_owner_job_name and cfg.k8s_owner_job_uid:
        owner = owner_reference(cfg.k8s_owner_job_name, cfg.k8s_owner_job_uid)
    configmap = make_startup_configmap(scan_id, cfg.k8s_namespace, startup_text, owner)
    job = make_worker_job(
        scan_id,
        namespace=cfg.k8s_namespace,
        image=cfg.worker_image,
        n_workers=n_workers,
        memory_bytes=cfg.worker_memory_bytes,
        disk_bytes=cfg.worker_disk_bytes,
        cpu=cfg.worker_cpu,
        broker_type=cfg.broker_type,
        broker_address=cfg.broker_address,
        secret_name=cfg.k8s_secret_name,
        broker_auth_secret_key=cfg.k8s_broker_auth_secret_key,
        pixel_timeout_s=cfg.pixel_timeout_s,
        replacements_per_worker=replacements_per_worker,
        ttl_seconds_after_finished=cfg.k8s_ttl_seconds_after_finished,
        active_deadline_seconds=cfg.worker_max_runtime_s,
        image_pull_policy=cfg.k8s_image_pull_policy,
        owner=owner,
    )
    return configmap, job


class K8sBackend(WorkerBackend):
    name = "k8s"

    def __init__(
        self,
        settings: K8sWorkerSettings,
        scan_id: str,
        startup_json: Path,
        *,
        batch_api: WorkerBatchApi,
        core_api: CoreApi,
        replacements_per_worker: int,
        stop_grace_s: float,
    ) -> None:
        self.cfg = settings
        self.scan_id = scan_id
        self.startup_json = startup_json
        self.batch = batch_api
        self.core = core_api
        self.replacements_per_worker = replacements_per_worker
        self.stop_grace_s = stop_grace_s
        self.namespace = settings.k8s_namespace
        self.job_name = worker_job_name(scan_id)
        self.configmap_name = startup_configmap_name(scan_id)
        self.policy = retry_policy(settings)
        self.n_requested = 0
        self.started = False
        self._last = Workforce()

    async def _create(self, fn: Any, body: Any, what: str) -> None:
        """Create one object: 409 = ours from an earlier attempt; quota refusals wait for a slot."""
        deadline = time.monotonic() + self.cfg.k8s_quota_wait_s
        while True:
            try:
                await call_api(fn, self.namespace, body, what=what, policy=self.policy)
                return
            except Exception as e:
                if api_status(e) == 409:
                    LOG.info("%s: exists already; ours", what)
                    return
                if is_quota_refusal(e) and time.monotonic() < deadline:
                    LOG.warning(
                        "%s: Job quota used up; retrying in %gs",
                        what,
                        self.cfg.k8s_quota_retry_delay_s,
                    )
                    await asyncio.sleep(self.cfg.k8s_quota_retry_delay_s)
                    continue
                raise _launch_error(what, e) from e

    async def start(self, n_workers: int) -> None:
        """ConfigMap from the startup file, then the worker Job with `n_workers` workers."""
        text = await asyncio.to_thread(self.startup_json.read_text)
        configmap, job = worker_objects(
            self.cfg, self.scan_id, text, n_workers, self.replacements_per_worker
        )
        self.started = True  # from here on, stop() cleans up whatever was created
        await self._create(
            self.core.create_namespaced_config_map,
            configmap,
            f"create ConfigMap {self.namespace}/{self.configmap_name}",
        )
        await self._create(
            self.batch.create_namespaced_job, job, f"create Job {self.namespace}/{self.job_name}"
        )
        self.n_requested = n_workers
        self._last = Workforce(
            statuses=Counter({WorkerStatus.PENDING: n_workers}), n_requested=n_workers
        )
        LOG.info("scan %s: worker Job %s with %d workers", self.scan_id, self.job_name, n_workers)

    async def add_workers(self, n: int) -> None:
        """`n` more workers (the Job's parallelism and completions grow together)."""
        if not self.started:
            await self.start(n)
            return
        total = self.n_requested + n
        what = f"scale Job {self.namespace}/{self.job_name} to {total}"
        try:
            await call_api(
                self.batch.patch_namespaced_job,
                self.job_name,
                self.namespace,
                scale_patch(total),
                what=what,
                policy=self.policy,
            )
        except Exception as e:
            raise _launch_error(what, e) from e
        self.n_requested = total

    async def poll(self) -> Workforce:
        """The worker Job's status and its pods (see `k8s_objects.workforce_counts`). If the API does
        not answer, the last answer is repeated: an unknown state is not a dead worker."""
        if not self.started:
            return Workforce(n_requested=self.n_requested)
        job: V1Job | None
        try:
            job = await call_api(
                self.batch.read_namespaced_job,
                self.job_name,
                self.namespace,
                what=f"read Job {self.namespace}/{self.job_name}",
                policy=self.policy,
            )
        except Exception as e:
            if api_status(e) != 404:
                LOG.warning(
                    "scan %s: cannot read the worker Job (%s); last state kept",
                    self.scan_id,
                    describe_error(e),
                )
                return self._last
            job = None
        try:
            pods = await call_api(
                self.core.list_namespaced_pod,
                self.namespace,
                what=f"list worker pods of scan {self.scan_id}",
                policy=self.policy,
                label_selector=worker_selector(self.scan_id),
            )
        except Exception as e:
            LOG.warning(
                "scan %s: cannot list worker pods (%s); last state kept",
                self.scan_id,
                describe_error(e),
            )
            return self._last
        statuses, errors = workforce_counts(job, pods.items or [], self.n_requested)
        self._last = Workforce(statuses=statuses, top_errors=errors, n_requested=self.n_requested)
        return self._last

    async def stop(self) -> None:
        """Delete the worker Job (pods get `stop_grace_s` after SIGTERM) and the ConfigMap.
        404 = already gone; safe to repeat. Errors are logged (the owner reference, when set, still
        removes both with the scan Job)."""
        if not self.started:
            return
        grace = max(0, round(self.stop_grace_s))
        calls: list[tuple[str, Any, dict[str, Any]]] = [
            (
                f"delete Job {self.namespace}/{self.job_name}",
                self.batch.delete_namespaced_job,
                {"propagation_policy": "Foreground", "grace_period_seconds": grace},
            ),
            (
                f"delete ConfigMap {self.namespace}/{self.configmap_name}",
                self.core.delete_namespaced_config_map,
                {},
            ),
        ]
        names = (self.job_name, self.configmap_name)
        for (what, fn, kwargs), name in zip(calls, names, strict=True):
            try:
                await call_api(fn, name, self.namespace, what=what, policy=self.policy, **kwargs)
            except Exception as e:
                if api_status(e) != 404:
                    LOG.error("scan %s: %s failed: %s", self.scan_id, what, describe_error(e))


def _launch_error(what: str, exc: BaseException) -> LaunchError:
    status = api_status(exc)
    if is_quota_refusal(exc):
        return LaunchError(f"{what}: the namespace's Job quota stayed used up", reason="quota")
    if isinstance(exc, TimeoutError):
        return LaunchError(f"{what}: the Kubernetes API did not answer in time", reason="timeout")
    if status is not None:
        return LaunchError(
            f"{what}: refused with HTTP {status}: {api_body(exc)[:500]} (check the scan "
            "instance's Role in k8s/base and CLIENT_MANAGER_K8S_*)",
            reason="unreachable",
        )
    return LaunchError(f"{what}: {describe_error(exc)}", reason="unreachable")
