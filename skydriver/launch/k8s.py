"""The `k8s` launcher: one Kubernetes Job per scan (built by `k8s_objects.make_scan_job`).

Every API call goes through `skyscan_contract.k8s_api.call_api()`, the one place that decides what is
retried (shared with the client manager's k8s backend): a transient failure (HTTP 429/5xx, network error,
timeout) is retried a few times with exponential backoff and jitter. Every other answer goes back to the
caller at once, which decides what it means:

- create 409 Conflict: the Job is named from the scan id, so it is ours, created by an earlier attempt
  whose answer we lost; treated as success;
- create 403 "exceeded quota": `LaunchError(reason="quota")`; the backlog runner retries this scan after
  `quota_retry_delay_s` without blocking other scans (the original blocked its whole loop);
- poll/stop 404: the Job is gone (finished and garbage-collected, or deleted).

poll() reads the Job itself (`get` on jobs, not the jobs/status subresource), so SkyDriver's Role needs
exactly create/get/list/delete on batch/jobs (k8s/base/rbac.yaml).

Tested against a scripted fake `BatchV1Api` only: no Kubernetes cluster exists on the build machines."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from skyscan_contract.errors import LaunchError
from skyscan_contract.instance import InstanceSpec
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

from ..settings import Settings
from .base import Launcher
from .k8s_objects import ScanResources, job_exit_code, scan_job_from_settings
from .k8s_settings import K8sLauncherSettings

LOG = logging.getLogger(__name__)
STATE_VERSION = 1


def load_batch_api() -> Any:
    """A `BatchV1Api` from the in-cluster service account, else from ~/.kube/config (blocking).
    Production code creates one in `main()` and passes it to every launcher."""
    from kubernetes import client

    return client.BatchV1Api(load_api_client())


class K8sLauncher(Launcher):
    """Starts, polls and deletes the scan's Job. State: `{"version", "launcher", "job_name",
    "namespace"}`; the Job name is also derived from the scan id, so a lost state is recoverable."""

    name = "k8s"

    def __init__(
        self,
        settings: Settings,
        scan_id: str,
        *,
        api: BatchApi | None = None,
        k8s_settings: K8sLauncherSettings | None = None,
    ) -> None:
        super().__init__(settings, scan_id)
        self.cfg = k8s_settings if k8s_settings is not None else K8sLauncherSettings()
        self.policy = RetryPolicy(
            self.cfg.api_timeout_s,
            self.cfg.api_retries,
            self.cfg.api_backoff_s,
            self.cfg.api_backoff_max_s,
        )
        self._api = api
        self.job_name: str | None = None
        self.namespace: str = self.cfg.namespace
        self._exit_code: int | None = None  # once the Job is seen finished, it stays finished
        self._polled_at: float | None = None

    async def _batch(self) -> BatchApi:
        if self._api is not None:
            return self._api
        api: BatchApi = await asyncio.to_thread(load_batch_api)
        self._api = api
        return api

    async def start(
        self, spec: InstanceSpec, skydriver_token: str, resources: ScanResources | None = None
    ) -> None:
        """Create the Job; returns once the API server accepted it (or already had it).

        The pods read SkyDriver's token from the deployment's Secret, not `skydriver_token`.
        `resources` overrides the scan's docker_tag and memory sizes (by default those of `spec`, and
        the settings' defaults where it has none). Raises `LaunchError` with reason
        quota/timeout/unreachable."""
        job = scan_job_from_settings(spec, self.settings, self.cfg, resources)
        assert job.metadata is not None and job.metadata.name is not None
        self.job_name = job.metadata.name
        self.namespace = self.cfg.namespace
        self._exit_code = None
        self._polled_at = None
        what = f"create Job {self.namespace}/{self.job_name}"
        try:
            api = await self._batch()
            await call_api(
                api.create_namespaced_job, self.namespace, job, what=what, policy=self.policy
            )
        except Exception as e:
            status = api_status(e)
            if status == 409:
                LOG.info(
                    "scan %s: %s: it exists already (earlier attempt); ours", self.scan_id, what
                )
                return
            if is_quota_refusal(e):
                raise LaunchError(
                    f"{what}: the namespace's Job quota is used up; the scan waits in the backlog "
                    f"and is retried after {self.cfg.quota_retry_delay_s:g}s (raise the "
                    "ResourceQuota count/jobs.batch to run more scans at once)",
                    reason="quota",
                ) from e
            if isinstance(e, TimeoutError):
                raise LaunchError(
                    f"{what}: no answer within {self.cfg.api_timeout_s:g}s after "
                    f"{self.cfg.api_retries} retries (SKYDRIVER_K8S_API_TIMEOUT_S)",
                    reason="timeout",
                ) from e
            if status is not None:
                raise LaunchError(
                    f"{what}: refused with HTTP {status}: {api_body(e)[:500]} (check "
                    "SkyDriver's RBAC Role and the Job settings SKYDRIVER_K8S_*)",
                    reason="unreachable",
                ) from e
            raise LaunchError(
                f"{what}: the Kubernetes API is unreachable: {describe_error(e)}",
                reason="unreachable",
            ) from e
        LOG.info("scan %s: created Job %s/%s", self.scan_id, self.namespace, self.job_name)

    async def poll(self) -> int | None:
        """None while the Job lives; 0/1 once it succeeded/failed; 0 if it is gone or never started.
        Reads the API at most every `poll_min_interval_s`; an API failure answers None (unknown is
        not dead)."""
        if self.job_name is None:
            return 0
        if self._exit_code is not None:
            return self._exit_code
        now = time.monotonic()
        if self._polled_at is not None and now - self._polled_at < self.cfg.poll_min_interval_s:
            return None
        what = f"read Job {self.namespace}/{self.job_name}"
        try:
            api = await self._batch()
            job = await call_api(
                api.read_namespaced_job,
                self.job_name,
                self.namespace,
                what=what,
                policy=self.policy,
            )
        except Exception as e:
            if api_status(e) == 404:
                self._exit_code = 0
                return 0
            LOG.warning(
                "scan %s: %s failed (%s); assuming alive", self.scan_id, what, describe_error(e)
            )
            return None
        self._polled_at = now
        self._exit_code = job_exit_code(job)
        return self._exit_code

    async def stop(self, now: bool = False) -> None:
        """Delete the Job with propagationPolicy Foreground (its pods go first; graceful: SIGTERM,
        then SIGKILL after the pod's grace period; `now` sets the grace period to 0). The Job then
        disappears asynchronously: poll() reports it until it is gone. A 404 means already gone.
        Safe to repeat; an API failure is logged, not raised (the watcher calls stop() again)."""
        if self.job_name is None:
            return
        what = f"delete Job {self.namespace}/{self.job_name}"
        try:
            api = await self._batch()
            await call_api(
                api.delete_namespaced_job,
                self.job_name,
                self.namespace,
                what=what,
                policy=self.policy,
                propagation_policy="Foreground",
                grace_period_seconds=0 if now else None,
            )
        except Exception as e:
            if api_status(e) == 404:
                return
            LOG.error("scan %s: %s failed: %s", self.scan_id, what, describe_error(e))
            return
        self._polled_at = None  # read again at the next poll
        LOG.info("scan %s: deleting Job %s/%s", self.scan_id, self.namespace, self.job_name)

    def get_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "launcher": self.name,
            "job_name": self.job_name,
            "namespace": self.namespace,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if state.get("launcher", self.name) != self.name:
            LOG.warning(
                "scan %s: state of launcher %r ignored by the k8s launcher",
                self.scan_id,
                state.get("launcher"),
            )
            return
        version = state.get("version")
        if version != STATE_VERSION:
            LOG.warning(
                "scan %s: launcher state version %r read as version %d",
                self.scan_id,
                version,
                STATE_VERSION,
            )
        name = state.get("job_name")
        self.job_name = str(name) if name else None
        self.namespace = str(state.get("namespace") or self.cfg.namespace)
        self._exit_code = None
        self._polled_at = None
