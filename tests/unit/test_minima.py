"""The wrong-mode guard: a second minimum within the calibrated level is found, written into the
result's metadata, the result stays loadable by skyreader, and the 90 % region contains both."""

from __future__ import annotations

import math

import numpy as np
from skyreader import SkyScanResult

from skymap_scanner import healpix
from skymap_scanner.calibration import calibrated_level_90
from skymap_scanner.events import EventMetadata
from skymap_scanner.minima import find_minima
from skymap_scanner.pixels import PixelReco
from skymap_scanner.products import contains, summarize_result
from skymap_scanner.server.result import build_result

META = EventMetadata(
    run_id=123456, event_id=7, event_type="simulated", mjd=60000.5, is_real_event=False
)


def _sky(second_depth: float) -> dict[int, dict[int, PixelReco]]:
    """nside 8 everywhere with two dips: a deep one refined at nside 64, a second one 90 deg away."""
    best_dir = healpix.pix2vec(64, np.array([20000]))[0]
    other_dir = np.cross(best_dir, [0.0, 0.0, 1.0])
    other_dir /= np.linalg.norm(other_dir)

    def llh(vec: np.ndarray) -> np.ndarray:
        a = np.degrees(np.arccos(np.clip(vec @ best_dir, -1, 1)))
        b = np.degrees(np.arccos(np.clip(vec @ other_dir, -1, 1)))
        return np.minimum(100.0 + 0.05 * a**2, 100.0 + second_depth + 0.05 * b**2)

    out: dict[int, dict[int, PixelReco]] = {}
    for nside, pixels in (
        (8, np.arange(healpix.nside2npix(8))),
        (64, healpix.pixels_within(64, best_dir, math.radians(4.0))),
    ):
        vals = llh(healpix.pix2vec(nside, pixels))
        out[nside] = {
            int(p): PixelReco(nside, int(p), float(v), 1e4, 1e4, 0.0, 0.0, 0.0, 0.0, 1e4)
            for p, v in zip(pixels, vals, strict=True)
        }
    return out


def _pixels(sky: dict[int, dict[int, PixelReco]]) -> list[tuple[int, int, float]]:
    return [(r.nside, r.pixel, r.llh) for d in sky.values() for r in d.values()]


def test_one_minimum_when_the_second_is_above_the_level() -> None:
    minima = find_minima(_pixels(_sky(second_depth=50.0)), level=10.0)
    assert len(minima) == 1
    assert minima[0].nside == 64


def test_second_minimum_within_the_level_is_reported() -> None:
    minima = find_minima(_pixels(_sky(second_depth=2.0)), level=10.0)
    assert len(minima) == 2
    assert minima[0].llh < minima[1].llh
    assert 80.0 < minima[1].distance_deg < 100.0
    assert minima[1].delta2 <= 10.0


def test_result_metadata_skyreader_and_region() -> None:
    sky = _sky(second_depth=1.0)
    result = build_result(sky, META, complete=True)
    meta = result["nside-8"]["metadata"]
    level = calibrated_level_90(1e4)
    assert meta["calibrated_delta_llh_90"] == level
    assert level > 2.0  # the second dip (2ΔLLH = 2) is inside
    assert meta["multiple_minima"] is True
    assert len(meta["minima"]) == 2
    loaded = SkyScanResult.deserialize(result)
    assert loaded.best_dir is not None
    summary = summarize_result(result)
    assert summary.region_90_calibrated is not None
    assert summary.region_90_calibrated.level == level
    for m in meta["minima"]:
        ra, dec = math.radians(m["ra_deg"]), math.radians(m["dec_deg"])
        assert contains(summary, ra, dec, level)
    # far above the level: one minimum, and the second dip is outside the region
    single = build_result(_sky(second_depth=80.0), META, complete=True)["nside-8"]["metadata"]
    assert single["multiple_minima"] is False
    assert len(single["minima"]) == 1
