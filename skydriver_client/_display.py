"""Human-readable output of the command line: status and result summaries, and the live progress display."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from typing import Any, TextIO

from ._models import Manifest, ProductIndex, ScanProgress, ScanStatus

BAR_WIDTH = 24


def duration(seconds: float) -> str:
    return str(dt.timedelta(seconds=round(seconds)))


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def progress_summary(progress: ScanProgress) -> str:
    """`40/56 pixels (nside 1: 12/12, 2: 28/44), 35.2 recos/s, ETA 0:00:12`."""
    if not progress.started:
        return "waiting for the scanner's first report"
    per_nside = ", ".join(
        f"{n.nside}: {n.pixels_done}/{n.pixels_generated}" for n in progress.nsides
    )
    parts = [f"{progress.pixels_done}/{progress.pixels_generated} pixels (nside {per_nside})"]
    if progress.recos_per_s is not None:
        parts.append(f"{progress.recos_per_s:.1f} recos/s")
    if progress.finished:
        parts.append("finished")
    elif progress.eta_s is not None:
        parts.append(f"ETA {duration(progress.eta_s)}")
    return ", ".join(parts)


def products_text(index: ProductIndex) -> str:
    """The sky products of a scan: what is served, and what is being made."""
    if index.version is None:
        head = f"scan {index.scan_id}: no sky products yet ({index.state})"
    else:
        state = "final" if index.is_final else "partial"
        head = f"scan {index.scan_id}: sky products of result version {index.version} ({state})"
        if index.state != "ready":
            head += f"; result version {index.result_version} is {index.state}"
    lines = [head]
    if index.error:
        lines.append(
            f"  error (result version {index.error.get('version')}): {index.error.get('message')}"
        )
    width = max((len(p.name) for p in index.products), default=0)
    lines += [
        f'  {p.name:<{width}}  {p.size:>10,} bytes  {p.content_type}  {p.etag[:14]}…"'
        for p in index.products
    ]
    return "\n".join(lines)


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = min(width, round(width * done / total)) if total > 0 else 0
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def status_text(scan_id: str, status: ScanStatus, progress: ScanProgress | None) -> str:
    workforce = status.ewms_workforce
    lines = [
        f"scan {scan_id}",
        f"  state:     {status.scan_state}",
        f"  complete:  {_yes(status.scan_complete)}    deleted: {_yes(status.is_deleted)}",
        f"  workers:   {workforce.n_running} running",
    ]
    for message, count in sorted(workforce.top_errors.items(), key=lambda kv: -kv[1])[:3]:
        lines.append(f"  error ×{count}: {message}")
    if progress is not None:
        lines.append(f"  progress:  {progress_summary(progress)}")
    return "\n".join(lines)


def manifest_line(manifest: Manifest) -> str:
    created = (
        dt.datetime.fromtimestamp(manifest.timestamp).strftime("%Y-%m-%d %H:%M:%S")
        if manifest.timestamp
        else "?"
    )
    summary = (manifest.progress or {}).get("summary") or "no progress report yet"
    deleted = "  [deleted]" if manifest.is_deleted else ""
    return f"{manifest.scan_id}  {created}  {summary}{deleted}"


def result_text(scan_id: str, document: dict[str, Any], sky: Any) -> str:
    kind = "final" if document.get("is_final") else "partial (the scan is still running)"
    lines = [f"scan {scan_id}: {kind} result"]
    for key, rows in sky.result.items():
        lines.append(f"  {key}: {len(rows)} pixels")
    try:
        ra, dec = sky.best_dir
        lines.append(
            f"  best fit: RA {math.degrees(ra):.3f}°, Dec {math.degrees(dec):.3f}°, "
            f"llh {float(sky.min_llh):.3f}"
        )
    except (ValueError, KeyError, TypeError, UnboundLocalError):
        lines.append("  best fit: not available (no metadata in the result)")
    return "\n".join(lines)


class ProgressDisplay:
    """Shows each progress update on `stream`: one redrawn line with a bar on a terminal, else one plain
    line per update (for logs and pipes)."""

    def __init__(self, stream: TextIO, live: bool | None = None) -> None:
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self._drawn = False

    def __call__(self, progress: ScanProgress) -> None:
        state = progress.scan_state or ""
        if self.live:
            gauge = bar(progress.pixels_done, progress.pixels_generated)
            line = f"{gauge} {progress_summary(progress)}  {state}"
            # a wrapped line could not be redrawn in place: keep it within the terminal's width
            width = shutil.get_terminal_size((120, 24)).columns - 1
            self.stream.write(f"\r\x1b[K{line[:width]}")
            self._drawn = True
        else:
            self.stream.write(f"{state}: {progress_summary(progress)}\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
