"""Docs that match the code: the README's settings table is generated from the settings models."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_settings_table_is_current() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from update_readme import render
    finally:
        sys.path.pop(0)
    text = (REPO / "README.md").read_text()
    assert render(text) == text, (
        "README settings table is stale: run .venv/bin/python scripts/update_readme.py"
    )
    assert "`SKYSCAN_MAX_PIXEL_ATTEMPTS`" in text
