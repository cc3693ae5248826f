"""The `k8s` launcher: one Kubernetes Job per scan (built by `k8s_objects.make_scan_job`).

Every API call goes through `skyscan_contract.k8s_api.call_api()`, the one place that decides what is
retried (shared with the client manager's k8s backend): a transient failure (HTTP 429/5xx, network error,
timeout) is retried a few times with exponential backoff and jitter. Every other answer goes back to the
caller at once, which decides what it means:

- create 409 Conflict: the Job is named from the scan id, so it is ours, created by an earlier attempt
  whose answer we lost; treated as success;
- create 403 "exceeded quota": `LaunchError(reason="quota")`; the backlog runner retries this scan after
  `quota_retry_delay_s` without blocking other scans (the original blocked its whole loop);
- poll 404: the Job vanished before it was seen finished: the scan failed (never a success);
- stop 404: the Job is gone already.

Once the Job exists, the scan's own Secret (its scoped SkyDriver token and broker password) is created,
owned by the Job; a Secret left by an earlier attempt is replaced. poll() reads the Job itself (`get` on
jobs, not the jobs/status subresource). SkyDriver's Role therefore needs create/get/list/delete on
batch/jobs and create/update on secrets (k8s/base/rbac.yaml).

Tested against a scripted fake `BatchV1Api` only: no Kubernetes cluster exists on the build machines."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

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
from .base import InstanceCredentials, Launcher
from .k8s_objects import (
    ScanResources,
    job_exit_code,
    make_scan_secret,
    scan_job_from_settings,
    secret_name,
)
from .k8s_settings import K8sLauncherSettings

if TYPE_CHECKING:
    from kubernetes.client import V1Secret

LOG = logging.getLogger(__name__)
STATE_VERSION = 1


class SecretApi(Protocol):
    """The part of `kubernetes.client.CoreV1Api` the launcher uses (the scan's own Secret)."""

    def create_namespaced_secret(
        self, namespace: str, body: V1Secret, *, _request_timeout: float | None = None
    ) -> V1Secret: ...

    def replace_namespaced_secret(
        self, name: str, namespace: str, body: V1Secret, *, _request_timeout: float | None = None
    ) -> V1Secret: ...


def load_apis() -> tuple[Any, Any]:
    """(BatchV1Api, CoreV1Api) from the in-cluster service account, else from ~/.kube/config
    (blocking). Made once, at the first launch, and shared by every launcher."""
    from kubernetes import client

    api_client = load_api_client()
    return client.BatchV1Api(api_client), client.CoreV1Api(api_client)


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
        core_api: SecretApi | None = None,
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
        self._core = core_api
        self.job_name: str | None = None
        self.namespace: str = self.cfg.namespace
        self._exit_code: int | None = None  # once the Job is seen finished, it stays finished
        self._polled_at: float | None = None

    async def _batch(self) -> BatchApi:
        if self._api is None:
            self._api, self._core = await asyncio.to_thread(load_apis)
        assert self._api is not None
        return self._api

    async def _secrets(self) -> SecretApi:
        await self._batch()
        assert self._core is not None
        return self._core

    async def start(
        self,
        spec: InstanceSpec,
        credentials: InstanceCredentials,
        resources: ScanResources | None = None,
    ) -> None:
        """Create the Job, then the scan's own Secret owned by it; returns once the API server
        accepted both (a Job from an earlier attempt is ours: its Secret is replaced).

        `resources` overrides the scan's docker_tag and memory sizes (by default those of `spec`, and
        the settings' defaults where it has none). Raises `LaunchError` with reason
        quota/timeout/unreachable."""
        job = scan_job_from_settings(
            spec, self.settings, self.cfg, resources, broker_address=credentials.broker.address
        )
        assert job.metadata is not None and job.metadata.name is not None
        self.job_name = job.metadata.name
        self.namespace = self.cfg.namespace
        self._exit_code = None
        self._polled_at = None
        what = f"create Job {self.namespace}/{self.job_name}"
        try:
            api = await self._batch()
            created = await call_api(
                api.create_namespaced_job, self.namespace, job, what=what, policy=self.policy
            )
        except Exception as e:
            status = api_status(e)
            if status == 409:
                LOG.info(
                    "scan %s: %s: it exists already (earlier attempt); ours", self.scan_id, what
                )
                created = await self._call(
                    f"read Job {self.namespace}/{self.job_name}",
                    api.read_namespaced_job,
                    self.job_name,
                    self.namespace,
                )
            else:
                raise self._launch_error(what, e) from e
        uid = created.metadata.uid if created.metadata is not None else None
        if not uid:
            raise LaunchError(f"{what}: the API server's answer has no uid", reason="unreachable")
        await self._put_secret(spec.scan_id, credentials, uid)
        LOG.info("scan %s: created Job %s/%s", self.scan_id, self.namespace, self.job_name)

    async def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return await call_api(fn, *args, what=what, policy=self.policy)
        except Exception as e:
            raise self._launch_error(what, e) from e

    async def _put_secret(self, scan_id: str, credentials: InstanceCredentials, uid: str) -> None:
        secret = make_scan_secret(
            scan_id,
            self.namespace,
            skydriver_token=credentials.skydriver_token,
            broker_password=credentials.broker.password,
            job_uid=uid,
        )
        core = await self._secrets()
        name = secret_name(scan_id)
        what = f"create Secret {self.namespace}/{name}"
        try:
            await call_api(
                core.create_namespaced_secret, self.namespace, secret, what=what, policy=self.policy
            )
        except Exception as e:
            if api_status(e) != 409:
                raise self._launch_error(what, e) from e
            await self._call(
                f"replace Secret {self.namespace}/{name}",
                core.replace_namespaced_secret,
                name,
                self.namespace,
                secret,
            )

    def _launch_error(self, what: str, e: BaseException) -> LaunchError:
        """THE mapping of a failed API call at start to a LaunchError with its reason."""
        status = api_status(e)
        if is_quota_refusal(e):
            return LaunchError(
                f"{what}: the namespace's Job quota is used up; the scan waits in the backlog "
                f"and is retried after {self.cfg.quota_retry_delay_s:g}s (raise the "
                "ResourceQuota count/jobs.batch to run more scans at once)",
                reason="quota",
            )
        if isinstance(e, TimeoutError):
            return LaunchError(
                f"{what}: no answer within {self.cfg.api_timeout_s:g}s after "
                f"{self.cfg.api_retries} retries (SKYDRIVER_K8S_API_TIMEOUT_S)",
                reason="timeout",
            )
        if status is not None:
            return LaunchError(
                f"{what}: refused with HTTP {status}: {api_body(e)[:500]} (check "
                "SkyDriver's RBAC Role and the Job settings SKYDRIVER_K8S_*)",
                reason="unreachable",
            )
        return LaunchError(
            f"{what}: the Kubernetes API is unreachable: {describe_error(e)}",
            reason="unreachable",
        )

    async def poll(self) -> int | None:
        """None while the Job lives (its pod's restarts included); 0/1 once it succeeded/failed; 1 if
        it vanished before it was seen finished (a failure, never a success); 0 if it never started.
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
                LOG.error("scan %s: its Job vanished before it finished: failed", self.scan_id)
                self._exit_code = 1
                return 1
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
