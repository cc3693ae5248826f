"""Errors shared by the server and the client library. Each maps to one HTTP status."""

from __future__ import annotations


class SkyDriverError(Exception):
    """Root of SkyDriver's errors; `status` is the HTTP status it is served with."""

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


class LaunchError(SkyDriverError):
    """A scan instance could not be started; `reason` is one of timeout, quota, image, unreachable."""

    def __init__(self, message: str, reason: str = "unreachable") -> None:
        super().__init__(message)
        self.reason = reason
