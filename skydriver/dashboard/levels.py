"""The 2ΔLLH levels the skymap is drawn with: Wilks' 50 %/90 % levels, the 3-sigma level (which sets the
colour scale, as in the scanner's zoom plot) and the calibrated 90 % level.

They are defined by the products code (`skymap_scanner.products.contours`, `.calibration`), which SkyDriver
must not import (it would pull in healpy and matplotlib; `lint-imports` forbids it). So their values are
read once, at start-up, from those modules' source files as literals (`ast.literal_eval` of the module-level
assignment; nothing is executed). A test checks them against the imported constants, so a change there
reaches the dashboard, and a definition that is no longer a literal fails loudly here."""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path
from typing import Any

#: constant name -> module file (relative to the skymap_scanner package) defining it
SOURCES = {
    "LEVEL_50": "products/contours.py",
    "LEVEL_90": "products/contours.py",
    "LEVEL_3SIGMA": "products/contours.py",
    "CALIBRATED_DELTA_LLH_90": "calibration.py",
}


class LevelsError(RuntimeError):
    """A level could not be read from the products' sources."""


def _package_dir() -> Path:
    spec = importlib.util.find_spec("skymap_scanner")
    if spec is None or not spec.submodule_search_locations:
        raise LevelsError("the skymap_scanner package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def read_constant(path: Path, name: str) -> float:
    """The literal value of a module-level `name = ...` or `name: T = ...` in `path`."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError) as e:
        raise LevelsError(f"cannot read {path}: {e}") from e
    for node in tree.body:
        target: Any = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id == name:
            try:
                found = ast.literal_eval(value)
            except ValueError as e:
                raise LevelsError(f"{path}: {name} is not a literal number") from e
            if not isinstance(found, int | float):
                raise LevelsError(f"{path}: {name} is not a number")
            return float(found)
    raise LevelsError(f"{path} defines no {name}")


@functools.cache
def levels() -> dict[str, float]:
    """{"wilks_50", "wilks_90", "sigma3", "calibrated_90", "colour_max"} in 2ΔLLH (read once)."""
    base = _package_dir()
    found = {name: read_constant(base / rel, name) for name, rel in SOURCES.items()}
    return {
        "wilks_50": found["LEVEL_50"],
        "wilks_90": found["LEVEL_90"],
        "sigma3": found["LEVEL_3SIGMA"],
        "calibrated_90": found["CALIBRATED_DELTA_LLH_90"],
        # the scanner's zoom plot: colours from 0 to twice the 3-sigma level (or the highest contour)
        "colour_max": max(
            2 * found["LEVEL_3SIGMA"], found["CALIBRATED_DELTA_LLH_90"], found["LEVEL_90"]
        ),
    }
