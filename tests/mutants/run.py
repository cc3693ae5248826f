"""Apply each curated mutant to a scratch copy of the repository and run the tests that must catch it.

A mutant is a `*.patch` file in this directory: a header of `# key: value` lines, then a `git diff`.

    # breaks: the worker acknowledges a pixel before it publishes the result
    # caught-by: tests/integration/test_worker_loop.py::test_a_result_is_published_before_its_pixel_is_acknowledged
    diff --git a/skymap_scanner/worker/loop.py b/skymap_scanner/worker/loop.py
    ...

`caught-by` may be repeated (or list several node ids separated by spaces): all of them are run, and the
mutant is killed when pytest reports a failed test (errors alone, say a fixture that could not reach the
broker, do not count). A mutant that no longer applies (the code moved on) is an error, not a pass:
regenerate it. Before the mutants, the union of the named tests is run once on the unmodified copies: a
test that fails there would "kill" every mutant and prove nothing.

Each copy (two by default, `--jobs`) holds the files `git ls-files` lists (as they are in the work tree,
uncommitted edits included) and a link to the worktree's `.venv`; pytest runs from the copy with
`python -m pytest` and `PYTHONPATH` set to it, and the runner checks first that every package imports from
the copy, not from the editable install.

Usage: `python tests/mutants/run.py [MUTANT ...]` (names without `.patch`, or paths to patch files; none:
every mutant here; `--jobs` copies try mutants side by side, 2 by default). `make mutants` runs all of them.
Exit status 0 when every mutant was killed."""

from __future__ import annotations

import argparse
import dataclasses
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PACKAGES = ("skydriver", "skymap_scanner", "client_manager", "skyscan_contract", "skydriver_client")
#: a mutant whose tests run longer than this is reported as a timeout (not as killed)
MUTANT_TIMEOUT_S = 600
#: directories linked (not copied) into the scratch copy: the venv, and the npm schema package the
#: notice tests validate against
LINKED = (".venv", ".state/npm")


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    path: Path
    breaks: str
    caught_by: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: str  # "killed", "SURVIVED", "DOES NOT APPLY", "ERROR (...)", "TIMEOUT"
    seconds: float
    output: str

    @property
    def killed(self) -> bool:
        return self.status == "killed"


class MutantError(Exception):
    """A mutant file that cannot be used (no header, no tests named)."""


def read_mutant(path: Path) -> Mutant:
    """The header of a patch file: `# breaks:` once, `# caught-by:` at least once, before the diff."""
    breaks: list[str] = []
    caught_by: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("diff --git"):
            break
        if not line.startswith("#"):
            continue
        key, _, value = line[1:].partition(":")
        if key.strip() == "breaks":
            breaks.append(value.strip())
        elif key.strip() == "caught-by":
            caught_by.extend(value.split())
    if len(breaks) != 1 or not caught_by:
        raise MutantError(f"{path}: needs one '# breaks: ...' and '# caught-by: tests/...' lines")
    for node in caught_by:
        if not node.startswith("tests/") or not (REPO / node.split("::")[0]).is_file():
            raise MutantError(f"{path}: caught-by {node!r} is not a test file of this repository")
    return Mutant(name=path.stem, path=path, breaks=breaks[0], caught_by=tuple(caught_by))


def all_mutants() -> list[Path]:
    return sorted(HERE.glob("*.patch"))


def resolve(names: list[str]) -> list[Path]:
    if not names:
        return all_mutants()
    paths = []
    for name in names:
        path = Path(name) if name.endswith(".patch") else HERE / f"{name}.patch"
        if not path.is_file():
            raise MutantError(f"no mutant {name!r} ({path})")
        paths.append(path.resolve())
    return paths


def copy_repository(scratch: Path) -> None:
    """The tracked files, as they are in the work tree, plus links to what the tests need but git
    does not track."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        rel = raw.decode()
        source = REPO / rel
        if not source.is_file():  # deleted in the work tree, not yet in the index
            continue
        target = scratch / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for rel in LINKED:
        if (REPO / rel).exists():
            (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
            (scratch / rel).symlink_to(REPO / rel)


def environment(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(scratch)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # the shared data live beside the repository, not beside the scratch copy
    env.setdefault("SKYDRIVER_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    return env


def python(scratch: Path) -> str:
    return str(scratch / ".venv" / "bin" / "python")


def check_imports_resolve_to(scratch: Path, env: dict[str, str]) -> None:
    """The editable install points at the worktree: make sure the copy wins, or the mutants prove nothing."""
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    print(importlib.import_module(name).__file__)"
    found = subprocess.run(
        [python(scratch), "-c", code, *PACKAGES],
        cwd=scratch,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    outside = [f for f in found if not Path(f).resolve().is_relative_to(scratch.resolve())]
    if outside:
        raise MutantError(f"packages import from outside the scratch copy {scratch}: {outside}")


def pytest_command(scratch: Path, nodes: tuple[str, ...]) -> list[str]:
    return [
        python(scratch),
        "-m",
        "pytest",
        "-q",
        "-x",
        "--tb=native",  # pytest's own traceback formatting re-parses sources (a SystemError seen on 3.11.7)
        "-p",
        "no:cacheprovider",
        "-m",
        "not restarts_services",
        "--rootdir",
        str(scratch),
        *nodes,
    ]


def run_tests(
    scratch: Path, env: dict[str, str], nodes: tuple[str, ...]
) -> tuple[int | None, str, float]:
    """(pytest's exit status or None on timeout, its output, seconds)."""
    start = time.monotonic()
    try:
        proc = subprocess.run(
            pytest_command(scratch, nodes),
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=MUTANT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode()
        return None, out, time.monotonic() - start
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def git_apply(
    scratch: Path, patch: Path, *, reverse: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "apply", *(["-R"] if reverse else []), str(patch)],
        cwd=scratch,
        capture_output=True,
        text=True,
    )


def try_mutant(scratch: Path, env: dict[str, str], mutant: Mutant) -> Outcome:
    applied = git_apply(scratch, mutant.path)
    if applied.returncode != 0:
        return Outcome(mutant, "DOES NOT APPLY", 0.0, applied.stderr)
    try:
        status, output, seconds = run_tests(scratch, env, mutant.caught_by)
    finally:
        restored = git_apply(scratch, mutant.path, reverse=True)
        if restored.returncode != 0:
            raise MutantError(f"could not undo {mutant.name}: {restored.stderr}")
    if status is None:
        return Outcome(mutant, "TIMEOUT", seconds, output)
    if status == 1 and not failed_tests(output):
        # only errors (a fixture that could not reach the broker, say): nothing says the mutant was seen
        return Outcome(mutant, "ERROR (no test failed)", seconds, output)
    verdict = {0: "SURVIVED", 1: "killed"}.get(status, f"ERROR (pytest exit {status})")
    return Outcome(mutant, verdict, seconds, output)


def failed_tests(output: str) -> list[str]:
    """pytest's summary lines of failed tests (`FAILED tests/...::test_x - AssertionError: ...`)."""
    return [line for line in output.splitlines() if line.startswith("FAILED ")]


def table(outcomes: list[Outcome]) -> str:
    rows = [("mutant", "caught by", "killed?", "seconds")]
    for o in outcomes:
        tests = ", ".join(node.removeprefix("tests/") for node in o.mutant.caught_by)
        rows.append((o.mutant.name, tests, o.status, f"{o.seconds:.1f}"))
    widths = [min(max(len(r[i]) for r in rows), 90) for i in range(3)]
    lines = []
    for r in rows:
        lines.append(
            "  ".join(
                [r[0].ljust(widths[0]), r[1][:90].ljust(widths[1]), r[2].ljust(widths[2]), r[3]]
            )
        )
    return "\n".join(lines)


def report(outcome: Outcome) -> None:
    print(f"{outcome.mutant.name}: {outcome.status} ({outcome.seconds:.1f} s)", flush=True)
    for line in failed_tests(outcome.output):
        print(f"  {line[:200]}", flush=True)
    if not outcome.killed:
        print(f"  breaks: {outcome.mutant.breaks}\n" + outcome.output[-3000:], flush=True)


def baseline(copies: list[Path], envs: dict[Path, dict[str, str]], mutants: list[Mutant]) -> bool:
    """The named tests, split over the copies, on unmodified code. A share that fails is run once more and
    named as flaky if it then passes (its mutants' kills are still judged by a failing test)."""
    nodes = list(dict.fromkeys(n for m in mutants for n in m.caught_by))
    shares = [tuple(nodes[i :: len(copies)]) for i in range(len(copies))]

    def run_share(scratch: Path, share: tuple[str, ...]) -> tuple[int | None, str, float]:
        if not share:
            return 0, "", 0.0
        status, output, seconds = run_tests(scratch, envs[scratch], share)
        if status != 0:
            print(f"baseline: failed once, running again: {failed_tests(output)}", flush=True)
            status, output, again = run_tests(scratch, envs[scratch], share)
            seconds += again
            if status == 0:
                print("baseline: FLAKY, passed on the second run (see above)", flush=True)
        return status, output, seconds

    with ThreadPoolExecutor(len(copies)) as pool:
        runs = list(pool.map(run_share, copies, shares))
    failed = [(status, output) for status, output, _ in runs if status != 0]
    for status, output in failed:
        print(output[-6000:])
        print(f"the named tests fail on the unmodified copy (exit {status}): fix them first")
    if not failed:
        seconds = max(s for _, _, s in runs)
        print(
            f"baseline: the {len(nodes)} named tests pass unmodified ({seconds:.1f} s)", flush=True
        )
    return not failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "mutants", nargs="*", help="names (without .patch) or patch files; none: all"
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip running the tests on the unmodified copy"
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="mutants tried at once, each in its own copy (2)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    mutants = [read_mutant(p) for p in resolve(args.mutants)]
    jobs = max(1, min(args.jobs, len(mutants)))
    with tempfile.TemporaryDirectory(prefix="skydriver-mutants-") as tmp:
        copies = [Path(tmp) / f"repo{i}" for i in range(jobs)]
        envs: dict[Path, dict[str, str]] = {}
        for scratch in copies:
            scratch.mkdir()
            copy_repository(scratch)
            envs[scratch] = environment(scratch)
            check_imports_resolve_to(scratch, envs[scratch])
        print(f"{len(mutants)} mutants; {jobs} scratch copies in {tmp}", flush=True)
        if not args.no_baseline and not baseline(copies, envs, mutants):
            return 2
        free: queue.Queue[Path] = queue.Queue()
        for scratch in copies:
            free.put(scratch)

        def attempt(mutant: Mutant) -> Outcome:
            scratch = free.get()
            try:
                outcome = try_mutant(scratch, envs[scratch], mutant)
            finally:
                free.put(scratch)
            report(outcome)
            return outcome

        with ThreadPoolExecutor(jobs) as pool:
            outcomes = list(pool.map(attempt, mutants))
    print()
    print(table(outcomes))
    killed = sum(o.killed for o in outcomes)
    total = time.monotonic() - started
    print(f"\n{killed}/{len(outcomes)} mutants killed; total {total:.0f} s")
    return 0 if killed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
