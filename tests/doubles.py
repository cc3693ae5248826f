"""Test doubles: small launchers with scripted behaviour, injected into SkyDriver, and scripted fakes of the
Kubernetes and HTCondor client APIs where no cluster or pool exists (never mocks of the database, broker or
HTTP layer)."""

from __future__ import annotations

import threading
from typing import Any

from skydriver.launch.base import InstanceCredentials, Launcher
from skyscan_contract.instance import InstanceSpec


class Scripted:
    """A fake of a blocking client API at our code's seam (the Kubernetes API, an HTCondor schedd): each
    method answers with the next scripted reply for it (an exception is raised, "hang" blocks until
    `release` is set), and every call is recorded."""

    def __init__(self, **script: list[Any]) -> None:
        self.script = {name: list(replies) for name, replies in script.items()}
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.release = threading.Event()

    def _reply(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((method, args, kwargs))
        replies = self.script.get(method)
        if not replies:
            raise AssertionError(f"unexpected call {method}{args}{kwargs}")
        reply = replies.pop(0)
        if isinstance(reply, str) and reply == "hang":
            self.release.wait(5)
            return None
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


class HeldLauncher(Launcher):
    """Starts nothing and stays "running" until told to stop: scans stay where the test put them."""

    name = "held"
    started: list[InstanceSpec] = []

    async def start(self, spec: InstanceSpec, credentials: InstanceCredentials) -> None:
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

    async def start(self, spec: InstanceSpec, credentials: InstanceCredentials) -> None:
        raise RuntimeError("scripted start failure")
