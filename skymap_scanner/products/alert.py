"""Alert-ready sky products of one scan result: the one entry point.

``build_products(result, scan=..., options=...)`` returns every product as bytes, keyed by file
name (the name a REST layer serves it under, e.g. ``GET /scan/{id}/products/stats.json``):

=================================  ========================  =================================
name                               content type              what
=================================  ========================  =================================
``skymap.multiorder.fits``         application/fits          multi-order map (UNIQ/PROBDENSITY)
``skymap.flat.fits.gz``            application/gzip          flattened map (PROB, NESTED)
``regions.geojson``                application/geo+json      50/90 % regions, both conventions
``region-<conv>-<50|90>.moc.fits`` application/fits          each region as an IVOA MOC
``stats.json``                     application/json          best fit, errors, areas, regions
``notice.json``                    application/json          GCN IceCube single-neutrino notice
``circular.txt``                   text/plain; charset=utf-8 draft circular
=================================  ========================  =================================

The bytes depend only on the arguments (an ETag can be their hash, ``Product.etag``). The position
query (``position_query``) is separate and cheap: it reads the stored multi-order FITS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .circular import draft_circular
from .contours import summarize_result
from .credible import credible_region, position_stats
from .fits import Card, flat_fits_bytes, multiorder_fits_bytes, read_multiorder_fits
from .geojson import feature_collection, region_feature, region_geometry
from .info import CREATOR, ProductOptions, ScanInfo, creator_version
from .moc import moc_fits_bytes, region_moc
from .notice import gcn_notice
from .probability import Convention, make_treatment, probability_map
from .stats import CREDIBLE_LEVELS, build_stats

__all__ = ["Product", "build_products", "header_cards", "position_query"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Product:
    """One product: a file name, its content type and its bytes."""

    name: str
    content_type: str
    data: bytes

    @property
    def etag(self) -> str:
        """A strong ETag value (quoted SHA-256 of the bytes)."""
        return f'"{hashlib.sha256(self.data).hexdigest()}"'


def _json_bytes(doc: Any, *, compact: bool = False) -> bytes:
    """UTF-8 JSON (never NaN); ``compact`` for big documents (the regions' coordinates)."""
    if compact:
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    else:
        text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode()


def _object_name(stats: Mapping[str, Any], scan: ScanInfo) -> str | None:
    name = scan.classifiers.get("event_name")
    if isinstance(name, str) and name:
        return name
    event = stats["event"]
    if event["run_id"] is None or event["event_id"] is None:
        return None
    return f"run{int(event['run_id']):08d}.evt{int(event['event_id']):012d}"


def _fits_time(value: str | dt.datetime | None) -> str | None:
    """FITS date-time (ISO 8601, UTC implied, no zone designator)."""
    if value is None:
        return None
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def header_cards(stats: Mapping[str, Any], scan: ScanInfo, options: ProductOptions) -> list[Card]:
    """FITS header cards from the stats document (the same numbers as every other product).

    Keys follow the LVK maps where they exist (OBJECT, DATE-OBS, MJD-OBS, CREATOR, ...) and
    icecube-skyreader's otherwise (RUNID, EVENTID, RA/DEC, RA_ERR_PLUS_90, CONTOUR_AREA_90, ...).
    Angles in degrees, areas in deg².
    """
    event, s, treatment = stats["event"], stats["summary"], stats["probability"]
    cards: list[Card] = [
        ("OBJECT", _object_name(stats, scan), "event"),
        ("ORIGIN", "IceCube", "organisation"),
        ("TELESCOP", "IceCube", "telescope"),
        ("INSTRUME", "IC86", "instrument"),
        ("CREATOR", CREATOR, "program that made this file"),
        ("VERSION", creator_version(), "its version"),
        ("RUNID", event["run_id"], "IceCube run number"),
        ("EVENTID", event["event_id"], "IceCube event number"),
        ("EVENT-TYPE", event["event_type"], "event type"),
        ("SCAN_ID", stats["scan"]["scan_id"], "SkyDriver scan id"),
        ("RECOALGO", stats["scan"]["reco_algo"], "reconstruction"),
        ("NSIDES", ",".join(str(n) for n in stats["scan"]["nsides"]), "scanned nsides"),
        ("COMPLETE", bool(stats["scan"]["complete"]), "final result (F: partial)"),
        ("MJD-OBS", event["mjd"], "event time [MJD, UTC]"),
        ("DATE-OBS", _fits_time(event["time_utc"]), "event time [UTC]"),
        ("DATE", _fits_time(options.issued_at), "file made [UTC]"),
        ("RA", s["ra_deg"], "best-fit right ascension (J2000) [deg]"),
        ("DEC", s["dec_deg"], "best-fit declination (J2000) [deg]"),
    ]
    for p in ("50", "90"):
        for axis in ("RA", "DEC"):
            for sign in ("PLUS", "MINUS"):
                value = s[f"{axis.lower()}_{sign.lower()}_{p}_deg"]
                cards.append((f"{axis}_ERR_{sign}_{p}", value, f"{p}% region extent [deg]"))
        cards.append((f"CONTOUR_AREA_{p}", s[f"area_{p}_deg2"], f"{p}% credible area [deg2]"))
    cards += [
        ("RADIUS_90", s["radius_90_deg"], "circle around best fit with 90% [deg]"),
        ("PROBCONV", treatment["convention"], "likelihood -> probability convention"),
        ("SYSTINCL", bool(treatment["systematic_included"]), "systematic included"),
        ("LLHSCALE", treatment["llh_scale"], "p ~ exp(-LLHSCALE * DeltaLLH)"),
        ("LEVEL_90", treatment["delta_llh_90"], "2DeltaLLH of a Gaussian's 90% region"),
        ("SMOOTH", treatment["smoothing_deg"], "Gaussian smoothing sigma [deg]"),
    ]
    return cards


def build_products(
    result: Mapping[str, Any],
    *,
    scan: ScanInfo | None = None,
    options: ProductOptions | None = None,
) -> dict[str, Product]:
    """All products of a SkyScanResult JSON dict (partial or final).

    Parameters
    ----------
    result
        The result as icecube-skyreader's ``serialize()`` writes it.
    scan
        Scan identifiers, reconstruction and classifiers (default: none known).
    options
        Convention, smoothing, flat nside, notice sequencing, ... (default: ``ProductOptions()``).

    Returns
    -------
    dict[str, Product]
        By file name (see the module docstring), in a fixed order.

    Raises
    ------
    ValueError
        When ``result`` is not a readable result (no nsides, no finite llh, ...).
    """
    scan = scan if scan is not None else ScanInfo()
    options = options if options is not None else ProductOptions()
    t0 = time.perf_counter()
    summary = summarize_result(result)
    maps = {
        conv: probability_map(
            summary.skymap,
            make_treatment(
                conv,
                smoothing_deg=options.smoothing_deg,
                calibrated_delta_llh_90=options.calibrated_delta_llh_90,
            ),
        )
        for conv in (Convention.CALIBRATED, Convention.WILKS)
    }
    stats = build_stats(result, summary, maps, scan, options)
    cards = header_cards(stats, scan, options)
    chosen = maps[options.convention]
    multiorder = multiorder_fits_bytes(chosen, cards)
    out = [
        Product("skymap.multiorder.fits", "application/fits", multiorder),
        Product(
            "skymap.flat.fits.gz",
            "application/gzip",
            flat_fits_bytes(chosen, options.flat_nside or chosen.max_nside, cards),
        ),
    ]
    features = []
    for conv, pmap in maps.items():
        for name, p in CREDIBLE_LEVELS.items():
            region = credible_region(pmap, p)
            props = {
                "name": f"{conv.value}-{name}",
                "convention": conv.value,
                "credible_probability": p,
                "area_deg2": stats["regions"][conv.value][name]["area_deg2"],
                "pixel_area_deg2": region.pixel_area_deg2,
            }
            features.append(region_feature(region_geometry(pmap, region.tiles), props))
            moc_cards = [
                *cards,
                ("MOCPROB", p, "credible probability"),
                ("MOCCONV", conv.value, ""),
            ]
            out.append(
                Product(
                    f"region-{conv.value}-{name}.moc.fits",
                    "application/fits",
                    moc_fits_bytes(region_moc(pmap, region.tiles), _moc_cards(moc_cards)),
                )
            )
    out.insert(
        2,
        Product(
            "regions.geojson",
            "application/geo+json",
            _json_bytes(feature_collection(features), compact=True),
        ),
    )
    out += [
        Product("stats.json", "application/json", _json_bytes(stats)),
        Product(
            "notice.json",
            "application/json",
            _json_bytes(gcn_notice(stats, scan, options, healpix_fits=multiorder)),
        ),
        Product("circular.txt", "text/plain; charset=utf-8", draft_circular(stats, scan).encode()),
    ]
    LOG.info("built %d products in %.3f s", len(out), time.perf_counter() - t0)
    return {p.name: p for p in out}


def _moc_cards(cards: list[Card]) -> list[Card]:
    """The identifying cards a MOC carries (not the map's errors and areas)."""
    keep = {"OBJECT", "ORIGIN", "CREATOR", "VERSION", "RUNID", "EVENTID", "SCAN_ID", "DATE-OBS"}
    keep |= {"COMPLETE", "PROBCONV", "SYSTINCL", "MOCPROB", "MOCCONV"}
    return [c for c in cards if c[0] in keep and c[1] is not None]


def position_query(
    multiorder_fits: bytes, ra_deg: float, dec_deg: float, *, radius_deg: float | None = None
) -> dict[str, Any]:
    """What the stored multi-order map says about one position (cheap: no result needed).

    Parameters
    ----------
    multiorder_fits
        The ``skymap.multiorder.fits`` product.
    ra_deg, dec_deg
        The position [deg].
    radius_deg
        Also give the probability inside this cone around the position [deg].

    Returns
    -------
    dict
        ``searched_area_deg2``, ``searched_probability``, ``probability_density_sr``, ``inside``
        (``{"50": bool, "90": bool}``: inside the 50 / 90 % credible regions),
        ``offset_from_best_fit_deg`` and, with ``radius_deg``, ``cone``; plus the map's
        ``convention`` and ``systematic_included``.
    """
    pmap, header = read_multiorder_fits(multiorder_fits)
    best = (
        (float(header["RA"]), float(header["DEC"])) if "RA" in header and "DEC" in header else None
    )
    stats = position_stats(
        pmap,
        ra_deg,
        dec_deg,
        regions=CREDIBLE_LEVELS,
        best_fit_deg=best,
        cone_radius_deg=radius_deg,
    )
    return {
        **stats.as_dict(),
        "convention": header.get("PROBCONV"),
        "systematic_included": header.get("SYSTINCL"),
    }
