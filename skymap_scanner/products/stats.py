"""The stats document: best fit, asymmetric 90 % errors, 50/90 % areas, regions, a position.

One JSON document (``stats.json``) that the FITS header, the notice and the circular are built
from, so they all quote the same numbers. Angles in degrees, areas in deg², densities in sr⁻¹.

``summary`` holds what the circulars quote for the chosen convention: RA/Dec of the best fit with
``+``/``-`` 90 % (and 50 %) errors, the 50 % and 90 % areas (ligo-skymap-stats' area(P)), and the
radius of the circle around the best fit that holds 90 % (the notice's ``ra_dec_error``).
``regions`` has both conventions' 50 % and 90 % credible regions in full.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .contours import SkyMapSummary
from .credible import (
    asymmetric_errors,
    containment_radius_deg,
    credible_region,
    position_stats,
)
from .info import CREATOR, ProductOptions, ScanInfo, creator_version, mjd_to_datetime
from .probability import Convention, ProbabilityMap

__all__ = ["CREDIBLE_LEVELS", "STATS_FORMAT", "build_stats", "region_stats"]

STATS_FORMAT = "skydriver-sky-stats/1"
CREDIBLE_LEVELS: dict[str, float] = {"50": 0.5, "90": 0.9}
"""Region name → credible probability."""


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def region_stats(
    pmap: ProbabilityMap, probability: float, ra_rad: float, dec_rad: float
) -> dict[str, Any]:
    """Numbers of one credible region of ``pmap`` around the best fit (``ra_rad``, ``dec_rad``).

    Parameters
    ----------
    pmap
        The probability map.
    probability
        Credible level (e.g. 0.9).
    ra_rad, dec_rad
        The best fit [rad].

    Returns
    -------
    dict
        ``area_deg2`` (area(P)), ``pixel_area_deg2`` (its tiles), ``n_tiles``,
        ``tiles_probability``, ``density_threshold_sr``, ``delta2_llh_level`` (2ΔLLH at its edge
        relative to the densest tile, unsmoothed maps only), the asymmetric errors [deg] and
        ``containment_radius_deg``.
    """
    region = credible_region(pmap, probability)
    treatment = pmap.treatment
    level = None
    if treatment is not None and not treatment.smoothing_deg and region.density_threshold > 0:
        ratio = float(pmap.density.max()) / region.density_threshold
        level = 2.0 * math.log(ratio) / treatment.llh_scale
    return {
        "probability": probability,
        "area_deg2": region.area_deg2,
        "pixel_area_deg2": region.pixel_area_deg2,
        "n_tiles": int(region.tiles.size),
        "tiles_probability": region.tiles_probability,
        "density_threshold_sr": region.density_threshold,
        "delta2_llh_level": level,
        **asymmetric_errors(pmap, region, ra_rad, dec_rad).as_dict(),
        "containment_radius_deg": containment_radius_deg(pmap, ra_rad, dec_rad, probability),
    }


def _event(metadata: Mapping[str, Any]) -> dict[str, Any]:
    mjd = metadata.get("mjd")
    when = mjd_to_datetime(mjd) if isinstance(mjd, int | float) else None
    return {
        "run_id": metadata.get("run_id"),
        "event_id": metadata.get("event_id"),
        "event_type": metadata.get("event_type"),
        "mjd": mjd,
        "time_utc": None if when is None else when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "is_real_event": metadata.get("is_real_event"),
    }


def _scan(summary: SkyMapSummary, result: Mapping[str, Any], scan: ScanInfo) -> dict[str, Any]:
    return {
        "scan_id": scan.scan_id,
        "reco_algo": scan.reco_algo,
        "nside_progression": None
        if scan.nside_progression is None
        else {str(k): int(v) for k, v in scan.nside_progression.items()},
        "nsides": list(summary.nsides),
        "pixels_per_nside": {
            key.split("-", 1)[1]: len(entry.get("data", [])) for key, entry in result.items()
        },
        "failed_pixels": int(np.isnan(summary.skymap.llh).sum()),
        "complete": summary.complete,
    }


def build_stats(
    result: Mapping[str, Any],
    summary: SkyMapSummary,
    maps: Mapping[Convention, ProbabilityMap],
    scan: ScanInfo,
    options: ProductOptions,
) -> dict[str, Any]:
    """The stats document (see the module docstring).

    Parameters
    ----------
    result
        The SkyScanResult JSON dict (for the pixel counts).
    summary
        Its ``summarize_result`` (best fit, merged map, metadata).
    maps
        The probability map of each convention; ``options.convention`` must be one of them.
    scan
        Scan identifiers.
    options
        The product options (convention, position).

    Returns
    -------
    dict
        JSON-ready; NaN never appears (None instead).
    """
    best = summary.best_fit
    regions: dict[str, Any] = {}
    for convention, pmap in maps.items():
        assert pmap.treatment is not None
        regions[convention.value] = {
            "treatment": pmap.treatment.as_dict(),
            **{
                name: region_stats(pmap, p, best.ra_rad, best.dec_rad)
                for name, p in CREDIBLE_LEVELS.items()
            },
        }
    chosen = regions[options.convention.value]
    r50, r90 = chosen["50"], chosen["90"]
    doc: dict[str, Any] = {
        "format": STATS_FORMAT,
        "creator": {"name": CREATOR, "version": creator_version()},
        "event": _event(summary.metadata),
        "scan": _scan(summary, result, scan),
        "best_fit": {
            "ra_deg": best.ra_deg,
            "dec_deg": best.dec_deg,
            "llh": _finite(best.llh),
            "nside": best.nside,
            "pixel": best.pixel,
        },
        "probability": chosen["treatment"],
        "summary": {
            "convention": options.convention.value,
            "systematic_included": chosen["treatment"]["systematic_included"],
            "ra_deg": best.ra_deg,
            "dec_deg": best.dec_deg,
            **{f"{k[:-4]}_90_deg": r90[k] for k in _ERROR_KEYS},
            **{f"{k[:-4]}_50_deg": r50[k] for k in _ERROR_KEYS},
            "area_50_deg2": r50["area_deg2"],
            "area_90_deg2": r90["area_deg2"],
            "radius_90_deg": r90["containment_radius_deg"],
        },
        "regions": regions,
    }
    if options.position is not None:
        ra, dec = options.position
        doc["position"] = position_stats(
            maps[options.convention],
            ra,
            dec,
            regions=CREDIBLE_LEVELS,
            best_fit_deg=(best.ra_deg, best.dec_deg),
            cone_radius_deg=options.position_radius_deg,
        ).as_dict()
    return doc


_ERROR_KEYS = ("ra_plus_deg", "ra_minus_deg", "dec_plus_deg", "dec_minus_deg")
