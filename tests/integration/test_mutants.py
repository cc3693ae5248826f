"""The mutation check (`make mutants`, tests/mutants/run.py) itself: the README's `make mutants` block runs (on
two mutants: the whole set is `make mutants`' job), every curated mutant is well formed and still applies to the
code, and a mutant that no test catches fails the run instead of passing it."""

from __future__ import annotations

import difflib
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.mutants.run import all_mutants, read_mutant
from tests.readme import blocks_run_by

RUNNER = REPO / "tests" / "mutants" / "run.py"
PYTHON = REPO / ".venv" / "bin" / "python"
#: two quick mutants (unit tests) for the README block
SAMPLE = "auth-null-scan-scope-reads-as-unscoped events-zero-charge-accepted"
#: the areas issue 14 asks mutants for, by the prefix of the mutant's name
AREAS = ("gap", "auth", "store", "backlog", "pixels", "worker", "server", "likelihood", "products")


def test_every_mutant_names_its_behaviour_and_tests_and_still_applies() -> None:
    mutants = [read_mutant(p) for p in all_mutants()]
    assert {m.name.split("-")[0] for m in mutants} >= set(AREAS)
    assert sum(not m.name.startswith("gap-") for m in mutants) >= 10
    for mutant in mutants:
        assert "tests/e2e/" not in " ".join(mutant.caught_by), (
            f"{mutant.name}: e2e tests are too slow"
        )
        check = subprocess.run(
            ["git", "apply", "--check", str(mutant.path)], cwd=REPO, capture_output=True, text=True
        )
        assert check.returncode == 0, f"{mutant.name} no longer applies: {check.stderr}"


@pytest.mark.timeout(900)
def test_the_readme_make_mutants_block_runs_on_two_mutants() -> None:
    [block] = blocks_run_by("tests/integration/test_mutants.py")
    assert block.text.strip() == "make mutants"
    proc = subprocess.run(
        ["bash", "-c", block.text],
        cwd=REPO,
        env={**os.environ, "MUTANTS": SAMPLE},
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2/2 mutants killed" in proc.stdout, proc.stdout[-4000:]
    for name in SAMPLE.split():
        assert f"{name}: killed" in proc.stdout


@pytest.mark.timeout(600)
def test_a_mutant_no_test_catches_fails_the_run(tmp_path: Path) -> None:
    """An equivalent mutant (a comment changed) named with a test that passes: the runner must say SURVIVED
    and exit non-zero."""
    target = "skyscan_contract/nsides.py"
    before = (REPO / target).read_text().splitlines(keepends=True)
    after = [line.replace("(0.007 deg pixels)", "(about 0.007 deg pixels)") for line in before]
    assert after != before
    diff = "".join(difflib.unified_diff(before, after, f"a/{target}", f"b/{target}"))
    patch = tmp_path / "comment-only.patch"
    patch.write_text(
        "# breaks: nothing (a comment)\n"
        "# caught-by: tests/unit/test_pixel_selection.py::test_bad_progressions_are_refused\n"
        f"diff --git a/{target} b/{target}\n{diff}"
    )
    proc = subprocess.run(
        [str(PYTHON), str(RUNNER), "--no-baseline", str(patch)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "comment-only: SURVIVED" in proc.stdout
    assert "0/1 mutants killed" in proc.stdout
