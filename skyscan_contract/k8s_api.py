"""Talking to the Kubernetes API, for SkyDriver's k8s launcher and the client manager's k8s backend.

`call_api()` is the one place that decides what is retried: a call runs in a thread (`asyncio.to_thread`;
the official client blocks) under `asyncio.wait_for`, and a transient failure (HTTP 429/5xx, network error,
timeout) is retried a few times with exponential backoff and jitter. Every other answer goes back to the
caller at once, which decides what it means (409 on create: ours from an earlier attempt; 404 on read or
delete: gone; 403 "exceeded quota": wait for room).

Nothing here imports the kubernetes package at import time: the client manager of a local scan never needs
it."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from kubernetes.client import V1Job

LOG = logging.getLogger(__name__)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")


class BatchApi(Protocol):
    """The part of `kubernetes.client.BatchV1Api` both users need (fakes implement just this)."""

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


def describe_error(exc: BaseException) -> str:
    """A short, log-safe description (status and reason; no response body or headers)."""
    status = api_status(exc)
    if status is not None:
        return f"HTTP {status} {getattr(exc, 'reason', '') or ''}".strip()
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


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


def load_api_client() -> Any:
    """A `kubernetes.client.ApiClient` from the pod's service account, else from ~/.kube/config
    (blocking). Each program makes one in `main()` (or at its first use) and passes it down."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()
