"""What SkyDriver's products process runs (`skydriver/runners/products_job.py`), called in-process: the
scan's facts written into the result, the build's options, and the settings that mirror the products
library's choices."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import io
import json
import typing
from typing import Any

import pytest
from astropy.io import fits

from skydriver.runners.products_job import BuildJob, build, with_scan_facts
from skydriver.settings import AlertTense, ProbabilityConvention, Settings
from skymap_scanner.products.info import ALERT_TENSES
from skymap_scanner.products.probability import Convention
from tests.unit.test_products import make_result

EVENT = {
    "run_id": 7,
    "event_id": 8,
    "event_type": "gfu-gold",
    "mjd": 60000.5,
    "is_real_event": True,
}
STORED_AT = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def test_settings_offer_what_the_products_library_accepts() -> None:
    assert typing.get_args(AlertTense) == ALERT_TENSES
    assert typing.get_args(ProbabilityConvention) == tuple(c.value for c in Convention)
    assert Settings().products_alert_tense == "test"  # one machine: never a real alert
    with pytest.raises(ValueError, match="not a power of two"):
        Settings(products_flat_nside=100)
    with pytest.raises(ValueError):
        Settings(products_alert_tense="now")  # type: ignore[arg-type]


def test_the_manifests_event_and_the_puts_finality_go_into_every_nside() -> None:
    result = make_result()
    before = copy.deepcopy(result)
    out = with_scan_facts(result, EVENT, is_final=False)
    assert result == before  # not changed in place
    for key, entry in out.items():
        meta = entry["metadata"]
        assert {k: meta[k] for k in EVENT} == EVENT
        assert meta["complete"] is False
        assert meta["nside"] == before[key]["metadata"]["nside"]  # the rest is kept
        assert entry["data"] is result[key]["data"]
    kept = with_scan_facts(result, None, is_final=True)
    assert all(e["metadata"]["run_id"] == 136662 for e in kept.values())  # no manifest event: kept
    assert all(e["metadata"]["complete"] is True for e in kept.values())


def job(**overrides: Any) -> BuildJob:
    values: dict[str, Any] = {
        "scan_id": "abc123",
        "version": 2,
        "result_json": json.dumps(make_result()),
        "is_final": True,
        "stored_at": STORED_AT,
        "event_metadata": EVENT,
        "reco_algo": "pandel_mpe",
        "nside_progression": {8: 0, 64: 12, 512: 24},
        "classifiers": {"pipeline": "Gold Track Alert"},
        "alert_type": "update",
        "record_number": 3,
        "healpix_url": "http://sd/scan/abc123/products/skymap.multiorder.fits",
    }
    return BuildJob(**(values | overrides))


def test_a_build_carries_the_scan_facts_and_is_the_same_bytes_when_repeated() -> None:
    built = build(job())
    products = {p.name: p for p in built.products}
    notice = json.loads(products["notice.json"].data)
    assert notice["id"] == ["7_8"] and notice["pipeline"] == "Gold Track Alert"
    assert (notice["alert_type"], notice["record_number"], notice["alert_tense"]) == (
        "update",
        3,
        "test",
    )
    assert notice["alert_datetime"] == dt.datetime.fromtimestamp(STORED_AT, dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    assert notice["healpix_url"] == "http://sd/scan/abc123/products/skymap.multiorder.fits"
    stats = json.loads(products["stats.json"].data)
    assert stats["scan"]["nside_progression"] == {"8": 0, "64": 12, "512": 24}
    assert stats["probability"]["convention"] == "calibrated"
    assert built.build_s > 0
    # a rebuild of the same version (after a restart) serves the same bytes under the same ETags
    assert [(p.name, p.etag) for p in build(job()).products] == [
        (p.name, p.etag) for p in built.products
    ]


def test_the_build_options_come_from_the_settings() -> None:
    chosen = job(convention="wilks", alert_tense="current", flat_nside=64)
    built = {p.name: p for p in build(chosen).products}
    stats = json.loads(built["stats.json"].data)
    assert stats["probability"]["convention"] == "wilks"
    assert stats["probability"]["systematic_included"] is False
    assert json.loads(built["notice.json"].data)["alert_tense"] == "current"
    with fits.open(io.BytesIO(gzip.decompress(built["skymap.flat.fits.gz"].data))) as hdus:
        assert hdus[1].header["NSIDE"] == 64
    smoothed = {p.name: p for p in build(job(convention="wilks", smoothing_deg=1.0)).products}
    treatment = json.loads(smoothed["stats.json"].data)["probability"]
    assert treatment["smoothing_deg"] == 1.0
    assert treatment["systematic_included"] is True  # a smoothed map is widened too


def test_an_unreadable_result_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="lack 'index' or 'llh'"):
        build(job(result_json=json.dumps({"nside-8": {"columns": ["x"], "data": []}})))
