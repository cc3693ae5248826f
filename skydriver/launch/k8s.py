"""The `k8s` launcher: one Kubernetes Job per scan (built by `k8s_objects.make_scan_job`).

Every API call goes through `call_api()`, the one place that decides what is retried: a call runs in a
thread (`asyncio.to_thread`; the official client blocks) under `asyncio.wait_for`, and a transient failure
(HTTP 429/5xx, network error, timeout) is retried a few times with exponential backoff and jitter. Every
other answer goes back to the caller at once, which decides what it means:

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
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..errors import LaunchError
from ..settings import Settings
from .base import InstanceSpec, Launcher
from .k8s_objects import ScanResources, job_exit_code, scan_job_from_settings
from .k8s_settings import K8sLauncherSettings

if TYPE_CHECKING:
    from kubernetes.client import V1Job

LOG = logging.getLogger(__name__)
STATE_VERSION = 1
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")


class BatchApi(Protocol):
    """The part of `kubernetes.client.BatchV1Api` used here (fakes implement just this)."""

    def create_namespaced_job(
        self, namespace: str, body: V1Job, *, _request_timeout: float | None = None
    ) -> V1Job: ...

    def read_namespaced_job(
        self, name: str, namespace: str, *, _request_timeout: float | None = None
    ) -> V1Job: ...

    def delete_namespaced_job(
        self,
        name: str,
        namespace: str,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        _request_timeout: float | None = None,
    ) -> object: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Timeout of one call, and how transient failures are retried."""

    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: uniform in [d/2, d], d = min(max, base * 2^attempt)."""
        d = min(self.backoff_max_s, self.backoff_s * 2.0**attempt)
        return d / 2 + random.random() * d / 2  # jitter, not crypto

    @classmethod
    def from_settings(cls, cfg: K8sLauncherSettings) -> RetryPolicy:
        return cls(cfg.api_timeout_s, cfg.api_retries, cfg.api_backoff_s, cfg.api_backoff_max_s)


def api_status(exc: BaseException) -> int | None:
    """The HTTP status of a `kubernetes.client.ApiException` (duck-typed), else None."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) and status > 0 else None


def api_body(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return str(body or "")


def is_quota_refusal(exc: BaseException) -> bool:
    """A 403 from a ResourceQuota (e.g. `count/jobs.batch`): 'exceeded quota' in the answer."""
    return api_status(exc) == 403 and "exceeded quota" in api_body(exc)


def is_retryable(exc: BaseException) -> bool:
    """THE retry decision: timeouts, network errors, HTTP 429 and 5xx are transient; nothing else."""
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    status = api_status(exc)
    if status is not None:
        return status in RETRYABLE_STATUS
    try:
        from urllib3.exceptions import HTTPError as Urllib3Error
    except ImportError:  # pragma: no cover - urllib3 comes with the kubernetes client
        return False
    return isinstance(exc, Urllib3Error)


async def call_api(
    fn: Callable[..., T],
    /,
    *args: Any,
    what: str,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    **kwargs: Any,
) -> T:
    """`fn(*args, **kwargs, _request_timeout=...)` in a thread, under a timeout, retried while
    `is_retryable()`. Raises the last error (TimeoutError on a timeout); `what` names the call in logs.
    `sleep` waits between attempts (injectable for tests)."""
    attempt = 0
    while True:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(fn, *args, _request_timeout=policy.timeout_s, **kwargs),
                policy.timeout_s,
            )
        except Exception as e:
            if not is_retryable(e) or attempt >= policy.retries:
                raise
            delay = policy.delay(attempt)
            attempt += 1
            LOG.warning(
                "%s failed (%s); retry %d/%d in %.1fs",
                what,
                describe_error(e),
                attempt,
                policy.retries,
                delay,
            )
            await sleep(delay)


def describe_error(exc: BaseException) -> str:
    """A short, log-safe description (status and reason; no response body or headers)."""
    status = api_status(exc)
    if status is not None:
        return f"HTTP {status} {getattr(exc, 'reason', '') or ''}".strip()
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


def load_batch_api() -> Any:
    """A `BatchV1Api` from the in-cluster service account, else from ~/.kube/config (blocking).
    Production code creates one in `main()` and passes it to every launcher."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.BatchV1Api()


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
        self.policy = RetryPolicy.from_settings(self.cfg)
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

    async def start(self, spec: InstanceSpec, resources: ScanResources | None = None) -> None:
        """Create the Job; returns once the API server accepted it (or already had it).

        `resources` overrides the scan's docker_tag and memory sizes (by default those of `spec`, and
        the settings' defaults where it has none). Raises `LaunchError` with reason
        quota/timeout/unreachable."""
        resources = resources or ScanResources.from_request(dataclasses.asdict(spec), self.cfg)
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
