"""SkyDriver's products process (`skydriver.runners.products.ProductWorkers`): stopping it never hangs."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from skydriver.runners.products import ProductWorkers
from tests.doubles import die_while_sending_a_result


async def test_a_child_killed_while_sending_a_result_does_not_hang_the_shutdown(
    tmp_path: Path,
) -> None:
    """A products process killed in the middle of sending a result (SkyDriver stopping during a build)
    left part of a message in the pool's result pipe; the pool waited for the rest for ever, and
    SkyDriver's shutdown with it (a teardown of the test suite hung 300 s on it)."""
    workers = ProductWorkers()
    started = tmp_path / "started"
    call = asyncio.create_task(
        workers.call(die_while_sending_a_result, str(started), timeout_s=600, kill_on_timeout=True)
    )
    deadline = time.monotonic() + 120
    while not started.exists():  # the child has written the start of a message
        assert time.monotonic() < deadline and not call.done(), "the products process did not start"
        await asyncio.sleep(0.05)
    assert workers._pool is not None
    result_pipe = workers._pool._result_queue._writer  # type: ignore[attr-defined]
    try:
        await asyncio.wait_for(workers.close(), 30)
    finally:  # let a broken version end too (else its stuck thread would hang pytest's exit)
        result_pipe.close()
    with pytest.raises(BrokenProcessPool):
        await call
