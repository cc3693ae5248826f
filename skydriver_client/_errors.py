"""The client's errors: one tree, rooted at `SkyDriverError`, shared with the server.

```
SkyDriverError                    root; catch this to catch everything the client raises on purpose
├── InvalidRequest      (400)     the server rejected the request: a bad field, a deleted scan's guard, ...
├── Forbidden           (403)     no token, a bad token, or a token without the role (401 maps here too)
├── ScanNotFound        (404)     no scan with this id (or it was deleted and include_deleted was false)
├── ScanConflict        (409)     the request conflicts with the scan's current state
├── PayloadTooLarge     (413)     the request body (usually the event) is too large
├── InvalidEvent        (422)     the event cannot be read, or the scan cannot take this action now
├── ServiceUnavailable  (503)     client: no usable answer after the retries (connection refused, timed out)
│   └── ServerError     (5xx)     client: the service kept answering 5xx
├── UnexpectedResponse            client: the answer could not be understood (not JSON, wrong shape)
├── ResultNotReady                client: the scan has no result yet, not even a partial one
├── ScanFailed                    client: `wait()` saw the scan end without a final result
└── WaitTimeout                   client: `wait()` gave up after its `timeout_s`
```

Errors mapped from an HTTP answer carry the status in `status` and the server's `{"code", "error"}` message in
`message` (also `str(err)`); a note (`err.__notes__`, shown in tracebacks) names the method, URL and status.
Errors raised by the client itself have `status = 0`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skyscan_contract.errors import SkyDriverError

if TYPE_CHECKING:
    from ._models import ScanStatus


class ServiceUnavailable(SkyDriverError):
    """SkyDriver could not be reached, or the connection broke, on every attempt (`status` is nominal)."""

    status = 503


class ServerError(ServiceUnavailable):
    """SkyDriver answered with a 5xx status on every attempt; `status` is the last one."""

    status = 500


class UnexpectedResponse(SkyDriverError):
    """The answer was not what this client understands: not JSON, the wrong shape, or a redirect it will not
    follow (to another host, or too many). Often a proxy or a wrong `base_url`."""

    status = 0


class ResultNotReady(SkyDriverError):
    """The scan exists but has no result yet, not even a partial one. `wait()` for it first."""

    status = 0


class _WaitEnded(SkyDriverError):
    """`wait()` stopped without a final result; `status_doc` is the last `ScanStatus` seen."""

    status = 0

    def __init__(self, message: str, status_doc: ScanStatus) -> None:
        super().__init__(message)
        self.status_doc = status_doc


class ScanFailed(_WaitEnded):
    """The scan ended (aborted, deleted, or its instance stopped) without a final result. `status_doc` is the
    last `ScanStatus` seen."""


class WaitTimeout(_WaitEnded):
    """`wait()` ran out of time before the scan had its final result; the scan goes on. `status_doc` is the
    last `ScanStatus` seen."""
