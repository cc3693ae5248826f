"""Tests for skymap_scanner.products on a synthetic 8/64/512 result refined as the scanner does."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import healpy as hp
import numpy as np
import pytest
from skyreader import SkyScanResult

from skymap_scanner.products.contours import (
    LEVEL_50,
    LEVEL_90,
    angular_distance_deg,
    contains,
    summarize_result,
)
from skymap_scanner.products.multiorder import (
    NAN_SENTINEL,
    build_multiorder,
    find_best_fit,
    parse_result,
)
from skymap_scanner.products.plots import make_plots
from skymap_scanner.products.summarize_cli import run_summarize

RA0 = math.radians(123.4)
DEC0 = math.radians(-23.4)
SIGMA_DEG = 1.5  # 2ΔLLH = (angle / 1.5°)²
LLH_OFFSET = 1000.0
COLUMNS = ["index", "llh", "E_in", "E_tot", "X", "Y", "Z", "T"]
FINEST_PIXEL_DEG = math.degrees(hp.nside2resol(512))


def _children(nside: int, ring_pixels: Any, to_nside: int) -> Any:
    """All RING descendants at ``to_nside`` of RING pixels at ``nside``."""
    nest = np.asarray(hp.ring2nest(nside, ring_pixels), dtype=np.int64)
    while nside < to_nside:
        nest = (4 * nest[:, None] + np.arange(4)).ravel()
        nside *= 2
    return np.sort(hp.nest2ring(to_nside, nest))


def _llh(nside: int, pixels: Any, ra0: float, dec0: float) -> Any:
    vec = np.array(hp.pix2vec(nside, pixels)).T
    angle = np.degrees(np.arccos(np.clip(vec @ hp.ang2vec(math.pi / 2 - dec0, ra0), -1, 1)))
    return LLH_OFFSET + 0.5 * (angle / SIGMA_DEG) ** 2


def _entry(nside: int, pixels: Any, llh: Any, event_id: int) -> dict[str, Any]:
    data = [
        [int(p), float(v), 10.0 + i % 7, 20.0, -100.0, 50.0, -300.0, 10000.0 + i]
        for i, (p, v) in enumerate(zip(pixels, llh, strict=True))
    ]
    metadata = {
        "nside": nside,
        "complete": True,
        "run_id": 136662,
        "event_id": event_id,
        "event_type": "neutrino",
        "mjd": 59723.32051140454,
        "is_real_event": False,
        "version": 1,
    }
    return {"columns": COLUMNS, "data": data, "metadata": metadata}


def make_result(ra0: float = RA0, dec0: float = DEC0, event_id: int = 35405932) -> dict[str, Any]:
    """8 full sky; 64 and 512 around the running global minimum (default 8:0 64:12 512:24)."""
    result: dict[str, Any] = {}
    p8 = np.arange(hp.nside2npix(8))
    l8 = _llh(8, p8, ra0, dec0)
    result["nside-8"] = _entry(8, p8, l8, event_id)
    radius = math.sqrt(12 * hp.nside2pixarea(8) / math.pi)  # 14.3°
    sel8 = hp.query_disc(8, hp.pix2vec(8, int(p8[np.argmin(l8)])), radius)
    p64 = _children(8, sel8, 64)
    l64 = _llh(64, p64, ra0, dec0)
    result["nside-64"] = _entry(64, p64, l64, event_id)
    radius = math.sqrt(24 * hp.nside2pixarea(64) / math.pi)  # 2.5°
    sel64 = hp.query_disc(64, hp.pix2vec(64, int(p64[np.argmin(l64)])), radius)
    p512 = _children(64, sel64, 512)
    result["nside-512"] = _entry(512, p512, _llh(512, p512, ra0, dec0), event_id)
    assert 8 <= len(sel8) <= 13 and 20 <= len(sel64) <= 28
    return result


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return make_result()


def test_skyreader_loads_synthetic_result_and_agrees_on_best_fit(result: dict[str, Any]) -> None:
    reader = SkyScanResult.deserialize(result)
    for nside in (8, 64, 512):
        assert len(reader.get_results_per_nside(nside)) == len(result[f"nside-{nside}"]["data"])
    assert str(reader.get_event_metadata()) == "run00136662.evt000035405932.neutrino"
    summary = summarize_result(result)
    ra, dec = reader.best_dir
    assert summary.ra_rad == pytest.approx(float(ra), abs=1e-12)
    assert summary.dec_rad == pytest.approx(float(dec), abs=1e-12)
    assert summary.llh == pytest.approx(float(reader.min_llh), abs=1e-9)
    assert summary.best_fit.nside == 512


def test_best_fit_is_the_chosen_direction(result: dict[str, Any]) -> None:
    summary = summarize_result(result)
    assert angular_distance_deg(summary.ra_rad, summary.dec_rad, RA0, DEC0) < FINEST_PIXEL_DEG
    assert summary.ra_deg == pytest.approx(math.degrees(summary.ra_rad))
    assert summary.metadata["run_id"] == 136662
    assert summary.nsides == (8, 64, 512) and summary.complete


def test_areas_match_the_gaussian_expectation(result: dict[str, Any]) -> None:
    summary = summarize_result(result, calibrated_delta_llh_90=6.0)
    for level, area in ((LEVEL_50, summary.area_50_deg2), (LEVEL_90, summary.area_90_deg2)):
        expected = math.pi * SIGMA_DEG**2 * level
        assert area == pytest.approx(expected, rel=0.10), (level, area, expected)
    assert summary.error_radius_90_deg == pytest.approx(SIGMA_DEG * math.sqrt(LEVEL_90), rel=0.05)
    assert summary.region_90.max_distance_deg == pytest.approx(
        SIGMA_DEG * math.sqrt(LEVEL_90), abs=1.0
    )
    calibrated = summary.region_90_calibrated
    assert calibrated is not None and calibrated.level == 6.0
    assert calibrated.area_deg2 > summary.area_90_deg2
    assert summarize_result(result).region_90_calibrated is None


def test_contains(result: dict[str, Any]) -> None:
    summary = summarize_result(result)
    assert contains(summary, RA0, DEC0, LEVEL_90)
    assert contains(result, RA0, DEC0, LEVEL_50)
    assert not contains(summary, RA0, DEC0 + math.radians(10), LEVEL_90)
    assert not contains(summary, RA0 + math.pi, -DEC0, 11.83)
    # 2.5 sigma away: 2ΔLLH = 6.25 > 4.61 but < 11.83
    off = DEC0 + math.radians(2.5 * SIGMA_DEG)
    assert not contains(summary, RA0, off, LEVEL_90) and contains(summary, RA0, off, 11.83)
    assert contains(summary.skymap, RA0 + 2 * math.pi, DEC0, LEVEL_90)  # RA wraps


def test_angular_distance() -> None:
    assert angular_distance_deg(0.0, 0.0, math.pi / 2, 0.0) == pytest.approx(90.0)
    assert angular_distance_deg(1.0, math.pi / 2, 2.0, math.pi / 2) == pytest.approx(0.0, abs=1e-9)
    assert angular_distance_deg(0.3, 0.2, 0.3 + math.pi, -0.2) == pytest.approx(180.0)
    tiny = angular_distance_deg(0.0, 0.0, 1e-9, 0.0)
    assert tiny == pytest.approx(math.degrees(1e-9), rel=1e-6)
    out = angular_distance_deg(np.zeros(3), np.zeros(3), np.array([0.0, 0.1, 0.2]), np.zeros(3))
    np.testing.assert_allclose(out, np.degrees([0.0, 0.1, 0.2]), atol=1e-12)


def test_multiorder_tiles_cover_the_sky_once(result: dict[str, Any]) -> None:
    summary = summarize_result(result)
    m = summary.skymap
    assert np.unique(m.uniq).size == m.uniq.size
    assert m.pixel_area_sr.sum() == pytest.approx(4 * math.pi, rel=1e-12)
    assert set(np.unique(m.nside).tolist()) <= {8, 16, 32, 64, 128, 256, 512}
    assert np.nanmin(m.delta2) == 0.0
    flat = m.flat_map()
    assert flat.size == hp.nside2npix(512) and not np.isnan(flat).any()
    # flat map = finest scanned value: nside-512 pixels carry their own value
    p512 = np.array([row[0] for row in result["nside-512"]["data"]])
    l512 = np.array([row[1] for row in result["nside-512"]["data"]])
    np.testing.assert_allclose(flat[p512], 2 * (l512 - summary.llh))
    # ... and elsewhere the nside-8 value
    p8 = hp.ang2pix(8, math.pi / 2 - (-DEC0), RA0 + math.pi)
    far = hp.ang2pix(512, *hp.pix2ang(8, p8))
    assert flat[far] == pytest.approx(2 * (result["nside-8"]["data"][p8][1] - summary.llh))


def test_partial_coverage_splits_coarse_pixels() -> None:
    """One nside-4 pixel refined at nside 16 directly: total area stays 4π, lookups exact."""
    meta = {"nside": 0, "run_id": 136662, "event_id": 1, "event_type": "x", "mjd": 1.0}
    coarse = [[p, 10.0 + p, 0, 0, 0, 0, 0, 0] for p in range(hp.nside2npix(4))]
    fine_pixel = int(hp.nest2ring(16, 5 * 16 + 3))  # one nside-16 child of nest pixel 5
    result = {
        "nside-4": {"columns": COLUMNS, "data": coarse, "metadata": {**meta, "nside": 4}},
        "nside-16": {
            "columns": COLUMNS,
            "data": [[fine_pixel, 1.0, 0, 0, 0, 0, 0, 0]],
            "metadata": {**meta, "nside": 16},
        },
    }
    parsed = parse_result(result)
    best = find_best_fit(parsed)
    m = build_multiorder(parsed, best.llh)
    assert best.nside == 16 and best.pixel == fine_pixel
    assert m.pixel_area_sr.sum() == pytest.approx(4 * math.pi, rel=1e-12)
    assert m.uniq.size == hp.nside2npix(4) - 1 + 3 + 4  # split 1 → 3 (order 3) + 4 (order 4)
    theta, phi = hp.pix2ang(16, fine_pixel)
    assert float(m.values_at(phi, math.pi / 2 - theta)) == 0.0
    coarse_ring = int(hp.nest2ring(4, 5))
    theta, phi = hp.pix2ang(16, int(hp.nest2ring(16, 5 * 16)))  # sibling: keeps coarse value
    assert float(m.values_at(phi, math.pi / 2 - theta)) == pytest.approx(
        2 * (10.0 + coarse_ring - 1)
    )


def test_nan_nside_is_skipped_for_the_best_fit(result: dict[str, Any]) -> None:
    broken = copy.deepcopy(result)
    rows = broken["nside-512"]["data"]
    rows[len(rows) // 2][1] = NAN_SENTINEL
    reader = SkyScanResult.deserialize(broken)
    summary = summarize_result(broken)
    assert summary.best_fit.nside == 64  # nside 512 has a NaN → skipped, as skyreader does
    ra, dec = reader.best_dir
    assert (summary.ra_rad, summary.dec_rad) == pytest.approx((float(ra), float(dec)), abs=1e-12)
    assert summary.llh == pytest.approx(float(reader.min_llh))
    # the NaN pixel is outside every region; the map keeps it as NaN
    assert np.isnan(summary.skymap.delta2).sum() == 1
    # bare JSON NaN (older files) is read the same way
    bare = json.loads(json.dumps(broken).replace(f'"{NAN_SENTINEL}"', "NaN"))
    assert summarize_result(bare).best_fit == summary.best_fit
    # every nside with a NaN → no best fit
    for key in ("nside-8", "nside-64"):
        broken[key]["data"][0][1] = NAN_SENTINEL
    with pytest.raises(ValueError, match="NaN"):
        summarize_result(broken)


def test_ties_go_to_the_first_nside_listed_like_skyreader() -> None:
    meta = {"run_id": 136662, "event_id": 1, "event_type": "x", "mjd": 1.0, "version": 1}
    rows1 = [[p, 1.0 if p == 5 else 9.0, 0, 0, 0, 0, 0, 0] for p in range(12)]
    rows2 = [[p, 1.0 if p == 7 else 9.0, 0, 0, 0, 0, 0, 0] for p in range(48)]
    one: dict[str, Any] = {"columns": COLUMNS, "data": rows1, "metadata": {**meta, "nside": 1}}
    two: dict[str, Any] = {"columns": COLUMNS, "data": rows2, "metadata": {**meta, "nside": 2}}
    cases: list[Any] = [{"nside-1": one, "nside-2": two}, {"nside-2": two, "nside-1": one}]
    for res in cases:
        ra, dec = SkyScanResult.deserialize(res).best_dir
        summary = summarize_result(res)
        assert (summary.ra_rad, summary.dec_rad) == pytest.approx((float(ra), float(dec)))


def test_plots_are_written(result: dict[str, Any], tmp_path: Path) -> None:
    truth = (RA0 + math.radians(1.0), DEC0 + math.radians(1.0))
    paths = make_plots(result, tmp_path / "plots", truth=truth)
    assert len(paths) == 2
    for path in paths:
        assert path.suffix == ".png" and path.stat().st_size > 10_000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[0].name.startswith("run00136662.evt000035405932.neutrino")


def test_run_summarize(result: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    text = run_summarize(path, None, (RA0, DEC0 + math.radians(0.5)))
    assert "best fit: RA 123.39" in text
    assert "90 % region" in text and "inside 90 % contour: yes" in text
    match = re.search(r"angular error ([0-9.]+)°", text)
    assert match is not None
    error = float(match.group(1))
    assert error == pytest.approx(0.5, abs=FINEST_PIXEL_DEG)
    far = run_summarize(path, tmp_path / "p", (RA0, DEC0 + math.radians(10)))
    assert "inside 90 % contour: no" in far
    assert far.count("plot: ") == 2 and len(list((tmp_path / "p").glob("*.png"))) == 2
