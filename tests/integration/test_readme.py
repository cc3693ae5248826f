"""Every command block of README.md, run as written, so that the README cannot drift from the code.

How. The `bash` and `python` blocks not marked `<!-- readme-test: run by ... -->` (see tests/readme.py)
become one bash script, in the README's order, under `set -euo pipefail`; a python block runs as
`python - <<'README_PYTHON' ... README_PYTHON`, so that it sees what the bash before it exported. The
script runs in a scratch directory holding a link to `examples/`, with the venv's `bin` first on PATH, the
real database and broker, and a SkyDriver the script itself starts (`skydriver serve &`), stopped at the end.

What the test changes, and only this (SUBSTITUTIONS): port 8080 becomes a free port, and the nside
progression `8:0 64:12 512:24` (also written as JSON) becomes `1:0 2:12 4:12`, so that the physics scan takes
seconds. The environment adds a database of the test's own (dropped afterwards) and a scratch
`XDG_STATE_HOME`, and removes any SKYDRIVER_URL/SKYDRIVER_TOKEN of the caller.

Then it checks what the commands promise: the script succeeds, the saved result is a SkyScanResult, the
products directory holds the multi-order FITS map, the Python block printed its best fit, and nothing the
script started is left running."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
from pathlib import Path

import pytest

from tests.conftest import drop_database
from tests.helpers import REPO, wait_for
from tests.readme import Block, command_blocks

VENV_BIN = REPO / ".venv" / "bin"
SUBSTITUTIONS = (
    ("8080", "{port}"),
    ("8:0 64:12 512:24", "1:0 2:12 4:12"),
    ('{"8": 0, "64": 12, "512": 24}', '{"1": 0, "2": 12, "4": 12}'),
)
SCRIPT_TIMEOUT_S = 900


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def script_of(blocks: list[Block], port: int) -> str:
    parts = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT"]
    for block in blocks:
        text = block.text
        for old, new in SUBSTITUTIONS:
            text = text.replace(old, new.replace("{port}", str(port)))
        parts.append(f"# --- README.md line {block.line} ({block.language})")
        if block.language == "python":
            assert "README_PYTHON" not in text
            text = f"python - <<'README_PYTHON'\n{text}README_PYTHON\n"
        parts.append(text)
    return "\n".join(parts)


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def test_every_marked_block_is_run_by_the_test_it_names() -> None:
    for block in command_blocks():
        if block.run_by is None:
            continue
        runner = REPO / block.run_by
        assert runner.is_file(), f"README.md line {block.line}: {block.run_by} does not exist"
        assert f'blocks_run_by("{block.run_by}")' in runner.read_text(), (
            f"README.md line {block.line}: {block.run_by} does not run its README blocks"
        )


def test_the_parser_finds_the_blocks() -> None:
    blocks = command_blocks()
    assert {b.language for b in blocks} == {"bash", "python"}
    assert any("skydriver serve &" in b.text for b in blocks)
    assert all(b.text.strip() for b in blocks)


@pytest.mark.timeout(SCRIPT_TIMEOUT_S + 120)
async def test_every_readme_command_block_runs(tmp_path: Path) -> None:
    blocks = [b for b in command_blocks() if b.run_by is None]
    port = free_port()
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(REPO / "examples")
    database = f"test_readme_{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SKYDRIVER_URL", "SKYDRIVER_TOKEN", "VIRTUAL_ENV")
    }
    env.update(
        PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
        SKYDRIVER_PORT=str(port),
        SKYDRIVER_MONGODB_DATABASE=database,
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    script = script_of(blocks, port)
    (tmp_path / "readme.sh").write_text(script)  # kept for reading when this test fails
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(tmp_path / "readme.sh"),
        cwd=work,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        raw, _ = await asyncio.wait_for(proc.communicate(), SCRIPT_TIMEOUT_S)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        raw, _ = await proc.communicate()
        pytest.fail(
            f"the README's commands took over {SCRIPT_TIMEOUT_S} s:\n{raw.decode()[-5000:]}"
        )
    finally:
        await drop_database(database)
    output = raw.decode(errors="replace")
    print(output)  # what a reader of the README would see (shown with -s, or when an assert fails)
    assert proc.returncode == 0, f"the README's commands failed:\n{output[-8000:]}"

    from skyreader import SkyScanResult

    result = SkyScanResult.read_json(str(work / "result.json"))
    assert result.result  # the skymap of the CLI's scan
    assert list((work / "out-physics" / "products").glob("*.fits*")), output[-3000:]
    assert re.search(r"best fit \(RA, Dec\) in radians: \(", output), output[-3000:]
    assert json.loads((work / "manifest.json").read_text())["scan_id"]  # the curl POST

    async def nothing_left() -> bool:
        return not processes_mentioning(str(tmp_path))

    try:
        await wait_for(nothing_left, 60, "every process the README started to end")
    except AssertionError as e:
        raise AssertionError(f"{e}: {processes_mentioning(str(tmp_path))}") from None
