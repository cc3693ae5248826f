"""One line of a local scan's progress, for the terminal (`skymap-scanner scan`), from the progress report the
server writes to `<out>/scan-manifest.json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def progress_line(report: dict[str, Any]) -> str | None:
    """ "nside 1: 12/12, nside 2: 20/44 pixels; ETA 0:00:10 to 0:00:30" (None: no report yet)."""
    nsides = (report.get("tallies") or {}).get("nsides")
    if not isinstance(nsides, dict) or not nsides:
        return None
    parts = []
    for nside, block in sorted(nsides.items(), key=lambda kv: int(kv[0])):
        pixels = (block or {}).get("pixels") or {}
        parts.append(
            f"nside {nside}: {int(pixels.get('done', 0))}/{int(pixels.get('generated', 0))}"
        )
    eta = ((report.get("processing_stats") or {}).get("predictions") or {}).get("time left range")
    when = (
        f"ETA {_seconds(eta['low'])} to {_seconds(eta['high'])}"
        if isinstance(eta, dict)
        else "ETA: measuring"
    )
    return f"{', '.join(parts)} pixels; {when}"


def read_progress_line(manifest_file: Path) -> str | None:
    """The line of the last report written, or None (none yet, or caught mid-write)."""
    try:
        report = json.loads(manifest_file.read_text()).get("progress")
    except (OSError, ValueError):
        return None
    return progress_line(report) if isinstance(report, dict) else None


def _seconds(duration: object) -> str:
    """ "0:00:04.120749" -> "0:00:04": the reports' durations to the second."""
    return str(duration).split(".")[0]
