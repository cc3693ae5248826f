"""Regenerate the README's generated sections (the settings table). Run: .venv/bin/python scripts/update_readme.py"""

from __future__ import annotations

import re
from pathlib import Path

from settings_table import table  # type: ignore[import-not-found]

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def render(text: str) -> str:
    return re.sub(f"{START}.*?{END}", f"{START}\n{table()}\n{END}", text, flags=re.S)


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
