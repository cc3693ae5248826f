"""The Launcher contract (the shape of JupyterHub's Spawner): one object per scan instance.

What an instance runs (argv and environment of the scanner server and the client manager) is not decided
here: every launcher asks `skyscan_contract.instance.build_instance()` with a `Deployment` made by
`deployment()` below, and only adds what its platform needs (processes, or a Kubernetes Job)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from skyscan_contract.instance import (
    Deployment,
    InstanceSpec,
    LocalWorkers,
    SecretRef,
    WorkerPlacement,
)

from ..broker import BrokerAccess
from ..settings import Settings


@dataclass(frozen=True)
class InstanceCredentials:
    """What one scan instance (and its workers) authenticates with: a SkyDriver token scoped to the
    scan, and the scan's own broker access. Never stored, never logged."""

    skydriver_token: str = field(repr=False)
    broker: BrokerAccess


def deployment(
    settings: Settings,
    *,
    skydriver_token: str | SecretRef,
    broker_address: str,
    broker_auth: str | SecretRef,
    startup_json: str,
    python: str = "python",
    cache_dir: str | None = None,
    workers: WorkerPlacement | None = None,
    server_exit_code_file: str | None = None,
) -> Deployment:
    """SkyDriver's part of every instance's environment (its URL, the broker, the report intervals) plus
    what the launcher says about its platform."""
    return Deployment(
        skydriver_url=settings.url,
        skydriver_token=skydriver_token,
        broker_type=settings.broker_type,
        broker_address=broker_address,
        broker_auth=broker_auth,
        kill_switch_check_interval_s=settings.scanner_kill_switch_check_interval_s,
        client_manager_poll_interval_s=settings.client_manager_poll_interval_s,
        progress_interval_s=settings.scanner_progress_interval_s,
        result_interval_s=settings.scanner_result_interval_s,
        startup_json=startup_json,
        python=python,
        cache_dir=cache_dir,
        workers=workers or LocalWorkers(),
        operator_env=settings.instance_env,
        server_exit_code_file=server_exit_code_file,
    )


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
    async def start(self, spec: InstanceSpec, credentials: InstanceCredentials) -> None:
        """Start the instance of `spec` with the scan's own credentials."""

    @abstractmethod
    async def poll(self) -> int | None: ...

    @abstractmethod
    async def stop(self, now: bool = False) -> None: ...

    @abstractmethod
    def get_state(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None: ...

    def exit_reason(self) -> str | None:
        """One line on why the ended instance failed (its scanner server's last error), recorded in the
        manifest so that nobody has to find a log file at 3 a.m.; None where the launcher cannot tell."""
        return None
