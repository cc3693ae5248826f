"""Best fit, containment regions and their areas for a scan result.

Regions are defined on the merged multi-order map (see ``multiorder``): the region at level L is
the set of tiles whose 2ΔLLH ≤ L, i.e. a direction is inside when the finest scanned pixel
containing it has 2ΔLLH ≤ L. Levels follow Wilks' theorem for 2 degrees of freedom, as
icecube-skyreader draws them: 1.39 (50 %), 4.61 (90 %), 11.83 (3 sigma).

Area method: the sum of the solid angles of the tiles inside the level, each at its own nside
(4π / (12 nside²) sr per tile), in deg². Every tile below the level counts, including islands
disconnected from the best fit. skyreader instead draws smooth contours (meander) through the
flat map and takes their spherical-polygon area; the pixel sum is exact for the pixelised region
and agrees with skyreader's polygons to within the boundary pixels' area (a few % for the default
8/64/512 progression, where the 90 % boundary may lie partly in nside-64 pixels).

Error radii: ``radius_deg`` is the radius of the spherical cap with the region's area; ``max
distance`` is the largest opening angle between the best fit and the centre of any tile inside the
region. All angles passed in are radians; the ``_deg`` results are degrees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .multiorder import (
    BestFit,
    MultiOrderMap,
    build_multiorder,
    find_best_fit,
    multiorder_from_result,
    parse_result,
)

__all__ = [
    "LEVEL_3SIGMA",
    "LEVEL_50",
    "LEVEL_90",
    "Region",
    "SkyMapSummary",
    "angular_distance_deg",
    "contains",
    "region",
    "summarize_result",
]

LEVEL_50 = 1.39
"""2ΔLLH of the 50 % region (Wilks, 2 dof)."""
LEVEL_90 = 4.61
"""2ΔLLH of the 90 % region (Wilks, 2 dof)."""
LEVEL_3SIGMA = 11.83
"""2ΔLLH of the 3 sigma (99.73 %) region (Wilks, 2 dof)."""

_SR_TO_DEG2 = (180.0 / math.pi) ** 2


def angular_distance_deg(
    ra1: npt.ArrayLike, dec1: npt.ArrayLike, ra2: npt.ArrayLike, dec2: npt.ArrayLike
) -> Any:
    """Opening angle in degrees between (ra1, dec1) and (ra2, dec2), all given in radians.

    Uses the haversine/Vincenty form (accurate for tiny and near-antipodal angles). Returns a
    float for scalar input, an array otherwise.
    """
    a1, d1, a2, d2 = (np.asarray(x, dtype=np.float64) for x in (ra1, dec1, ra2, dec2))
    dra = a2 - a1
    num = np.hypot(
        np.cos(d2) * np.sin(dra), np.cos(d1) * np.sin(d2) - np.sin(d1) * np.cos(d2) * np.cos(dra)
    )
    den = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(dra)
    out = np.degrees(np.arctan2(num, den))
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class Region:
    """The region 2ΔLLH ≤ ``level``."""

    level: float
    area_deg2: float
    n_tiles: int
    radius_deg: float
    """Radius of the spherical cap with the same area."""
    max_distance_deg: float
    """Largest best-fit → tile-centre angle inside the region (NaN if the region is empty)."""


def _cap_radius_deg(area_deg2: float) -> float:
    omega = min(area_deg2 / _SR_TO_DEG2, 4 * math.pi)
    return math.degrees(math.acos(1.0 - omega / (2 * math.pi)))


def region(skymap: MultiOrderMap, best: BestFit, level: float) -> Region:
    """Area and extent of the region 2ΔLLH ≤ ``level`` (see the module docstring)."""
    inside = skymap.delta2 <= level  # NaN → outside
    area = float(skymap.pixel_area_sr[inside].sum()) * _SR_TO_DEG2
    if inside.any():
        ra, dec = skymap.centres()
        dist = angular_distance_deg(best.ra_rad, best.dec_rad, ra[inside], dec[inside])
        max_dist = float(np.max(dist))
    else:
        max_dist = math.nan
    return Region(level, area, int(inside.sum()), _cap_radius_deg(area), max_dist)


@dataclass(frozen=True)
class SkyMapSummary:
    """What a scan result says about the direction, in one object."""

    best_fit: BestFit
    region_50: Region
    region_90: Region
    region_90_calibrated: Region | None
    """The 90 % region at the calibrated 2ΔLLH level, when one was given."""
    metadata: Mapping[str, Any]
    nsides: tuple[int, ...]
    complete: bool
    skymap: MultiOrderMap = field(repr=False, compare=False)

    @property
    def ra_rad(self) -> float:
        return self.best_fit.ra_rad

    @property
    def dec_rad(self) -> float:
        return self.best_fit.dec_rad

    @property
    def ra_deg(self) -> float:
        return self.best_fit.ra_deg

    @property
    def dec_deg(self) -> float:
        return self.best_fit.dec_deg

    @property
    def llh(self) -> float:
        return self.best_fit.llh

    @property
    def area_50_deg2(self) -> float:
        return self.region_50.area_deg2

    @property
    def area_90_deg2(self) -> float:
        return self.region_90.area_deg2

    @property
    def error_radius_90_deg(self) -> float:
        """Radius of the cap with the 90 % area."""
        return self.region_90.radius_deg

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (angles in degrees unless the key says rad)."""

        def reg(r: Region | None) -> dict[str, float] | None:
            if r is None:
                return None
            return {
                "level": r.level,
                "area_deg2": r.area_deg2,
                "radius_deg": r.radius_deg,
                "max_distance_deg": r.max_distance_deg,
            }

        b = self.best_fit
        return {
            "best_fit": {
                "ra_rad": b.ra_rad,
                "dec_rad": b.dec_rad,
                "ra_deg": b.ra_deg,
                "dec_deg": b.dec_deg,
                "llh": b.llh,
                "nside": b.nside,
                "pixel": b.pixel,
            },
            "region_50": reg(self.region_50),
            "region_90": reg(self.region_90),
            "region_90_calibrated": reg(self.region_90_calibrated),
            "nsides": list(self.nsides),
            "complete": self.complete,
            "metadata": dict(self.metadata),
        }


def summarize_result(
    result: Mapping[str, Any], *, calibrated_delta_llh_90: float | None = None
) -> SkyMapSummary:
    """Summarise a SkyScanResult JSON dict.

    The best fit equals skyreader's ``SkyScanResult.deserialize(result).best_dir`` (an nside with
    any NaN llh is skipped, as skyreader does). ``region_90_calibrated`` uses the calibrated 2ΔLLH
    level the scanner wrote into the result's metadata (``calibrated_delta_llh_90``, which depends on
    the event's brightness; see ``calibration.py``), else ``calibrated_delta_llh_90`` if given (a
    single level found to give 90 % coverage on simulation), else it is None.
    """
    parsed = parse_result(result)
    best = find_best_fit(parsed)
    skymap = build_multiorder(parsed, best.llh)
    level = parsed.metadata.get("calibrated_delta_llh_90", calibrated_delta_llh_90)
    calibrated = None if level is None else region(skymap, best, float(level))
    return SkyMapSummary(
        best_fit=best,
        region_50=region(skymap, best, LEVEL_50),
        region_90=region(skymap, best, LEVEL_90),
        region_90_calibrated=calibrated,
        metadata=parsed.metadata,
        nsides=parsed.nsides,
        complete=parsed.complete,
        skymap=skymap,
    )


def contains(
    result_or_summary: Mapping[str, Any] | SkyMapSummary | MultiOrderMap,
    ra: float,
    dec: float,
    level: float = LEVEL_90,
) -> bool:
    """Whether (ra, dec) [radians] lies inside the region 2ΔLLH ≤ ``level``.

    The value used is that of the finest scanned pixel containing the point; a point outside
    every scanned pixel, or in a NaN pixel, is outside.
    """
    if isinstance(result_or_summary, SkyMapSummary):
        skymap = result_or_summary.skymap
    elif isinstance(result_or_summary, MultiOrderMap):
        skymap = result_or_summary
    else:
        skymap, _ = multiorder_from_result(result_or_summary)
    value = skymap.values_at(np.array([ra]), np.array([dec]))[0]
    return bool(value <= level)
