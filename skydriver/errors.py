"""Errors of the service itself (its API errors are the contract's: `skyscan_contract.errors`)."""

from __future__ import annotations


class ServiceStartError(RuntimeError):
    """SkyDriver cannot start; the message says what to fix (`skydriver serve` prints it as one line)."""
