"""Test doubles: small launchers with scripted behaviour, injected into SkyDriver, and scripted fakes of the
Kubernetes and HTCondor client APIs where no cluster or pool exists (never mocks of the database, broker or
HTTP layer)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
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


def hold_products_process(started: str, release: str, timeout_s: float = 120.0) -> str:
    """Run in SkyDriver's products process (`ProductWorkers.call`): it keeps the process busy, so that
    builds wait, until the test creates the file `release`; it creates `started` once it runs."""
    Path(started).touch()
    deadline = time.monotonic() + timeout_s
    while not Path(release).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} was not created within {timeout_s} s")
        time.sleep(0.02)
    return "released"


def die_while_sending_a_result(started: str) -> None:
    """Run in SkyDriver's products process: write the start of a result message to the pool's result
    pipe, as a child killed in the middle of sending a large result leaves it, then wait to be
    killed (it creates `started` once the partial message is written)."""
    import gc
    import os
    import struct
    from multiprocessing.queues import SimpleQueue

    (queue,) = [o for o in gc.get_objects() if isinstance(o, SimpleQueue)]
    os.write(queue._writer.fileno(), struct.pack("!i", 1_000_000) + b"part of a result")
    Path(started).touch()
    time.sleep(3600)
