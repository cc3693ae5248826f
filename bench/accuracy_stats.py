"""Statistics of bench/accuracy.py: per-event evaluation, the energy-dependent calibrated 90 % level,
coverage per energy band, and the Markdown summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from skymap_scanner.physics.coordinates import dir_to_equa
from skymap_scanner.products import LEVEL_90, angular_distance_deg, summarize_result
from skymap_scanner.products.calibration import LevelModel, fit_level_model

_SR_TO_DEG2 = (180.0 / math.pi) ** 2
#: True-energy bands (GeV) of the report.
ENERGY_BANDS = ((1e3, 1e4), (1e4, 1e5), (1e5, 1e6), (1e6, 1e7))


def truth_radec(event: dict[str, Any]) -> tuple[float, float]:
    """True (RA, Dec) in radians of a simulated event's muon (the direction it came from)."""
    truth = event["truth"]
    ra, dec = dir_to_equa(truth["zenith"], truth["azimuth"], event["mjd"])
    return float(ra), float(dec)


def best_e_tot(result: dict[str, Any], nside: int, pixel: int) -> float:
    """The E_tot column (GeV, the charge proxy) of the best-fit pixel."""
    block = result[f"nside-{nside}"]
    col = block["columns"].index("E_tot")
    for row in block["data"]:
        if int(row[0]) == pixel:
            value = row[col]
            return float(value) if isinstance(value, int | float) else math.nan
    return math.nan


def evaluate(event: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Best-fit error, 2ΔLLH at the truth, Wilks 90 % area and the area curve of one result."""
    summary = summarize_result(result)
    ra_t, dec_t = truth_radec(event)
    skymap = summary.skymap
    delta2 = float(skymap.values_at(np.array([ra_t]), np.array([dec_t]))[0])
    order = np.argsort(skymap.delta2, kind="stable")  # NaN last
    best = summary.best_fit
    return {
        "truth_ra_deg": math.degrees(ra_t),
        "truth_dec_deg": math.degrees(dec_t),
        "best_ra_deg": summary.ra_deg,
        "best_dec_deg": summary.dec_deg,
        "best_nside": best.nside,
        "best_e_tot_gev": best_e_tot(result, best.nside, best.pixel),
        "error_deg": float(angular_distance_deg(summary.ra_rad, summary.dec_rad, ra_t, dec_t)),
        "delta2_truth": delta2,
        "area90_wilks_deg2": summary.area_90_deg2,
        "covered_wilks": bool(delta2 <= LEVEL_90),
        "minima": summary.metadata.get("minima"),
        "n_pixels": {str(n): len(result[f"nside-{n}"]["data"]) for n in summary.nsides},
        # (2ΔLLH, tile area) sorted by 2ΔLLH: the area of any level, computed in the parent
        "_curve": (skymap.delta2[order], skymap.pixel_area_sr[order] * _SR_TO_DEG2),
    }


def area_at(curve: tuple[np.ndarray, np.ndarray], level: float) -> float:
    """Area (deg²) of all tiles with 2ΔLLH ≤ level (as `products.contours.region`)."""
    delta2, area = curve
    return float(area[delta2 <= level].sum())


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else math.nan


def _band_name(lo: float, hi: float) -> str:
    def fmt(e: float) -> str:
        return f"{e / 1e3:g} TeV" if e < 1e6 else f"{e / 1e6:g} PeV"

    return f"{fmt(lo)}-{fmt(hi)}"


def apply_levels(records: list[dict[str, Any]], model: LevelModel, tag: str) -> None:
    """Add ``level_<tag>``, ``covered_<tag>`` and ``area90_<tag>_deg2`` to each record."""
    for r in records:
        level = model.level(r["best_e_tot_gev"])
        r[f"level_{tag}"] = level
        r[f"covered_{tag}"] = bool(r["delta2_truth"] <= level)
        r[f"area90_{tag}_deg2"] = area_at(r["_curve"], level)


def _errors(records: list[dict[str, Any]]) -> dict[str, float]:
    err = np.array([r["error_deg"] for r in records])
    if err.size == 0:
        return {"n": 0}
    return {
        "n": int(err.size),
        "median_error_deg": float(np.median(err)),
        "error_68_deg": float(np.quantile(err, 0.68)),
        "error_90_deg": float(np.quantile(err, 0.9)),
        "fraction_beyond_5deg": float(np.mean(err > 5.0)),
        "mean_error_rad": float(np.mean(np.radians(err))),
    }


def summarise(
    records: list[dict[str, Any]], models: dict[str, LevelModel | None]
) -> dict[str, Any]:
    """Errors overall, by kind and by energy band; coverage of each level model given (and of the
    in-sample fit of these events)."""
    ok = [r for r in records if "error" not in r]
    out: dict[str, Any] = {"n_events": len(records), "n_failed_events": len(records) - len(ok)}
    out.update(_errors(ok))
    out["by_kind"] = {
        kind: _errors([r for r in ok if bool(r.get("starting")) == (kind == "starting")])
        for kind in ("through-going", "starting")
    }
    in_sample = fit_level_model(
        np.array([r["best_e_tot_gev"] for r in ok]), np.array([r["delta2_truth"] for r in ok])
    )
    all_models = {**models, "in_sample": in_sample}
    out["level_models"] = {k: None if m is None else m.as_dict() for k, m in all_models.items()}
    tags = []  # coverage variants whose per-event keys are set
    for tag, model in all_models.items():
        if model is not None:
            apply_levels(ok, model, tag)
            tags.append(tag)
    # two-fold cross-validation: each half is covered by the model fitted on the other half
    folds = {}
    for parity in (0, 1):
        calib = [r for r in ok if r["index"] % 2 == parity]
        model = fit_level_model(
            np.array([r["best_e_tot_gev"] for r in calib]),
            np.array([r["delta2_truth"] for r in calib]),
        )
        folds[f"calibrated_on_{'even' if parity == 0 else 'odd'}"] = (
            None if model is None else model.as_dict()
        )
        if model is not None:
            apply_levels([r for r in ok if r["index"] % 2 != parity], model, "crossval")
    out["crossval_models"] = folds
    if all(v is not None for v in folds.values()):
        tags.append("crossval")
    out["coverage_wilks"] = float(np.mean([r["covered_wilks"] for r in ok]))
    out["coverage"] = {tag: float(np.mean([r[f"covered_{tag}"] for r in ok])) for tag in tags}
    out["median_area90_deg2"] = {
        "wilks": _median([r["area90_wilks_deg2"] for r in ok]),
        **{tag: _median([r[f"area90_{tag}_deg2"] for r in ok]) for tag in tags},
    }
    bands = {}
    for lo, hi in ENERGY_BANDS:
        sel = [r for r in ok if lo <= r["energy_gev"] < hi]
        band: dict[str, Any] = _errors(sel)
        band["coverage_wilks"] = float(np.mean([r["covered_wilks"] for r in sel])) if sel else None
        for tag in tags:
            if sel:
                band[f"coverage_{tag}"] = float(np.mean([r[f"covered_{tag}"] for r in sel]))
                band[f"median_area90_{tag}_deg2"] = _median([r[f"area90_{tag}_deg2"] for r in sel])
        bands[_band_name(lo, hi)] = band
    out["by_energy"] = bands
    out["median_hit_doms"] = _median([r["n_hit_doms"] for r in ok])
    out["mean_scan_cpu_s"] = float(np.mean([r["cpu_s"] for r in ok])) if ok else math.nan
    out["mean_pixels_per_scan"] = (
        float(np.mean([r["n_reconstructed"] for r in ok])) if ok else math.nan
    )
    out["events_with_two_minima"] = sum(1 for r in ok if len(r.get("minima") or []) > 1)
    return out


def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f} %"


def markdown(s: dict[str, Any], provenance: dict[str, Any], tag: str) -> str:
    """The summary as Markdown; ``tag`` names the level model whose coverage is the headline."""
    lines = [
        f"{s['n_events']} simulated events (`{provenance['simulator']}`, seed {provenance['seed']}, "
        f"{provenance['energy_range_gev'][0]:g}-{provenance['energy_range_gev'][1]:g} GeV, zenith "
        f"{provenance['zenith_range_deg'][0]:g}°-{provenance['zenith_range_deg'][1]:g}°), "
        f"`{provenance['reco_algo']}`, `{provenance['nsides']}`; {provenance['wall_s'] / 60:.0f} min "
        f"on {provenance['processes']} processes ({s['mean_scan_cpu_s']:.0f} s CPU and "
        f"{s['mean_pixels_per_scan']:.0f} pixels per scan, median {s['median_hit_doms']:.0f} hit DOMs).",
        "",
        "| quantity | all | through-going | starting |",
        "|---|---|---|---|",
    ]
    kinds = [s, s["by_kind"]["through-going"], s["by_kind"]["starting"]]

    def row(name: str, key: str, fmt: str) -> str:
        vals = [("—" if k.get(key) is None else format(k[key], fmt)) for k in kinds]
        return f"| {name} | " + " | ".join(vals) + " |"

    lines += [
        row("events", "n", "d"),
        row("median error (deg)", "median_error_deg", ".2f"),
        row("90 % quantile of the error (deg)", "error_90_deg", ".2f"),
        f"| beyond 5° | {_pct(s.get('fraction_beyond_5deg'))} | "
        f"{_pct(kinds[1].get('fraction_beyond_5deg'))} | {_pct(kinds[2].get('fraction_beyond_5deg'))} |",
        "",
        f"Coverage of the 90 % region: Wilks (2ΔLLH ≤ 4.61) {_pct(s['coverage_wilks'])}; "
        + "; ".join(f"`{k}` {_pct(v)}" for k, v in s["coverage"].items())
        + ". Median 90 % areas: "
        + ", ".join(f"`{k}` {v:.2f} deg²" for k, v in s["median_area90_deg2"].items())
        + ".",
        "",
        f"| true energy | events | median error | 90 % quantile | beyond 5° | coverage Wilks | "
        f"coverage `{tag}` | median area `{tag}` |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, b in s["by_energy"].items():
        if not b["n"]:
            lines.append(f"| {name} | 0 | | | | | | |")
            continue
        area = b.get(f"median_area90_{tag}_deg2")
        lines.append(
            f"| {name} | {b['n']} | {b['median_error_deg']:.2f}° | {b['error_90_deg']:.2f}° | "
            f"{_pct(b['fraction_beyond_5deg'])} | {_pct(b['coverage_wilks'])} | "
            f"{_pct(b.get(f'coverage_{tag}'))} | "
            + ("—" if area is None else f"{area:.2f} deg²")
            + " |"
        )
    return "\n".join(lines)
