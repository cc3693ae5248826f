"""Human-readable output of the command line: status and result summaries, and the live progress display."""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
from typing import Any, TextIO

from ._models import Manifest, ScanProgress, ScanStatus

BAR_WIDTH = 24


def duration(seconds: float) -> str:
    return str(dt.timedelta(seconds=round(seconds)))


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def eta_text(progress: ScanProgress) -> str:
    """`ETA 0:01:10 to 0:02:30` from the measured rate; `ETA: measuring` until there is enough to measure."""
    if progress.finished:
        return "finished"
    if progress.eta_range_s is None:
        return "ETA: measuring"
    low, high = progress.eta_range_s
    return f"ETA {duration(low)} to {duration(high)}"


def progress_summary(progress: ScanProgress, with_eta: bool = True) -> str:
    """`40/56 pixels (nside 1: 12/12, 2: 28/44), 35.2 recos/s, ETA 0:00:10 to 0:00:14`."""
    if not progress.started:
        return "waiting for the scanner's first report"
    per_nside = ", ".join(
        f"{n.nside}: {n.pixels_done}/{n.pixels_generated}" for n in progress.nsides
    )
    parts = [f"{progress.pixels_done}/{progress.pixels_generated} pixels (nside {per_nside})"]
    if progress.recos_per_s is not None:
        parts.append(f"{progress.recos_per_s:.1f} recos/s")
    if with_eta:
        parts.append(eta_text(progress))
    return ", ".join(parts)


def fraction_done(progress: ScanProgress) -> float:
    """Done over the expected total (refinements included, as the scanner estimates them), in [0, 1]."""
    if progress.finished:
        return 1.0
    expected = max(progress.recos_expected, progress.recos_generated)
    return min(1.0, progress.recos_done / expected) if expected > 0 else 0.0


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = max(0, min(width, int(width * fraction)))
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
    instance = (status.model_extra or {}).get("instance")
    if isinstance(instance, dict) and instance.get("reason"):
        code = instance.get("exit_code")
        ended = f"{instance.get('state')}" + (f" (exit {code})" if code is not None else "")
        lines.append(f"  instance:  {ended}: {instance['reason']}")
    if progress is not None:
        lines.append(f"  progress:  {progress_summary(progress)}")
    return "\n".join(lines)


def _argument(args: str, flag: str) -> str:
    """The value(s) after `flag` in the manifest's `scanner_server_args` string (informational)."""
    match = re.search(rf"{flag} ((?:[^-\s]\S*\s?)+)", args)
    return match.group(1).strip() if match else "?"


def manifest_state(manifest: Manifest) -> str:
    """In a word, from the manifest alone: deleted, finished, failed, running or queued."""
    instance = (manifest.model_extra or {}).get("instance") or {}
    stats = (manifest.progress or {}).get("processing_stats") or {}
    if manifest.is_deleted:
        return "deleted"
    if isinstance(stats, dict) and stats.get("finished"):
        return "finished"
    if instance.get("state") in ("failed", "start_failed") or (
        instance.get("state") == "ended" and instance.get("exit_code")
    ):
        return "failed"
    return "running" if instance.get("state") in ("running", "ended") else "queued"


def manifest_line(manifest: Manifest) -> str:
    """`ID  2026-12-01 10:00:00  finished  dummy  1:0 2:12 4:12  56/56 pixels …`, for `scans find`."""
    created = (
        dt.datetime.fromtimestamp(manifest.timestamp).strftime("%Y-%m-%d %H:%M:%S")
        if manifest.timestamp
        else "?"
    )
    args = str((manifest.model_extra or {}).get("scanner_server_args") or "")
    progress = ScanProgress.from_manifest(manifest)
    done = progress_summary(progress, with_eta=False) if progress.started else "no progress yet"
    return (
        f"{manifest.scan_id}  {created}  {manifest_state(manifest):8}  "
        f"{_argument(args, '--reco-algo')}  {_argument(args, '--nsides')}  {done}"
    )


def result_text(scan_id: str, document: dict[str, Any], sky: Any, ended: bool = False) -> str:
    """`ended`: the scan will not change any more (a partial result then stays partial)."""
    if document.get("is_final"):
        kind = "final"
    else:
        kind = (
            "partial (the scan stopped before its end)"
            if ended
            else "partial (the scan is running)"
        )
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
        self.fraction = 0.0  # never goes back: refinement adds pixels the estimate already counted

    def __call__(self, progress: ScanProgress) -> None:
        state = progress.scan_state or ""
        self.fraction = max(self.fraction, fraction_done(progress))
        if self.live:
            # most important first: a narrow terminal cuts the end of the line
            line = (
                f"{bar(self.fraction)} {self.fraction:4.0%} {eta_text(progress)} | "
                f"{progress_summary(progress, with_eta=False)} | {state}"
            )
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
