"""The core that `Client` and `AsyncClient` share, free of I/O: what each API call sends and how its answer is
read (`Call`), the retry policy, error mapping, redirects, and the waiting logic.

`exchange()` is a generator that plays one call: it yields `Send` (make this request) and `Sleep` (back off)
steps and is sent back the response or the transport error. The two clients only drive it, one with blocking
I/O and one with asyncio, so both behave the same by construction."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import httpx
from pydantic import ValidationError

from skyscan_contract.errors import (
    Forbidden,
    InvalidEvent,
    InvalidRequest,
    PayloadTooLarge,
    ScanConflict,
    ScanNotFound,
    SkyDriverError,
)

from ._errors import (
    ResultNotReady,
    ScanFailed,
    ServerError,
    ServiceUnavailable,
    UnexpectedResponse,
    WaitTimeout,
)
from ._models import Manifest, ScanProgress, ScanRequest, ScanStatus
from ._types import Filter, TimeoutInput

LOG = logging.getLogger("skydriver_client")
T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
MAX_REDIRECTS = 5
USER_AGENT = "skydriver-client/0.1"

#: failures that happen before the request left: safe to retry even for a POST that creates something
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: failures after which an idempotent request is retried
TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
RETRY_STATUSES = frozenset({500, 502, 503, 504})
STATUS_ERRORS: dict[int, type[SkyDriverError]] = {
    400: InvalidRequest,
    401: Forbidden,
    403: Forbidden,
    404: ScanNotFound,
    409: ScanConflict,
    413: PayloadTooLarge,
    422: InvalidEvent,
}
HINTS = {
    401: "pass a token: Client(token=...) or SKYDRIVER_TOKEN",
    404: "check the scan id; deleted scans need include_deleted=True",
}
#: what to do about a 403, by the reason SkyDriver gives after "authentication failed: " (or authorization)
FORBIDDEN_HINTS = {
    "no token": "pass a token: Client(token=...) or SKYDRIVER_TOKEN "
    "(`skydriver token issue` prints one where SkyDriver runs)",
    "malformed token": "the token is damaged or not a SkyDriver token: copy it whole",
    "bad signature": "the token was signed by another key: issue it where this SkyDriver runs, with its "
    "SKYDRIVER_STATE_DIR (or SKYDRIVER_AUTH_KEY_FILE)",
    "expired token": "issue a new token",
    "wrong role": "this needs another role: users' routes take a user token, scanners' a system token",
    "wrong scan": "the token is limited to another scan",
}


def forbidden_reason(message: str) -> str:
    """The reason of a 403's message ("authentication failed: expired token" → "expired token")."""
    return message.partition(": ")[2]


_SCAN_ID = re.compile(r"^\w+$")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: the request, whether it is safe to repeat, and how to read its JSON answer."""

    method: str
    path: str
    decode: Callable[[Any], T]
    params: Mapping[str, str] | None = None
    body: Any = None
    idempotent: bool = True


class Send(NamedTuple):
    method: str
    url: str
    params: Mapping[str, str] | None
    body: Any


class Sleep(NamedTuple):
    seconds: float


Reply = httpx.Response | httpx.TransportError | None


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `retries` more attempts after the first, `backoff_s` × 2^n apart (capped at `max_backoff_s`),
    with jitter: each wait is drawn from the upper half of that. Retried: connection failures before the
    request was sent (any call), and for idempotent calls also timeouts, broken connections, and 500, 502, 503
    and 504 answers."""

    retries: int = DEFAULT_RETRIES
    backoff_s: float = DEFAULT_BACKOFF_S
    max_backoff_s: float = MAX_BACKOFF_S

    def delay_s(self, attempt: int) -> float:
        cap = min(self.max_backoff_s, self.backoff_s * 2.0**attempt)
        return cap / 2 + random.uniform(0, cap / 2)

    def retry_error(self, call: Call[Any], error: httpx.TransportError, attempt: int) -> bool:
        if attempt >= self.retries:
            return False
        return isinstance(error, NOT_SENT) or (call.idempotent and isinstance(error, TRANSIENT))

    def retry_status(self, call: Call[Any], status: int, attempt: int) -> bool:
        return attempt < self.retries and call.idempotent and status in RETRY_STATUSES


def http_options(base_url: str, token: str | None, timeout: TimeoutInput) -> dict[str, Any]:
    """Keyword arguments for `httpx.Client`/`httpx.AsyncClient`: base URL, headers, timeouts, no redirects
    (the core follows them itself, keeping the method and the token on the same origin only)."""
    if not base_url.startswith(("http://", "https://")):
        raise InvalidRequest(f"base_url must start with http:// or https://, got {base_url!r}")
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return {
        "base_url": base_url.rstrip("/"),
        "headers": headers,
        "timeout": timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        "follow_redirects": False,
    }


def exchange(
    call: Call[T], policy: RetryPolicy, base_url: httpx.URL
) -> Generator[Send | Sleep, Reply, T]:
    """Play `call`: yields the requests to send and the waits between attempts; returns the decoded answer
    or raises the mapped error."""
    target, params = call.path, call.params
    attempt = hops = 0
    while True:
        reply = yield Send(call.method, target, params, call.body)
        if isinstance(reply, httpx.TransportError):
            if not policy.retry_error(call, reply, attempt):
                raise unreachable(call, base_url, reply, attempt + 1) from reply
            why = f"{type(reply).__name__}: {reply}"
        elif reply is None:
            raise RuntimeError("exchange() must be sent the reply to each Send step")
        elif reply.is_redirect:
            hops += 1
            target, params = redirect_target(reply, base_url, hops), None
            continue
        elif policy.retry_status(call, reply.status_code, attempt):
            why = f"HTTP {reply.status_code}"
        else:
            return decode(call, reply, attempt + 1)
        delay = policy.delay_s(attempt)
        tries = f"attempt {attempt + 2} of {policy.retries + 1}"
        LOG.warning("%s %s: %s; retrying in %.1fs (%s)", call.method, target, why, delay, tries)
        yield Sleep(delay)
        attempt += 1


def redirect_target(response: httpx.Response, base_url: httpx.URL, hops: int) -> str:
    """Where a redirect (a replaced scan answers 302 with its replacement's URL) points, if we follow it."""
    location = response.headers.get("Location", "")
    target = response.request.url.join(location)
    if hops > MAX_REDIRECTS:
        raise UnexpectedResponse(f"more than {MAX_REDIRECTS} redirects, the last to {target}")
    if (target.scheme, target.host, target.port) != (base_url.scheme, base_url.host, base_url.port):
        raise UnexpectedResponse(
            f"{response.request.method} {response.request.url} redirects to another server "
            f"({target}); not followed so the token is not sent there. Is base_url right?"
        )
    return str(target)


def decode(call: Call[T], response: httpx.Response, attempts: int) -> T:
    if not response.is_success:
        raise error_for(response, attempts)
    try:
        data = response.json()
    except ValueError as e:
        raise UnexpectedResponse(
            f"{call.method} {response.request.url} answered {response.status_code} with a body that is "
            f"not JSON ({response.text[:80]!r}); is base_url a SkyDriver?"
        ) from e
    try:
        return call.decode(data)
    except (ValidationError, KeyError, TypeError, ValueError) as e:
        raise UnexpectedResponse(
            f"{call.method} {response.request.url} answered something this client does not understand: {e}"
        ) from e


def error_for(response: httpx.Response, attempts: int = 1) -> SkyDriverError:
    """The error for a non-2xx answer: its class from the status, its message from `{"code", "error"}`."""
    status = response.status_code
    message = ""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            message = body["error"]
    except ValueError:
        pass
    message = message or response.reason_phrase or response.text[:200] or f"HTTP {status}"
    cls = STATUS_ERRORS.get(status) or (ServerError if status >= 500 else SkyDriverError)
    error = cls(message)
    error.status = status
    note = f"{response.request.method} {response.request.url} answered {status}"
    if attempts > 1:
        note += f" on each of {attempts} attempts"
    error.add_note(note)
    if status in HINTS:
        error.add_note(HINTS[status])
    elif status == 403 and (hint := FORBIDDEN_HINTS.get(forbidden_reason(message))):
        error.add_note(hint)
    return error


def unreachable(
    call: Call[Any], base_url: httpx.URL, error: httpx.TransportError, attempts: int
) -> ServiceUnavailable:
    tries = (
        f"after {attempts} attempts"
        if attempts > 1
        else "(not retried: the request may have been sent)"
    )
    return ServiceUnavailable(
        f"{call.method} {call.path} failed {tries}: {type(error).__name__}: {error or 'no detail'}; "
        f"check that SkyDriver runs at {base_url} (--url / SKYDRIVER_URL) and is reachable"
    )


# -- the calls -----------------------------------------------------------------------------------
def scan_path(scan_id: str, suffix: str = "") -> str:
    if not isinstance(scan_id, str) or not _SCAN_ID.match(scan_id):
        raise InvalidRequest(f"{scan_id!r} is not a scan id (letters, digits and '_' only)")
    return f"/scan/{scan_id}{suffix}"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def submit(request: ScanRequest) -> Call[Manifest]:
    # creates a scan: retried only when the request surely was not sent
    return Call("POST", "/scan", Manifest.model_validate, body=request.body(), idempotent=False)


def status(scan_id: str) -> Call[ScanStatus]:
    return Call("GET", scan_path(scan_id, "/status"), ScanStatus.model_validate)


def manifest(scan_id: str, include_deleted: bool = False) -> Call[Manifest]:
    params = {"include_deleted": _flag(include_deleted)}
    return Call("GET", scan_path(scan_id, "/manifest"), Manifest.model_validate, params)


def progress(scan_id: str) -> Call[ScanProgress]:
    def read(data: Any) -> ScanProgress:
        return ScanProgress.from_manifest(Manifest.model_validate(data))

    params = {"include_deleted": "true", "projection": "scan_id|progress"}
    return Call("GET", scan_path(scan_id, "/manifest"), read, params)


def result_json(scan_id: str, include_deleted: bool = False) -> Call[dict[str, Any]]:
    params = {"include_deleted": _flag(include_deleted)}
    return Call("GET", scan_path(scan_id, "/result"), _object, params)


def skyscan_result(scan_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """The serialized `SkyScanResult` in a result document, or ResultNotReady."""
    result = document.get("skyscan_result")
    if not isinstance(result, dict) or not result:
        error = ResultNotReady(f"scan {scan_id} has no result yet")
        error.add_note("wait() for it, then ask again")
        raise error
    return result


def find(
    filter: Filter, include_deleted: bool, projection: list[str] | None
) -> Call[list[Manifest]]:
    body = {
        "filter": dict(filter),
        "include_deleted": include_deleted,
        "manifest_projection": projection if projection else "*",
    }

    def read(data: Any) -> list[Manifest]:
        return [Manifest.model_validate(m) for m in _object(data)["manifests"]]

    return Call("POST", "/scans/find", read, body=body)  # a read: safe to repeat


def delete(scan_id: str, delete_completed_scan: bool) -> Call[Manifest]:
    body = {"delete_completed_scan": delete_completed_scan}

    def read(data: Any) -> Manifest:
        return Manifest.model_validate(_object(data)["manifest"])

    return Call("DELETE", scan_path(scan_id), read, body=body)  # deleting twice is harmless


def rescan(scan_id: str, abort_first: bool, replace_scan: bool) -> Call[Manifest]:
    body = {"abort_first": abort_first, "replace_scan": replace_scan}
    path = scan_path(scan_id, "/actions/rescan")
    return Call("POST", path, Manifest.model_validate, body=body, idempotent=False)


def add_workers(scan_id: str, n_workers: int, cluster_location: str) -> Call[dict[str, Any]]:
    body = {"n_workers": n_workers, "cluster_location": cluster_location}
    path = scan_path(scan_id, "/actions/add-workers")
    return Call("POST", path, _object, body=body, idempotent=False)


def scan_request(scan_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"/scan-request/{scan_id}", _object)


def backlog() -> Call[list[dict[str, Any]]]:
    def read(data: Any) -> list[dict[str, Any]]:
        return [_object(e) for e in _object(data)["entries"]]

    return Call("GET", "/scans/backlog", read)


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


# -- waiting -------------------------------------------------------------------------------------
class Waiter:
    """The decisions of `wait()`: when it is done, when it failed, and which progress is news."""

    def __init__(self, scan_id: str, poll_s: float, timeout_s: float | None) -> None:
        if poll_s <= 0:
            raise InvalidRequest(f"poll_s must be positive, got {poll_s}")
        self.scan_id = scan_id
        self.poll_s = poll_s
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self._last: ScanProgress | None = None

    def news(self, progress: ScanProgress, status: ScanStatus) -> ScanProgress | None:
        """`progress` with the current state if it changed since the last call, else None."""
        progress = progress.model_copy(update={"scan_state": status.scan_state})
        if progress == self._last:
            return None
        self._last = progress
        return progress

    def finished(self, status: ScanStatus) -> bool:
        """True once the final result is there; ScanFailed if the scan ended without one; WaitTimeout if
        the deadline passed."""
        if status.scan_complete:
            return True
        if status.failed:
            why = "it was deleted" if status.is_deleted else f"its state is {status.scan_state}"
            raise ScanFailed(f"scan {self.scan_id} ended without a final result: {why}", status)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise WaitTimeout(
                f"scan {self.scan_id} has no final result after {self.timeout_s:g}s "
                f"(state {status.scan_state}); it goes on, wait() again or check its status",
                status,
            )
        return False

    def sleep_s(self) -> float:
        if self.deadline is None:
            return self.poll_s
        return max(0.0, min(self.poll_s, self.deadline - time.monotonic()))
