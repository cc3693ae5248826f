"""The WorkerBackend contract: start, watch, replace and stop one scan's workers."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field


class WorkerStatus(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    GONE = "GONE"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"


@dataclass
class Workforce:
    """What the backend's workers are doing (what SkyDriver's /status shows)."""

    statuses: Counter[str] = field(default_factory=Counter)
    top_errors: Counter[str] = field(default_factory=Counter)
    n_requested: int = 0

    @property
    def n_running(self) -> int:
        return self.statuses[WorkerStatus.RUNNING]

    @property
    def n_failed(self) -> int:
        return self.statuses[WorkerStatus.FAILED]

    @property
    def n_active(self) -> int:
        return self.statuses[WorkerStatus.RUNNING] + self.statuses[WorkerStatus.PENDING]


class WorkerBackend(ABC):
    name: str = ""

    @abstractmethod
    async def start(self, n_workers: int) -> None:
        """Submit `n_workers` workers; returns once they are submitted."""

    @abstractmethod
    async def add_workers(self, n: int) -> None:
        """`n` more workers for the running scan (`actions/add-workers`)."""

    @abstractmethod
    async def poll(self) -> Workforce:
        """Check the workers (replacing failed ones within the backend's bounds)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop every worker: graceful, then forceful. Safe to repeat."""
