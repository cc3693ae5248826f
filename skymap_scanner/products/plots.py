"""PNG plots of a scan result: a full-sky Mollweide map and a zoom around the best fit.

Both plots sample the merged multi-order map (``MultiOrderMap.values_at``) on a regular grid, so
each point shows the finest scanned pixel containing it. Figures are built with
``matplotlib.figure.Figure`` (no pyplot, no global state, no display needed: PNGs go through the
Agg canvas whatever ``MPLBACKEND`` says).

- Both: colour = 2ΔLLH with one colour map (``COLORMAP``: the best fit bright, unlikely
  directions dark); the title gives the calibrated 90 % area (when the summary has the calibrated
  level) and the Wilks 50 %/90 % areas.
- Full sky: matplotlib's ``mollweide`` projection, RA increasing to the left (astronomical
  convention, RA = 0 at the centre), colour clipped at ``vmax``.
- Zoom: gnomonic (tangent-plane) projection centred on the best fit, offsets in degrees with
  East (increasing RA) to the left; 50 % and 90 % contours at 2ΔLLH = 1.39 / 4.61 (plus the
  calibrated 90 % level when the summary has one), best-fit star and an optional truth cross;
  colours run from 0 to twice the 3 sigma level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .contours import LEVEL_3SIGMA, LEVEL_50, LEVEL_90, SkyMapSummary, summarize_result

__all__ = ["COLORMAP", "default_prefix", "make_plots", "plot_full_sky", "plot_zoom"]

FloatArray = npt.NDArray[np.float64]


def default_prefix(summary: SkyMapSummary) -> str:
    """``run%08d.evt%012d.<event_type>`` from the metadata (as skyreader names its files)."""
    meta = summary.metadata
    try:
        return "run{:08d}.evt{:012d}.{}".format(
            int(meta["run_id"]), int(meta["event_id"]), meta.get("event_type", "event")
        )
    except (KeyError, TypeError, ValueError):
        return "skymap"


#: One colour convention for both plots: 2ΔLLH = 0 (the best fit) bright, unlikely dark.
COLORMAP = "viridis_r"


def _title(summary: SkyMapSummary) -> str:
    """Event, best fit and areas; the calibrated 90 % area first when the summary has it."""
    meta = summary.metadata
    head = f"Run {meta.get('run_id', '?')} Event {meta.get('event_id', '?')}"
    areas = f"Wilks 50 %: {summary.area_50_deg2:.2f} deg², 90 %: {summary.area_90_deg2:.2f} deg²"
    cal = summary.region_90_calibrated
    if cal is not None:
        areas = f"calibrated 90 %: {cal.area_deg2:.2f} deg²; {areas}"
    return f"{head}: RA {summary.ra_deg:.2f}°, Dec {summary.dec_deg:.2f}°  ({areas})"


def _to_mollweide_lon(ra: FloatArray | float) -> FloatArray:
    """RA [rad] → mollweide longitude in [-π, π] with RA increasing to the left."""
    return -(np.mod(np.asarray(ra, dtype=np.float64) + np.pi, 2 * np.pi) - np.pi)


def plot_full_sky(
    summary: SkyMapSummary,
    path: Path,
    *,
    truth: tuple[float, float] | None = None,
    vmax: float | None = None,
    resolution_deg: float = 0.5,
    dpi: int = 100,
) -> Path:
    """Full-sky Mollweide of 2ΔLLH; ``truth`` is (RA, Dec) in radians."""
    n_lon = round(360.0 / resolution_deg)
    n_lat = round(180.0 / resolution_deg)
    lon_edges = np.linspace(-np.pi, np.pi, n_lon + 1)
    lat_edges = np.linspace(-np.pi / 2, np.pi / 2, n_lat + 1)
    lon_c = 0.5 * (lon_edges[1:] + lon_edges[:-1])
    lat_c = 0.5 * (lat_edges[1:] + lat_edges[:-1])
    lon_g, lat_g = np.meshgrid(lon_c, lat_c)
    values = summary.skymap.values_at(np.mod(-lon_g, 2 * np.pi), lat_g).reshape(lon_g.shape)
    finite = values[np.isfinite(values)]
    top = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)

    fig = Figure(figsize=(10, 6))
    ax = fig.add_subplot(projection="mollweide")
    mesh = ax.pcolormesh(
        lon_edges,
        lat_edges,
        np.ma.masked_invalid(values),
        cmap=COLORMAP,
        vmin=0.0,
        vmax=max(top, 1e-9),
        shading="flat",
        rasterized=True,
    )
    fig.colorbar(mesh, ax=ax, orientation="horizontal", pad=0.06, shrink=0.7, label="2ΔLLH")
    ax.plot(
        _to_mollweide_lon(summary.ra_rad),
        summary.dec_rad,
        marker="*",
        color="red",
        markersize=12,
        linestyle="none",
        label="best fit",
    )
    if truth is not None:
        ax.plot(
            _to_mollweide_lon(truth[0]),
            truth[1],
            marker="x",
            color="magenta",
            markersize=10,
            linestyle="none",
            label="truth",
        )
    ticks = np.radians(np.arange(-150, 151, 30))
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{(-t) % 360:.0f}°" for t in np.degrees(ticks)])
    ax.grid(True, alpha=0.4)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(_title(summary), fontsize="medium", pad=20)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def _gnomonic_inverse(
    ra0: float, dec0: float, xi: FloatArray, eta: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Tangent-plane offsets (rad, ξ towards East) around (ra0, dec0) → (RA, Dec) in rad."""
    rho = np.hypot(xi, eta)
    c = np.arctan(rho)
    sin_c, cos_c = np.sin(c), np.cos(c)
    safe = np.where(rho > 0, rho, 1.0)
    dec = np.arcsin(
        cos_c * math.sin(dec0) + np.where(rho > 0, eta * sin_c * math.cos(dec0) / safe, 0)
    )
    ra = ra0 + np.arctan2(xi * sin_c, rho * math.cos(dec0) * cos_c - eta * math.sin(dec0) * sin_c)
    return np.mod(ra, 2 * np.pi), dec


def _gnomonic_forward(ra0: float, dec0: float, ra: float, dec: float) -> tuple[float, float] | None:
    """(RA, Dec) → tangent-plane offsets in degrees, or None on the far hemisphere."""
    dra = ra - ra0
    cos_c = math.sin(dec0) * math.sin(dec) + math.cos(dec0) * math.cos(dec) * math.cos(dra)
    if cos_c <= 0:
        return None
    xi = math.cos(dec) * math.sin(dra) / cos_c
    eta = (math.cos(dec0) * math.sin(dec) - math.sin(dec0) * math.cos(dec) * math.cos(dra)) / cos_c
    return math.degrees(xi), math.degrees(eta)


def _zoom_half_width_deg(summary: SkyMapSummary, truth_offset: tuple[float, float] | None) -> float:
    extent = [summary.region_90.max_distance_deg, summary.region_90.radius_deg]
    if truth_offset is not None:
        extent.append(max(abs(truth_offset[0]), abs(truth_offset[1])))
    finite = [e for e in extent if math.isfinite(e)]
    return float(np.clip(1.4 * max(finite, default=5.0), 1.0, 40.0))


def plot_zoom(
    summary: SkyMapSummary,
    path: Path,
    *,
    truth: tuple[float, float] | None = None,
    half_width_deg: float | None = None,
    n_grid: int = 301,
    dpi: int = 100,
) -> Path:
    """Zoom around the best fit with the 50 %/90 % contours; ``truth`` is (RA, Dec) in rad."""
    ra0, dec0 = summary.ra_rad, summary.dec_rad
    truth_xy = None if truth is None else _gnomonic_forward(ra0, dec0, truth[0], truth[1])
    w = half_width_deg if half_width_deg is not None else _zoom_half_width_deg(summary, truth_xy)
    axis = np.linspace(-w, w, n_grid)
    x_g, y_g = np.meshgrid(axis, axis)
    ra, dec = _gnomonic_inverse(ra0, dec0, np.radians(x_g), np.radians(y_g))
    values = summary.skymap.values_at(ra, dec).reshape(x_g.shape)

    levels = [LEVEL_50, LEVEL_90]
    styles = [("black", "-", "50 %"), ("red", "-", "90 %")]
    cal = summary.region_90_calibrated
    if cal is not None and cal.level not in levels:
        levels.append(cal.level)
        styles.append(("orange", "--", f"90 % calibrated (2ΔLLH={cal.level:g})"))
    order = np.argsort(levels)
    levels_sorted = [levels[i] for i in order]
    styles_sorted = [styles[i] for i in order]

    fig = Figure(figsize=(7.5, 6.5), layout="constrained")
    ax = fig.add_subplot()
    image = ax.pcolormesh(
        x_g,
        y_g,
        np.ma.masked_invalid(values),
        cmap=COLORMAP,
        vmin=0.0,
        vmax=max(2 * LEVEL_3SIGMA, max(levels)),
        shading="nearest",
        rasterized=True,
    )
    fig.colorbar(image, ax=ax, label="2ΔLLH")
    filled = np.where(np.isfinite(values), values, np.inf)
    if np.isfinite(values).any() and float(np.nanmin(values)) <= max(levels):
        ax.contour(
            x_g,
            y_g,
            filled,
            levels=levels_sorted,
            colors=[s[0] for s in styles_sorted],
            linestyles=[s[1] for s in styles_sorted],
            linewidths=1.5,
        )
    handles: list[Any] = [
        Line2D([], [], color=c, linestyle=ls, label=label) for c, ls, label in styles_sorted
    ]
    handles.append(
        ax.plot(0, 0, marker="*", color="red", markersize=14, linestyle="none", label="best fit")[0]
    )
    if truth_xy is not None and abs(truth_xy[0]) <= w and abs(truth_xy[1]) <= w:
        handles.append(
            ax.plot(*truth_xy, marker="x", color="magenta", ms=12, mew=2, ls="none", label="truth")[
                0
            ]
        )
    elif truth is not None:
        ax.text(0.02, 0.02, "truth outside view", transform=ax.transAxes, color="magenta")
    ax.set_xlim(w, -w)  # East (increasing RA) to the left
    ax.set_ylim(-w, w)
    ax.set_aspect("equal")
    ax.set_xlabel("ΔRA·cos(Dec) offset from best fit [deg] (gnomonic, East left)")
    ax.set_ylabel("ΔDec offset from best fit [deg]")
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.6)
    fig.suptitle(_title(summary), fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def make_plots(
    result_or_summary: Mapping[str, Any] | SkyMapSummary,
    out_dir: Path,
    *,
    truth: tuple[float, float] | None = None,
    prefix: str | None = None,
) -> list[Path]:
    """Write ``<prefix>.fullsky.png`` and ``<prefix>.zoom.png`` into ``out_dir``; return the paths.

    ``truth`` is (RA, Dec) in radians. ``prefix`` defaults to ``run%08d.evt%012d.<type>``.
    """
    summary = (
        result_or_summary
        if isinstance(result_or_summary, SkyMapSummary)
        else summarize_result(result_or_summary)
    )
    stem = prefix if prefix is not None else default_prefix(summary)
    return [
        plot_full_sky(summary, out_dir / f"{stem}.fullsky.png", truth=truth),
        plot_zoom(summary, out_dir / f"{stem}.zoom.png", truth=truth),
    ]
