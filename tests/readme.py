"""The README's command blocks, for the tests that run them (`tests/integration/test_readme.py` runs every
block not marked otherwise).

A fenced block whose language is `bash` or `python` is a command block. A block that cannot run in the
README test (it needs a cluster or a browser that test does not start) is marked on the line before its
fence with `<!-- readme-test: run by tests/<path>.py -->`; that file must then run it, fetched with
`blocks_run_by("tests/<path>.py")`, and `test_readme.py` checks that it does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import REPO

README = REPO / "README.md"
LANGUAGES = ("bash", "python")
_MARK = re.compile(r"<!--\s*readme-test:\s*run by\s+(\S+)\s*-->")


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # of the opening fence, 1-based
    run_by: str | None  # a test file that runs it, if not test_readme.py


def command_blocks(readme: Path = README) -> list[Block]:
    lines = readme.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if fence.group(1) in LANGUAGES:
            mark = _MARK.search(lines[i - 1]) if i > 0 else None
            blocks.append(
                Block(
                    language=fence.group(1),
                    text="\n".join(lines[i + 1 : end]) + "\n",
                    line=i + 1,
                    run_by=mark.group(1) if mark else None,
                )
            )
        i = end + 1
    return blocks


def blocks_run_by(test_file: str) -> list[Block]:
    """The blocks marked to run in `test_file` (a path relative to the repository)."""
    return [b for b in command_blocks() if b.run_by == test_file]
