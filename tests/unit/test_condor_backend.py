"""CondorBackend against a scripted fake of `htcondor2.Schedd`, at the seam: submit/query/act/spool get
canned replies. No HTCondor pool exists here, so nothing is really submitted."""

from __future__ import annotations

import os

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")  # before htcondor2 is imported

import asyncio
import logging
import stat
from pathlib import Path
from typing import Any

import htcondor2
import pytest

from client_manager.backends.base import WorkerStatus
from client_manager.backends.condor import CondorBackend
from client_manager.backends.condor_submit import TOKEN_FILE_NAME
from skyscan_contract.errors import LaunchError
from skyscan_contract.settings import CondorWorkerSettings as CondorBackendSettings
from tests.doubles import Scripted

SCAN_ID = "18c0a1b2c3dx0123456789abcdef0123"
TOKEN = "rabbit-t0ken-VALUE"
STEP_TIMEOUT_S = 10.0


class FakeSubmitResult:
    def __init__(self, cluster: int) -> None:
        self._cluster = cluster

    def cluster(self) -> int:
        return self._cluster


class ScriptedSchedd(Scripted):
    """The schedd calls the backend makes, answered from a script."""

    def submit(self, description: Any, count: int = 0, spool: bool = False) -> Any:
        return self._reply("submit", description, count=count, spool=spool)

    def spool(self, result: Any) -> None:
        self._reply("spool", result)

    def query(self, constraint: str = "True", projection: list[str] | None = None) -> list[Any]:
        reply: list[Any] = self._reply("query", constraint=constraint, projection=projection)
        return reply

    def act(self, action: Any, job_spec: Any, reason: str | None = None) -> Any:
        return self._reply("act", action, job_spec, reason=reason)


def settings(**overrides: Any) -> CondorBackendSettings:
    values: dict[str, Any] = {
        "worker_image": "reg.example/skyscan:4.1.2",
        "worker_memory_bytes": 4_000_000_000,
        "worker_disk_bytes": 2_000_000_000,
        "worker_priority": 7,
        "broker_address": "rabbitmq.example.org",
        "broker_auth": TOKEN,
        "pixel_timeout_s": 600,
        "condor_schedd_timeout_s": 2.0,
    }
    values.update(overrides)
    return CondorBackendSettings(**values)


def backend(
    tmp_path: Path, schedd: ScriptedSchedd, stop_timeout_s: float = 0.5, **overrides: Any
) -> CondorBackend:
    startup = tmp_path / "startup.json"
    startup.write_text('{"scan_id": "x"}')
    return CondorBackend(
        settings(**overrides),
        SCAN_ID,
        startup,
        schedd=schedd,
        replacements_per_worker=2,
        stop_timeout_s=stop_timeout_s,
    )


async def run(coro: Any) -> Any:
    return await asyncio.wait_for(coro, STEP_TIMEOUT_S)


def ad(proc: int, status: int, cluster: int = 11, **extra: Any) -> dict[str, Any]:
    return {"ClusterId": cluster, "ProcId": proc, "JobStatus": status, **extra}


async def test_start_submits_n_procs_in_one_cluster(tmp_path: Path) -> None:
    schedd = ScriptedSchedd(submit=[FakeSubmitResult(11)], query=[[ad(i, 1) for i in range(4)]])
    b = backend(tmp_path, schedd)
    await run(b.start(4))
    ((_, (description,), kwargs),) = schedd.calls
    assert kwargs == {"count": 4, "spool": False}
    assert isinstance(description, htcondor2.Submit)
    assert description["universe"] == "container"
    assert description["priority"] == "7"
    assert description["request_memory"] == "3815MB"
    assert description["max_retries"] == "2"
    assert TOKEN not in str(description)
    assert b.clusters == {11: 4}
    assert b.n_requested == 4
    workforce = await run(b.poll())
    assert workforce.statuses == {WorkerStatus.PENDING: 4}


async def test_the_token_file_is_private(tmp_path: Path) -> None:
    schedd = ScriptedSchedd(submit=[FakeSubmitResult(11)])
    b = backend(tmp_path, schedd)
    await run(b.start(1))
    token = b.work_dir / TOKEN_FILE_NAME
    assert token.read_text() == TOKEN
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(b.work_dir.stat().st_mode) == 0o700
    description = schedd.calls[0][1][0]
    assert str(token.resolve()) in description["transfer_input_files"]


async def test_no_token_no_file(tmp_path: Path) -> None:
    schedd = ScriptedSchedd(submit=[FakeSubmitResult(11)])
    b = backend(tmp_path, schedd, broker_auth="")
    await run(b.start(1))
    assert not (b.work_dir / TOKEN_FILE_NAME).exists()
    assert "--token-file" not in schedd.calls[0][1][0]["arguments"]


async def test_spool_uploads_input_files(tmp_path: Path) -> None:
    result = FakeSubmitResult(11)
    schedd = ScriptedSchedd(submit=[result], spool=[None])
    b = backend(tmp_path, schedd, condor_spool=True)
    await run(b.start(2))
    assert schedd.names() == ["submit", "spool"]
    assert schedd.calls[0][2]["spool"] is True
    assert schedd.calls[1][1] == (result,)


async def test_poll_maps_job_status_and_hold_reasons(tmp_path: Path) -> None:
    hold = "Error from slot1@ep.example: Failed to pull docker image"
    schedd = ScriptedSchedd(
        submit=[FakeSubmitResult(11)],
        query=[
            [
                ad(0, 1),
                ad(1, 2),
                ad(2, 2),
                ad(3, 5, HoldReason=hold),
                ad(4, 5, HoldReason=hold),
                ad(5, 6),
                ad(6, 7),
                ad(7, 4, ExitCode=0),
                ad(8, 4, ExitCode=3),
                ad(9, 3),
            ]
        ],
    )
    b = backend(tmp_path, schedd)
    await run(b.start(12))
    w = await run(b.poll())
    _, _, kwargs = schedd.calls[1]
    assert kwargs["constraint"] == "ClusterId == 11"
    assert {"ClusterId", "ProcId", "JobStatus", "HoldReason"} <= set(kwargs["projection"])
    assert w.statuses == {
        WorkerStatus.PENDING: 2,  # idle + suspended
        WorkerStatus.RUNNING: 3,  # running + transferring output
        WorkerStatus.FAILED: 3,  # 2 held + 1 completed with exit code 3
        WorkerStatus.GONE: 4,  # completed ok + removed + 2 no longer in the queue
    }
    assert w.top_errors == {hold: 2, "exit code 3": 1}
    assert w.n_requested == 12
    assert w.n_active == 5


async def test_poll_failures_keep_the_last_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    schedd = ScriptedSchedd(
        submit=[FakeSubmitResult(11)],
        query=[[ad(0, 2), ad(1, 2)], RuntimeError("Failed to connect to schedd"), "hang"],
    )
    b = backend(tmp_path, schedd, condor_schedd_timeout_s=0.2)
    try:
        await run(b.start(2))
        first = await run(b.poll())
        with caplog.at_level(logging.WARNING):
            assert await run(b.poll()) is first
            assert await run(b.poll()) is first  # timed out
    finally:
        schedd.release.set()
    assert first.n_running == 2
    assert "last state kept" in caplog.text


async def test_add_workers_submits_another_cluster(tmp_path: Path) -> None:
    schedd = ScriptedSchedd(
        submit=[FakeSubmitResult(11), FakeSubmitResult(12)],
        query=[[ad(0, 2, cluster=11), ad(0, 1, cluster=12), ad(1, 1, cluster=12)]],
    )
    b = backend(tmp_path, schedd)
    await run(b.start(1))
    await run(b.add_workers(2))
    assert schedd.calls[1][2]["count"] == 2
    w = await run(b.poll())
    assert schedd.calls[2][2]["constraint"] == "ClusterId == 11 || ClusterId == 12"
    assert w.n_requested == 3
    assert w.statuses == {WorkerStatus.RUNNING: 1, WorkerStatus.PENDING: 2}


async def test_stop_removes_each_cluster_and_the_token(tmp_path: Path) -> None:
    schedd = ScriptedSchedd(
        submit=[FakeSubmitResult(11), FakeSubmitResult(12)],
        act=[{"TotalSuccess": 2}, {"TotalSuccess": 1}],
        query=[[], []],
    )
    b = backend(tmp_path, schedd)
    await run(b.start(2))
    await run(b.add_workers(1))
    await run(b.stop())
    acts = [c for c in schedd.calls if c[0] == "act"]
    assert [(a[1][0], a[1][1]) for a in acts] == [
        (htcondor2.JobAction.Remove, "ClusterId == 11"),
        (htcondor2.JobAction.Remove, "ClusterId == 12"),
    ]
    assert SCAN_ID in acts[0][2]["reason"]
    assert not (b.work_dir / TOKEN_FILE_NAME).exists()
    n = len(schedd.calls)
    await run(b.stop())  # safe to repeat: nothing left to do
    assert len(schedd.calls) == n


async def test_stop_force_removes_jobs_that_do_not_leave(tmp_path: Path) -> None:
    leaving = [ad(0, 3), ad(1, 3)]
    schedd = ScriptedSchedd(
        submit=[FakeSubmitResult(11)],
        act=[{}, {}],
        query=[leaving] * 50,
    )
    b = backend(tmp_path, schedd, stop_timeout_s=0.3)
    await run(b.start(2))
    await run(b.stop())
    acts = [c for c in schedd.calls if c[0] == "act"]
    assert [(a[1][0], a[1][1]) for a in acts] == [
        (htcondor2.JobAction.Remove, "ClusterId == 11"),
        (htcondor2.JobAction.RemoveX, "ClusterId == 11 && JobStatus == 3"),
    ]
    assert b.removed == {11}


async def test_stop_errors_are_logged_and_retried_next_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    schedd = ScriptedSchedd(
        submit=[FakeSubmitResult(11)],
        act=[RuntimeError("Failed to connect to schedd"), {}],
        query=[[]],
    )
    b = backend(tmp_path, schedd)
    await run(b.start(1))
    with caplog.at_level(logging.ERROR):
        await run(b.stop())
    assert "remove of cluster 11 failed" in caplog.text
    assert (b.work_dir / TOKEN_FILE_NAME).exists()  # jobs may still need it
    await run(b.stop())
    assert b.removed == {11}
    assert not (b.work_dir / TOKEN_FILE_NAME).exists()


async def test_submit_failures_are_launch_errors(tmp_path: Path) -> None:
    schedd = ScriptedSchedd(submit=[RuntimeError("Failed to connect to schedd"), "hang"])
    b = backend(tmp_path, schedd, condor_schedd_timeout_s=0.2)
    try:
        with pytest.raises(LaunchError) as info:
            await run(b.start(2))
        assert info.value.reason == "unreachable"
        with pytest.raises(LaunchError) as info:
            await run(b.start(2))
        assert info.value.reason == "timeout"
        assert "CLIENT_MANAGER_CONDOR_SCHEDD_TIMEOUT_S" in info.value.message
    finally:
        schedd.release.set()
    assert b.clusters == {}
    assert schedd.names() == ["submit", "submit"]  # a submit is never retried


async def test_poll_before_start_and_stop_before_start(tmp_path: Path) -> None:
    schedd = ScriptedSchedd()
    b = backend(tmp_path, schedd)
    assert (await run(b.poll())).n_active == 0
    await run(b.stop())
    assert schedd.calls == []


def test_settings_read_the_scanner_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIENT_MANAGER_WORKER_IMAGE", "img:1")
    monkeypatch.setenv("CLIENT_MANAGER_WORKER_PRIORITY", "100")
    monkeypatch.setenv("SKYSCAN_BROKER_ADDRESS", "mq.example")
    monkeypatch.setenv("SKYSCAN_BROKER_AUTH", "tok")
    monkeypatch.setenv("SKYSCAN_PIXEL_TIMEOUT_S", "42")
    s = CondorBackendSettings()
    assert (s.worker_image, s.worker_priority, s.broker_address) == ("img:1", 100, "mq.example")
    assert s.broker_auth.get_secret_value() == "tok"
    assert s.pixel_timeout_s == 42
    assert "tok" not in repr(s)
