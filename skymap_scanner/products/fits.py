"""FITS sky maps: a multi-order (NUNIQ) map and, optionally, a flat map at the max nside.

Multi-order file (one BINTABLE, readable by ``mhealpy.HealpixMap.read_map`` and ligo.skymap):

- ``UNIQ`` (int64): ``4 * nside**2 + nest_index`` of each merged tile (see ``multiorder``);
- ``PROBDENSITY`` (sr⁻¹): ``exp(-ΔLLH)`` with ``ΔLLH = llh - best_llh`` (not 2ΔLLH), normalised so
  that ``sum(density * tile area) = 1`` over the sphere; NaN tiles get 0;
- ``2DLLH``: 2ΔLLH of each tile (NaN kept).

Header: the HEALPix MOC keywords (``PIXTYPE``, ``ORDERING = NUNIQ``, ``COORDSYS = C``,
``MOCORDER``), and ``RUNID``, ``EVENTID``, ``EVENT-TYPE``, ``MJD-OBS``, ``DATE-OBS``, ``RA``/``DEC``
(best fit, deg), ``CONTOUR_AREA_50``/``CONTOUR_AREA_90`` (deg², HIERARCH cards) and the levels.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import healpy as hp
import numpy as np
import numpy.typing as npt
from astropy.io import fits as afits
from astropy.io.fits.verify import VerifyWarning
from astropy.table import Table
from astropy.time import Time

from .contours import SkyMapSummary
from .multiorder import MultiOrderMap

__all__ = ["probability_density", "write_flat_fits", "write_multiorder_fits"]


def probability_density(skymap: MultiOrderMap) -> npt.NDArray[np.float64]:
    """exp(-ΔLLH) per tile in sr⁻¹, normalised over the sphere (NaN → 0)."""
    half = 0.5 * skymap.delta2
    finite = np.isfinite(half)
    weight = np.zeros_like(half)
    if finite.any():
        weight[finite] = np.exp(-(half[finite] - half[finite].min()))
    norm = float((weight * skymap.pixel_area_sr).sum())
    if norm <= 0.0:
        raise ValueError("cannot normalise the probability map: no finite llh")
    out: npt.NDArray[np.float64] = weight / norm
    return out


def _header_cards(summary: SkyMapSummary) -> list[tuple[str, Any, str]]:
    meta = summary.metadata
    cards: list[tuple[str, Any, str]] = []
    if "run_id" in meta:
        cards.append(("RUNID", int(meta["run_id"]), "IceCube run number"))
    if "event_id" in meta:
        cards.append(("EVENTID", int(meta["event_id"]), "IceCube event number"))
    if "event_type" in meta:
        cards.append(("EVENT-TYPE", str(meta["event_type"]), "event type"))
    mjd = meta.get("mjd")
    if mjd is not None and math.isfinite(float(mjd)):
        cards.append(("MJD-OBS", float(mjd), "event time [MJD]"))
        cards.append(("DATE-OBS", Time(float(mjd), format="mjd", scale="utc").isot, "event time"))
    cards += [
        ("RA", summary.ra_deg, "best-fit right ascension [deg]"),
        ("DEC", summary.dec_deg, "best-fit declination [deg]"),
        ("LLH_MIN", summary.llh, "best-fit llh"),
        ("CONTOUR_AREA_50", summary.area_50_deg2, "2DLLH<=LEVEL_50 area [deg2]"),
        ("CONTOUR_AREA_90", summary.area_90_deg2, "2DLLH<=LEVEL_90 area [deg2]"),
        ("LEVEL_50", summary.region_50.level, "2DLLH level of the 50% region"),
        ("LEVEL_90", summary.region_90.level, "2DLLH level of the 90% region"),
    ]
    cal = summary.region_90_calibrated
    if cal is not None:
        cards.append(("LEVEL_90_CAL", cal.level, "calibrated 2DLLH level for 90%"))
        cards.append(("CONTOUR_AREA_90_CAL", cal.area_deg2, "calibrated 90% area [deg2]"))
    return cards


def write_multiorder_fits(summary: SkyMapSummary, path: Path, *, overwrite: bool = True) -> Path:
    """Write the multi-order map of ``summary`` to ``path`` (``.fits`` or ``.fits.gz``)."""
    skymap = summary.skymap
    table = Table()
    table["UNIQ"] = skymap.uniq.astype(np.int64)
    table["PROBDENSITY"] = probability_density(skymap)
    table["PROBDENSITY"].unit = "sr-1"
    table["2DLLH"] = skymap.delta2
    hdu = afits.table_to_hdu(table)
    header = hdu.header
    header["PIXTYPE"] = ("HEALPIX", "HEALPix pixelisation")
    header["ORDERING"] = ("NUNIQ", "multi-order: UNIQ = 4*nside**2 + nest")
    header["COORDSYS"] = ("C", "equatorial (J2000)")
    header["MOCORDER"] = (skymap.max_order, "max order")
    header["INDXSCHM"] = ("EXPLICIT", "indexing: explicit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)  # long keys become HIERARCH cards
        for key, value, comment in _header_cards(summary):
            header[key] = (value, comment)
        path.parent.mkdir(parents=True, exist_ok=True)
        afits.HDUList([afits.PrimaryHDU(), hdu]).writeto(path, overwrite=overwrite)
    return path


def write_flat_fits(summary: SkyMapSummary, path: Path, *, overwrite: bool = True) -> Path:
    """Write 2ΔLLH at the max nside (RING, coarse pixels filled down) with ``healpy.write_map``.

    Unscanned and NaN pixels are written as ``healpy.UNSEEN``. At nside 512 this is a 12 MB
    float32 file written in well under a second (uncompressed).
    """
    flat = summary.skymap.flat_map()
    flat[~np.isfinite(flat)] = hp.UNSEEN
    meta = summary.metadata
    extra = [("RA", summary.ra_deg), ("DEC", summary.dec_deg)]
    if "run_id" in meta:
        extra.append(("RUNID", int(meta["run_id"])))
    if "event_id" in meta:
        extra.append(("EVENTID", int(meta["event_id"])))
    path.parent.mkdir(parents=True, exist_ok=True)
    hp.write_map(
        str(path),
        flat.astype(np.float32),
        nest=False,
        coord="C",
        column_names=["2DLLH"],
        extra_header=extra,
        overwrite=overwrite,
        dtype=np.float32,
    )
    return path
