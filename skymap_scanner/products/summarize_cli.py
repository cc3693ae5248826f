"""``skymap-scanner summarize RESULT... [--plot DIR] [--products DIR] [--truth EVENT]``.

For each result file: a text summary (best fit, contour areas, the truth's error when given), the
PNG plots with ``--plot`` and, with ``--products``, the alert products of ``alert.build_products``
written as ``<DIR>/<result file stem>.<product name>`` (the same files a SkyDriver scan serves).
Scan identifiers come from a ``scan-manifest.json`` beside the result, when there is one (a
``skymap-scanner scan`` output directory has it).

A file that is not a result (unreadable, not JSON, not a SkyScanResult) gets one error line on
stderr, not a traceback; the other files are still done and the exit code is 2.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .contours import SkyMapSummary, angular_distance_deg, contains, summarize_result
from .plots import make_plots

__all__ = ["format_summary", "run_summarize", "summarize_files"]

LOG = logging.getLogger(__name__)


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
        f"equal-area radius {r50.radius_deg:.3f}°, farthest pixel centre {r50.max_distance_deg:.3f}° from the best fit",
        f"90 % region (2ΔLLH ≤ {r90.level:g}): {r90.area_deg2:.3f} deg², "
        f"equal-area radius {r90.radius_deg:.3f}°, farthest pixel centre {r90.max_distance_deg:.3f}° from the best fit",
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


class NotAResult(ValueError):
    """A file given as a result is not a readable SkyScanResult JSON."""


def load_result(path: Path) -> dict[str, Any]:
    """Read and check a result file; ``NotAResult`` says in one line why it is not one."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise NotAResult(f"cannot read it ({e.strerror or e})") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NotAResult(f"not JSON ({e})") from e
    if not isinstance(result, dict) or not result:
        raise NotAResult("not a SkyScanResult: expected an object with 'nside-<n>' entries")
    try:
        summarize_result(result)
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise NotAResult(f"not a SkyScanResult: {e}") from e
    return result


def _scan_info(result_path: Path) -> Any:
    from .info import ScanInfo

    manifest = result_path.parent / "scan-manifest.json"
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8")).get("scan_metadata") or {}
    except (OSError, ValueError, AttributeError):
        return ScanInfo()
    progression = meta.get("nside_progression")
    return ScanInfo(
        scan_id=meta.get("scan_id"),
        reco_algo=meta.get("reco_algo"),
        nside_progression={int(k): int(v) for k, v in progression.items()}
        if isinstance(progression, dict)
        else None,
    )


def _write_products(
    result: dict[str, Any],
    result_path: Path,
    out_dir: Path,
    truth: tuple[float, float] | None,
    convention: str,
    smoothing_deg: float | None,
) -> list[str]:
    from .alert import build_products
    from .info import ProductOptions
    from .probability import Convention

    position = None if truth is None else (math.degrees(truth[0]) % 360, math.degrees(truth[1]))
    options = ProductOptions(
        convention=Convention(convention), smoothing_deg=smoothing_deg, position=position
    )
    products = build_products(result, scan=_scan_info(result_path), options=options)
    out_dir.mkdir(parents=True, exist_ok=True)
    for product in products.values():
        (out_dir / f"{result_path.stem}.{product.name}").write_bytes(product.data)
    s = json.loads(products["stats.json"].data)["summary"]

    def extent(plus: float | None, minus: float | None) -> str:
        return "unbounded (pole)" if plus is None or minus is None else f"+{plus:.2f}/-{minus:.2f}°"

    return [
        f"products ({s['convention']}, systematic included: "
        f"{'yes' if s['systematic_included'] else 'no'}): RA {s['ra_deg']:.2f}° "
        f"{extent(s['ra_plus_90_deg'], s['ra_minus_90_deg'])}, Dec {s['dec_deg']:.2f}° "
        f"{extent(s['dec_plus_90_deg'], s['dec_minus_90_deg'])} (90 %); credible areas "
        f"50 % {s['area_50_deg2']:.3f} deg², 90 % {s['area_90_deg2']:.3f} deg²",
        f"products: {len(products)} files in {out_dir}/{result_path.stem}.*",
    ]


def summarize_files(
    paths: Sequence[Path],
    *,
    plot_dir: Path | None = None,
    products_dir: Path | None = None,
    truth: tuple[float, float] | None = None,
    calibrated_delta_llh_90: float | None = None,
    convention: str = "calibrated",
    smoothing_deg: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """The whole ``summarize`` command for several result files; returns the exit code.

    Parameters
    ----------
    paths
        Result files (SkyScanResult JSON).
    plot_dir, products_dir
        Where to write the plots / the alert products (None: not written).
    truth
        True (RA, Dec) [rad] of a simulated event.
    calibrated_delta_llh_90
        Calibrated 2ΔLLH level of the text summary's calibrated contour.
    convention, smoothing_deg
        The products' probability convention and optional smoothing sigma [deg].
    out, err
        Where the summaries and the error lines go (default: stdout, stderr).

    Returns
    -------
    int
        0, or 2 when a file was not a result.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    code = 0
    for i, path in enumerate(paths):
        try:
            result = load_result(path)
        except NotAResult as e:
            print(f"skymap-scanner: error: {path}: {e}", file=err)
            code = 2
            continue
        summary = summarize_result(result, calibrated_delta_llh_90=calibrated_delta_llh_90)
        plots = None
        if plot_dir is not None:
            plots = make_plots(summary, plot_dir, truth=truth, prefix=path.stem)
        lines = [format_summary(summary, truth, plots)]
        if products_dir is not None:
            lines += _write_products(result, path, products_dir, truth, convention, smoothing_deg)
        if len(paths) > 1:
            print(("\n" if i else "") + f"== {path}", file=out)
        print("\n".join(lines), file=out)
    return code
