"""Errors shared by SkyDriver and its client library.

```
SkyDriverError            the request failed; `status` is the HTTP status it is served with
├── InvalidRequest        400  a field or value is wrong (the message names it)
├── Forbidden             403  no valid token, or the token may not do this
├── ScanNotFound          404  no such scan (or it was deleted)
├── ScanConflict          409  the scan's state does not allow this write
├── PayloadTooLarge       413  the request body is too large
├── InvalidEvent          422  the event cannot be read for the requested reconstruction
└── UnprocessableAction   422  a well-formed action the scan's state does not allow

LaunchError               a scan instance or its workers could not be started (no HTTP status: it is
                          never answered to a request; `reason` says what to do about it)
```
"""

from __future__ import annotations

from typing import Literal

LaunchFailure = Literal["timeout", "quota", "image", "unreachable"]


class SkyDriverError(Exception):
    """Root of the errors a SkyDriver request can end with; `status` is its HTTP status."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(SkyDriverError):
    status = 400


class Forbidden(SkyDriverError):
    status = 403


class ScanNotFound(SkyDriverError):
    status = 404


class ScanConflict(SkyDriverError):
    status = 409


class PayloadTooLarge(SkyDriverError):
    status = 413


class InvalidEvent(SkyDriverError):
    status = 422


class UnprocessableAction(SkyDriverError):
    """A well-formed request the scan's current state does not allow (e.g. adding workers to a deleted
    scan)."""

    status = 422


class LaunchError(Exception):
    """A scan instance (or a scan's workers) could not be started. `reason` is one of timeout, quota,
    image, unreachable: a quota refusal is retried without counting as an attempt."""

    def __init__(self, message: str, reason: LaunchFailure = "unreachable") -> None:
        super().__init__(message)
        self.message = message
        self.reason: LaunchFailure = reason
