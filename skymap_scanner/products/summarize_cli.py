"""Text summary of a result file, for ``skymap-scanner summarize RESULT.json [--plot DIR]``.

``run_summarize`` is the whole command minus argument parsing: it reads the JSON, summarises it,
optionally writes the plots, and returns the text to print.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .contours import SkyMapSummary, angular_distance_deg, contains, summarize_result
from .plots import make_plots

__all__ = ["format_summary", "run_summarize"]


def format_summary(
    summary: SkyMapSummary,
    truth: tuple[float, float] | None = None,
    plot_paths: list[Path] | None = None,
) -> str:
    """Human-readable lines; ``truth`` is (RA, Dec) in radians."""
    meta = summary.metadata
    b = summary.best_fit
    r50, r90 = summary.region_50, summary.region_90
    lines = [
        f"event: run {meta.get('run_id', '?')} event {meta.get('event_id', '?')} "
        f"({meta.get('event_type', '?')}), mjd {meta.get('mjd', '?')}",
        f"nsides: {', '.join(str(n) for n in summary.nsides)}"
        f" ({'complete' if summary.complete else 'INCOMPLETE'})",
        f"best fit: RA {b.ra_deg:.3f}° Dec {b.dec_deg:.3f}° "
        f"(RA {b.ra_rad:.5f} rad, Dec {b.dec_rad:.5f} rad), llh {b.llh:.4f}, "
        f"nside {b.nside} pixel {b.pixel}",
        f"50 % region (2ΔLLH ≤ {r50.level:g}): {r50.area_deg2:.3f} deg², "
        f"equal-area radius {r50.radius_deg:.3f}°, max distance {r50.max_distance_deg:.3f}°",
        f"90 % region (2ΔLLH ≤ {r90.level:g}): {r90.area_deg2:.3f} deg², "
        f"equal-area radius {r90.radius_deg:.3f}°, max distance {r90.max_distance_deg:.3f}°",
    ]
    cal = summary.region_90_calibrated
    if cal is not None:
        lines.append(
            f"90 % region, calibrated (2ΔLLH ≤ {cal.level:g}): {cal.area_deg2:.3f} deg², "
            f"equal-area radius {cal.radius_deg:.3f}°"
        )
    if truth is not None:
        err = angular_distance_deg(b.ra_rad, b.dec_rad, truth[0], truth[1])
        inside = contains(summary, truth[0], truth[1], r90.level)
        lines.append(
            f"truth: RA {math.degrees(truth[0]) % 360:.3f}° Dec {math.degrees(truth[1]):.3f}°; "
            f"angular error {err:.3f}°; inside 90 % contour: {'yes' if inside else 'no'}"
        )
        if cal is not None:
            inside_cal = contains(summary, truth[0], truth[1], cal.level)
            lines.append(f"inside calibrated 90 % contour: {'yes' if inside_cal else 'no'}")
    for path in plot_paths or []:
        lines.append(f"plot: {path}")
    return "\n".join(lines)


def run_summarize(
    result_path: Path,
    plot_dir: Path | None,
    truth: tuple[float, float] | None,
    *,
    calibrated_delta_llh_90: float | None = None,
) -> str:
    """Summarise ``result_path`` (SkyScanResult JSON); write plots into ``plot_dir`` if given.

    ``truth`` is the true (RA, Dec) in radians. Returns the text to print.
    """
    with result_path.open(encoding="utf-8") as f:
        result = json.load(f)  # accepts both "<skyreader.nan>" strings and bare NaN
    summary = summarize_result(result, calibrated_delta_llh_90=calibrated_delta_llh_90)
    paths = make_plots(summary, plot_dir, truth=truth) if plot_dir is not None else None
    return format_summary(summary, truth, paths)
