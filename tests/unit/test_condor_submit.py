"""HTCondor submit descriptions built through `htcondor2.Submit` (no schedd, no pool: nothing is submitted),
and the worker entry shim that turns the transferred token file into SKYSCAN_BROKER_AUTH."""

from __future__ import annotations

import os

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")  # before htcondor2 is imported

from pathlib import Path
from typing import Any

import htcondor2
import pytest

from client_manager.backends import condor_submit as cs

SCAN_ID = "18c0a1b2c3dx0123456789abcdef0123"
TOKEN_VALUE = "rabbit-t0ken-VALUE-never-in-a-job-ad"


def submit(tmp_path: Path, **overrides: Any) -> htcondor2.Submit:
    values: dict[str, Any] = {
        "image": "reg.example/skyscan:4.1.2",
        "startup_json": tmp_path / "startup.json",
        "token_file": tmp_path / "condor" / cs.TOKEN_FILE_NAME,
        "memory_bytes": 6_000_000_000,
        "disk_bytes": 1_000_000_000,
        "priority": 100,
        "broker_type": "rabbitmq",
        "broker_address": "skyscan@rabbitmq.example.org:5672/skyscan",
        "pixel_timeout_s": 900.0,
        "log_dir": tmp_path / "condor",
        "requirements": "has_avx && has_avx2",
        "max_runtime_s": 86400,
        "max_retries": 3,
    }
    values.update(overrides)
    return cs.make_submit(SCAN_ID, **values)


def test_container_universe_with_the_client_image(tmp_path: Path) -> None:
    sub = submit(tmp_path)
    assert isinstance(sub, htcondor2.Submit)
    assert sub["universe"] == "container"
    assert sub["container_image"] == "docker://reg.example/skyscan:4.1.2"
    assert sub["executable"] == "/opt/venv/bin/python"
    assert sub["transfer_executable"] == "false"


def test_requests_from_the_scan_request(tmp_path: Path) -> None:
    sub = submit(tmp_path)
    assert sub["request_cpus"] == "1"
    # 6e9 bytes = 5722.05 MiB -> 5723 (HTCondor's MB is 2^20 bytes, rounded up)
    assert sub["request_memory"] == "5723MB"
    assert sub["request_disk"] == "954MB"
    assert sub["priority"] == "100"
    assert sub["requirements"] == "has_avx && has_avx2"
    assert sub["max_retries"] == "3"
    assert sub["allowed_job_duration"] == "86400"
    assert sub["MY.SkyScanId"] == f'"{SCAN_ID}"'
    assert sub["JobBatchName"] == f'"skyscan-{SCAN_ID}"'


def test_priority_follows_the_scan(tmp_path: Path) -> None:
    assert submit(tmp_path, priority=0)["priority"] == "0"
    assert submit(tmp_path, priority=-5)["priority"] == "-5"


def test_no_requirements_line_without_requirements(tmp_path: Path) -> None:
    assert "requirements" not in submit(tmp_path, requirements="")


def test_startup_json_and_token_file_are_transferred(tmp_path: Path) -> None:
    sub = submit(tmp_path)
    inputs = [p.strip() for p in sub["transfer_input_files"].split(",")]
    assert inputs == [
        str((tmp_path / "startup.json").resolve()),
        str((tmp_path / "condor" / cs.TOKEN_FILE_NAME).resolve()),
    ]
    assert sub["should_transfer_files"] == "YES"
    assert sub["transfer_output_files"] == ""
    assert sub["arguments"] == (
        f'"-m client_manager.backends.condor_submit --token-file {cs.TOKEN_FILE_NAME} '
        '--client-startup-json startup.json"'
    )


def test_environment_has_the_broker_but_never_its_token(tmp_path: Path) -> None:
    sub = submit(tmp_path)
    env = sub["environment"]
    assert "SKYSCAN_BROKER_ADDRESS='skyscan@rabbitmq.example.org:5672/skyscan'" in env
    assert "SKYSCAN_BROKER_TYPE='rabbitmq'" in env
    assert "SKYSCAN_PIXEL_TIMEOUT_S='900'" in env
    text = str(sub)
    assert "SKYSCAN_BROKER_AUTH" not in text
    assert TOKEN_VALUE not in text


def test_without_a_token_there_is_no_token_file(tmp_path: Path) -> None:
    sub = submit(tmp_path, token_file=None)
    assert cs.TOKEN_FILE_NAME not in str(sub)
    assert "--token-file" not in sub["arguments"]


def test_token_file_must_have_the_name_the_shim_expects(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=cs.TOKEN_FILE_NAME):
        submit(tmp_path, token_file=tmp_path / "token.txt")


def test_the_description_parses_back_to_the_same_commands(tmp_path: Path) -> None:
    sub = submit(tmp_path)
    again = htcondor2.Submit(str(sub))
    assert dict(again) == dict(sub)
    assert str(sub).rstrip().endswith("queue")


def test_log_files_per_proc(tmp_path: Path) -> None:
    sub = submit(tmp_path)
    assert sub["output"].endswith("worker-$(ClusterId).$(ProcId).out")
    assert sub["log"] == str(tmp_path / "condor" / "workers.log")


@pytest.mark.parametrize(
    ("image", "url"),
    [
        ("reg.example/skyscan:4.1.2", "docker://reg.example/skyscan:4.1.2"),
        ("docker://x/y:1", "docker://x/y:1"),
        ("osdf:///icecube/skyscan.sif", "osdf:///icecube/skyscan.sif"),
        (
            "/cvmfs/icecube.opensciencegrid.org/containers/skyscan:4",
            "/cvmfs/icecube.opensciencegrid.org/containers/skyscan:4",
        ),
    ],
)
def test_container_image_url(image: str, url: str) -> None:
    assert cs.container_image_url(image) == url


def test_environment_quoting() -> None:
    assert cs.condor_environment({"A": "1", "B": "two words", "C": 'it\'s "q"'}) == (
        "\"A='1' B='two words' C='it''s \"\"q\"\"'\""
    )
    for bad in ("", "A=B", "A B"):
        with pytest.raises(ValueError, match="invalid environment variable name"):
            cs.condor_environment({bad: "x"})
    parsed = htcondor2.Submit({"environment": cs.condor_environment({"X": "a b"})})
    assert parsed["environment"] == "\"X='a b'\""


def test_arguments_quoting() -> None:
    assert cs.condor_arguments(["-m", "a b", "it's"]) == "\"-m 'a b' 'it''s'\""


@pytest.mark.parametrize(("n", "mb"), [(1, 1), (2**20, 1), (2**20 + 1, 2), (8_000_000_000, 7630)])
def test_megabytes(n: int, mb: int) -> None:
    assert cs.megabytes(n) == mb


# ---------------------------------------------------------------- the worker entry shim


class Exec(Exception):
    pass


def test_shim_reads_removes_the_token_and_execs_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / cs.TOKEN_FILE_NAME
    token.write_text(TOKEN_VALUE + "\n")
    seen: dict[str, Any] = {}

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        seen.update(path=path, argv=argv, env=env)
        raise Exec

    monkeypatch.setattr(cs.os, "execve", fake_execve)
    with pytest.raises(Exec):
        cs.worker_main(["--token-file", str(token), "--client-startup-json", "startup.json"])
    assert seen["argv"][1:] == [
        "-m",
        "skymap_scanner",
        "worker",
        "--client-startup-json",
        "startup.json",
    ]
    assert seen["env"]["SKYSCAN_BROKER_AUTH"] == TOKEN_VALUE
    assert not token.exists()
    assert (
        "SKYSCAN_BROKER_AUTH" not in os.environ or os.environ["SKYSCAN_BROKER_AUTH"] != TOKEN_VALUE
    )


def test_shim_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        seen.update(argv=argv, env=env)
        raise Exec

    monkeypatch.setattr(cs.os, "execve", fake_execve)
    monkeypatch.delenv("SKYSCAN_BROKER_AUTH", raising=False)
    with pytest.raises(Exec):
        cs.worker_main(["--client-startup-json", "s.json"])
    assert "SKYSCAN_BROKER_AUTH" not in seen["env"]
    assert seen["argv"][-1] == "s.json"
