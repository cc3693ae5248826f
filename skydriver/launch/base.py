"""The Launcher contract (the shape of JupyterHub's Spawner): one object per scan instance."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ..settings import Settings


@dataclass(frozen=True)
class InstanceSpec:
    """What a scan instance needs: the scanner-server arguments and the workforce request."""

    scan_id: str
    reco_algo: str
    nsides: str  # "8:0 64:12 512:24"
    real_event: bool
    predictive_scanning_threshold: float
    n_workers: int
    max_pixel_reco_time: int
    priority: int = 0
    scanner_server_env: dict[str, str] = field(default_factory=dict)
    #: scanner version (image tag) and sizes from the request (0/"" = the launcher's defaults)
    docker_tag: str = ""
    scanner_server_memory_bytes: int = 0
    worker_memory_bytes: int = 0
    worker_disk_bytes: int = 0
    #: system token scoped to this scan, for the scanner server and client manager (never stored/logged)
    skydriver_token: str = field(default="", repr=False)

    def server_args(self) -> list[str]:
        return [
            "--reco-algo",
            self.reco_algo,
            "--nsides",
            *self.nsides.split(),
            "--real-event" if self.real_event else "--simulated-event",
            "--predictive-scanning-threshold",
            str(self.predictive_scanning_threshold),
        ]


class Launcher(ABC):
    """Starts, watches and stops one scan instance (scanner server + client manager).

    `start()` returns once the instance is submitted and can be found again; `poll()` is None while it
    lives and its exit status once gone; `stop()` is graceful then forceful and safe to repeat.
    `get_state()`/`load_state()` hold the few facts needed to find it again after a SkyDriver restart."""

    name: str = ""

    def __init__(self, settings: Settings, scan_id: str) -> None:
        self.settings = settings
        self.scan_id = scan_id

    @abstractmethod
    async def start(self, spec: InstanceSpec) -> None: ...

    @abstractmethod
    async def poll(self) -> int | None: ...

    @abstractmethod
    async def stop(self, now: bool = False) -> None: ...

    @abstractmethod
    def get_state(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None: ...
