"""Test doubles: small launchers with scripted behaviour, injected into SkyDriver (never mocks of the
database, broker or HTTP layer)."""

from __future__ import annotations

from typing import Any

from skydriver.launch.base import InstanceSpec, Launcher


class HeldLauncher(Launcher):
    """Starts nothing and stays "running" until told to stop: scans stay where the test put them."""

    name = "held"
    started: list[InstanceSpec] = []

    async def start(self, spec: InstanceSpec) -> None:
        HeldLauncher.started.append(spec)
        self._stopped = False

    async def poll(self) -> int | None:
        return 0 if getattr(self, "_stopped", False) else None

    async def stop(self, now: bool = False) -> None:
        self._stopped = True

    def get_state(self) -> dict[str, Any]:
        return {"version": 1, "launcher": self.name}

    def load_state(self, state: dict[str, Any]) -> None:
        pass


class FailingLauncher(HeldLauncher):
    """Every start fails (for backlog retry tests)."""

    name = "failing"

    async def start(self, spec: InstanceSpec) -> None:
        raise RuntimeError("scripted start failure")
