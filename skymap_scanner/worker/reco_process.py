"""Runs reconstructions in a child process so that a per-pixel timeout can really stop the work (a thread
cannot be killed). The child lives across pixels, so the per-pixel cost is one pipe round trip.

A pixel's clock starts once the child has said it is ready (its imports and the reconstruction's set-up
done): on a loaded machine, starting a child after a timeout killed the previous one can take longer than
a short pixel timeout, and that time is not the next pixel's fault."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import time
import traceback
from typing import Any

from skyscan_contract.messages import PixelTask, RecoPixelVariation

from ..recos import StartupData, get_reco

LOG = logging.getLogger(__name__)


class RecoFailed(Exception):
    """The reconstruction raised; the message holds the last line of its traceback."""


class RecoTimeout(RecoFailed):
    """The reconstruction ran past the per-pixel timeout and was killed."""


#: how long a starting child may take to get ready (imports, reading the event) before it counts as failed
STARTUP_TIMEOUT_S = 300.0


def _child_main(conn: multiprocessing.connection.Connection, startup_json: str) -> None:
    try:
        startup = StartupData.model_validate_json(startup_json)
        reco = get_reco(startup.reco_algo)(startup)
    except Exception as e:  # e.g. an event the reconstruction cannot read: the worker reports it
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"))
        return
    conn.send(("ready", ""))
    while True:
        try:
            task_json = conn.recv()
        except (EOFError, ConnectionResetError):  # the worker is gone (a kill resets the pipe)
            return
        try:
            result = reco.reconstruct(PixelTask.model_validate_json(task_json))
            conn.send(("ok", result.model_dump_json()))
        except Exception as e:  # any reco error goes back to the worker, which retries/reports it
            tb = traceback.format_exc(limit=5)
            conn.send(("error", f"{type(e).__name__}: {e}\n{tb}"))


class RecoProcess:
    """A persistent child running one scan's reconstruction."""

    def __init__(self, startup: StartupData) -> None:
        self._startup_json = startup.model_dump_json()
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._ready = False

    def start(self) -> None:
        """Start the child now (it imports the reconstruction while the worker connects)."""
        if self._proc is None or not self._proc.is_alive():
            self._start()

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(
            target=_child_main, args=(child, self._startup_json), daemon=True
        )
        self._proc.start()
        child.close()
        self._conn = parent
        self._ready = False

    def kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn, self._ready = None, None, False

    async def _readable(self, timeout_s: float) -> bool:
        """Wait until the child has answered (the pipe is readable), without a thread hop."""
        assert self._conn is not None
        if self._conn.poll(0):
            return True
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self._conn.fileno()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            await asyncio.wait_for(ready, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(fd)

    def _receive(self) -> tuple[str, str]:
        assert self._conn is not None
        try:
            status, payload = self._conn.recv()
        except (EOFError, ConnectionResetError) as e:
            self.kill()
            raise RecoFailed(f"reconstruction process died: {e!r}") from e
        return str(status), str(payload)

    async def _wait_ready(self) -> None:
        """Wait for a (re)started child to finish its set-up; its failure is the pixel's failure."""
        if not await self._readable(STARTUP_TIMEOUT_S):
            self.kill()
            raise RecoTimeout(f"the reconstruction did not start within {STARTUP_TIMEOUT_S:g}s")
        status, payload = self._receive()
        if status != "ready":
            self.kill()
            raise RecoFailed(payload)
        self._ready = True

    async def run(
        self, task: PixelTask, timeout_s: float, tick_s: float
    ) -> tuple[RecoPixelVariation, float]:
        """Reconstruct, waking every `tick_s` to check the deadline. Returns (result, runtime)."""
        self.start()
        if not self._ready:
            await self._wait_ready()
        assert self._conn is not None
        start = time.monotonic()
        self._conn.send(task.model_dump_json())
        while True:
            remaining = timeout_s - (time.monotonic() - start)
            if remaining <= 0:
                self.kill()
                raise RecoTimeout(f"[Timeout-Error] timed out after {timeout_s:g}s")
            if await self._readable(min(tick_s, remaining)):
                break
        status, payload = self._receive()
        runtime = time.monotonic() - start
        if status == "ok":
            return RecoPixelVariation.model_validate_json(payload), runtime
        raise RecoFailed(payload)
