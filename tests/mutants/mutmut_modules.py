"""mutmut over the pure-logic modules, one module at a time, and its score per module.

`[tool.mutmut]` in pyproject.toml names the files mutmut mutates and the unit tests it may run; this script
names, per module, which of mutmut's mutants count (for the event reader: the functions that validate a
`pulse-event/1` event, not the i3live metadata parser), runs them, and reads mutmut's results from `mutants/`.

    python tests/mutants/mutmut_modules.py run [MODULE ...]   # mutmut run, niced, 2 children
    python tests/mutants/mutmut_modules.py scores             # killed / survived / score per module
    python tests/mutants/mutmut_modules.py survivors          # the surviving mutants' names

Run from the repository root (mutmut works in ./mutants/). MODULE is a key of MODULES."""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MUTMUT = REPO / ".venv" / "bin" / "mutmut"

_LOADER_VALIDATION = (
    "_get_int",
    "_get_finite",
    "_check_real_run_id",
    "_check_format",
    "_first_index",
    "_pulse_columns",
    "_pulse_values_problem",
)
#: module -> (its file, the mutmut mutant names that count for it)
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "pixels": ("skymap_scanner/pixels.py", ("skymap_scanner.pixels.*",)),
    "nsides": ("skyscan_contract/nsides.py", ("skyscan_contract.nsides.*",)),
    "scan-state": ("skymap_scanner/server/state.py", ("skymap_scanner.server.state.*",)),
    "auth-claims": ("skydriver/auth/principal.py", ("skydriver.auth.principal.*",)),
    "event-validation": (
        "skymap_scanner/events/loader.py",
        tuple(f"skymap_scanner.events.loader.x_{f}__mutmut_*" for f in _LOADER_VALIDATION),
    ),
}
KILLED, SURVIVED, NO_TESTS, TIMEOUT, NOT_CHECKED, OTHER = (
    "killed",
    "survived",
    "no tests",
    "timeout",
    "not checked",
    "other",
)


def status(exit_code: int | None) -> str:
    """mutmut's meaning of a mutant's exit code (mutmut.stats.status_by_exit_code, without importing
    mutmut, which reads its configuration at import)."""
    if exit_code is None:
        return NOT_CHECKED
    return {
        1: KILLED,
        3: KILLED,
        0: SURVIVED,
        5: NO_TESTS,
        33: NO_TESTS,
        36: TIMEOUT,
        24: TIMEOUT,
        -24: TIMEOUT,
        152: TIMEOUT,
        255: TIMEOUT,
    }.get(exit_code, OTHER)


def results(module: str) -> dict[str, str]:
    """Mutant name -> status, for the mutants that count for `module`."""
    path, patterns = MODULES[module]
    meta = REPO / "mutants" / f"{path}.meta"
    if not meta.is_file():
        return {}
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return {
        name: status(code)
        for name, code in sorted(codes.items())
        if any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }


def score_rows() -> list[tuple[str, int, int, int, int, int, str]]:
    rows = []
    for module in MODULES:
        found = results(module)
        counts = {
            s: sum(v == s for v in found.values()) for s in (KILLED, SURVIVED, NO_TESTS, TIMEOUT)
        }
        checked = len(found) - sum(v == NOT_CHECKED for v in found.values())
        caught = counts[KILLED] + counts[TIMEOUT]
        score = f"{100 * caught / checked:.1f} %" if checked else "not run"
        rows.append(
            (
                module,
                len(found),
                counts[KILLED],
                counts[TIMEOUT],
                counts[SURVIVED],
                counts[NO_TESTS],
                score,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mutmut per module")
    parser.add_argument("command", choices=("run", "scores", "survivors"))
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    args = parser.parse_args(argv)
    modules = args.modules or list(MODULES)
    unknown = set(modules) - set(MODULES)
    if unknown:
        parser.error(f"unknown modules {sorted(unknown)}; known: {', '.join(MODULES)}")
    if args.command == "run":
        # one mutmut run per module: one run over all five stopped early here, leaving most mutants
        # "not checked" (mutmut 3.8.1)
        for module in modules:
            command = ["nice", "-n", "19", str(MUTMUT), "run", "--max-children", "2"]
            if subprocess.run([*command, *MODULES[module][1]], cwd=REPO).returncode != 0:
                return 1
        return 0
    if args.command == "scores":
        print("| module | mutants | killed | timeout | survived | no tests | score |")
        print("|---|---|---|---|---|---|---|")
        for row in score_rows():
            if row[0] in modules:
                print("| " + " | ".join(str(v) for v in row) + " |")
        return 0
    for module in modules:
        for name, state in results(module).items():
            if state in (SURVIVED, NO_TESTS):
                print(f"{module}\t{state}\t{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
