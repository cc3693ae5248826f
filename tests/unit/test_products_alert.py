"""The alert products of one result, read by the tools astronomers use.

- a simulated physics scan (a 100 TeV track, ``pandel_mpe``, the small progression of
  ``test_physics_scan``) → multi-order FITS read by ligo.skymap (whose ``ligo-skymap-stats`` gives
  the same 90 % area, as a separate process), mhealpy and astropy; its flattened map by healpy;
- the GCN notice validated against the pinned ``@nasa-gcn/schema`` (installed by
  ``scripts/setup.sh`` into ``.state/npm``), initial and update, also with no unknown fields;
- the bytes are a function of the inputs (ETags), and a golden draft circular;
- ``skymap-scanner summarize`` with several files, one of them not a result.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import healpy as hp
import jsonschema
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable
from astropy.time import Time
from mhealpy import HealpixMap
from referencing import Registry, Resource

from skymap_scanner.cli import main as scanner_main
from skymap_scanner.physics.coordinates import dir_to_equa
from skymap_scanner.products.alert import Product, build_products, position_query
from skymap_scanner.products.fits import read_multiorder_fits
from skymap_scanner.products.info import AlertType, ProductOptions, ScanInfo
from skymap_scanner.products.probability import Convention
from tests.unit.test_physics_scan import TEST_NSIDES, scan, simulated_100tev_track
from tests.unit.test_products import make_result

REPO = Path(__file__).resolve().parents[2]
SCHEMA_ROOT = REPO / ".state" / "npm" / "node_modules" / "@nasa-gcn" / "schema" / "gcn" / "notices"
NOTICE_SCHEMA = "icecube/single_neutrino_alerts.schema.json"
SCAN = ScanInfo(
    scan_id="abc123", reco_algo="pandel_mpe", nside_progression={4: 0, 16: 4, 64: 4, 256: 4}
)


@pytest.fixture(scope="module")
def physics(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """(event, final result) of the simulated 100 TeV track (~15 s of CPU)."""
    event = simulated_100tev_track()
    final, _ = scan(event, "pandel_mpe", TEST_NSIDES, tmp_path_factory.mktemp("scan"))
    return event, final


@pytest.fixture(scope="module")
def products(physics: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Product]:
    return build_products(physics[1], scan=SCAN)


@pytest.fixture(scope="module")
def written(products: dict[str, Product], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("products")
    for p in products.values():
        (out / p.name).write_bytes(p.data)
    return out


def stats_of(products: dict[str, Product]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(products["stats.json"].data)
    return doc


def test_the_set_of_products(products: dict[str, Product]) -> None:
    assert list(products) == [
        "skymap.multiorder.fits",
        "skymap.flat.fits.gz",
        "regions.geojson",
        "region-calibrated-50.moc.fits",
        "region-calibrated-90.moc.fits",
        "region-wilks-50.moc.fits",
        "region-wilks-90.moc.fits",
        "stats.json",
        "notice.json",
        "circular.txt",
    ]
    assert products["regions.geojson"].content_type == "application/geo+json"
    assert products["circular.txt"].content_type.startswith("text/plain")
    treatment = stats_of(products)["probability"]
    assert treatment["convention"] == "calibrated" and treatment["systematic_included"] is True


def test_ligo_skymap_stats_agrees_on_the_90_percent_area(
    products: dict[str, Product], written: Path, tmp_path: Path
) -> None:
    """``ligo-skymap-stats`` (its own process) on our multi-order FITS gives our areas."""
    tool = Path(sys.executable).parent / "ligo-skymap-stats"
    out = tmp_path / "stats.tsv"
    subprocess.run(
        [
            str(tool),
            str(written / "skymap.multiorder.fits"),
            "--contour",
            "50",
            "90",
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    header, row = (line.split("\t") for line in out.read_text().splitlines()[1:3])
    ligo = dict(zip(header, row, strict=True))
    summary = stats_of(products)["summary"]
    assert float(ligo["area(90)"]) == pytest.approx(summary["area_90_deg2"], rel=0.02)
    assert float(ligo["area(50)"]) == pytest.approx(summary["area_50_deg2"], rel=0.02)
    assert ligo["coinc_event_id"] == "run00004242.evt000000000001"


def test_ligo_skymap_reads_it_and_finds_the_same_searched_area(
    physics: tuple[dict[str, Any], dict[str, Any]], products: dict[str, Product], written: Path
) -> None:
    from astropy.coordinates import SkyCoord
    from ligo.skymap.io import read_sky_map
    from ligo.skymap.postprocess.crossmatch import crossmatch

    event = physics[0]
    ra, dec = dir_to_equa(event["truth"]["zenith"], event["truth"]["azimuth"], event["mjd"])
    table = read_sky_map(str(written / "skymap.multiorder.fits"), moc=True)
    assert table.meta["objid"] == "run00004242.evt000000000001"
    truth = SkyCoord(float(ra), float(dec), unit="rad")
    ligo = crossmatch(table, truth, contours=(0.5, 0.9))
    regions = stats_of(products)["regions"]["calibrated"]
    ours_areas = [regions["50"]["area_deg2"], regions["90"]["area_deg2"]]
    np.testing.assert_allclose(ligo.contour_areas, ours_areas, rtol=1e-9)
    ours = position_query(
        products["skymap.multiorder.fits"].data, math.degrees(ra), math.degrees(dec)
    )
    assert ligo.searched_area == pytest.approx(ours["searched_area_deg2"], rel=1e-9)
    assert ligo.searched_prob == pytest.approx(ours["searched_probability"], rel=1e-9)
    if ours["searched_probability"] < 0.9:  # all tiles up to the truth's are in the 90 % region
        assert ours["inside"]["90"]


def test_mhealpy_and_astropy_read_it(products: dict[str, Product], written: Path) -> None:
    path = written / "skymap.multiorder.fits"
    skymap = HealpixMap.read_map(str(path))
    assert skymap.is_moc and skymap.nside == 256
    density = np.asarray(skymap.data, dtype=float)
    area = np.array([skymap.pixarea(i).value for i in range(skymap.npix)])
    assert abs(float((density * area).sum()) - 1.0) < 1e-9
    table = QTable.read(path)
    assert table["PROBDENSITY"].unit.to_string() == "1 / sr"
    assert table["UNIQ"].dtype.kind == "i" and table["UNIQ"].dtype.itemsize == 8
    pmap, _ = read_multiorder_fits(products["skymap.multiorder.fits"].data)
    assert np.array_equal(np.asarray(table["UNIQ"]), pmap.uniq)
    assert np.array_equal(np.asarray(table["PROBDENSITY"].value), pmap.density)
    header = fits.getheader(path, 1)
    stats = stats_of(products)
    assert header["EXTNAME"] == "SKYMAP" and header["ORDERING"] == "NUNIQ"
    assert header["COORDSYS"] == "C" and header["MOCORDER"] == 8 and header["PIXTYPE"] == "HEALPIX"
    assert (
        header["RA"] == stats["best_fit"]["ra_deg"]
        and header["DEC"] == stats["best_fit"]["dec_deg"]
    )
    for key in ("RA_ERR_PLUS_90", "RA_ERR_MINUS_90", "DEC_ERR_PLUS_90", "DEC_ERR_MINUS_90"):
        assert header[key] == stats["summary"][key.lower().replace("_err", "") + "_deg"]
    assert header["CONTOUR_AREA_90"] == stats["summary"]["area_90_deg2"]
    assert header["CONTOUR_AREA_50"] == stats["summary"]["area_50_deg2"]
    assert (header["RUNID"], header["EVENTID"], header["SCAN_ID"]) == (4242, 1, "abc123")
    assert header["CREATOR"] == "skydriver-reimpl" and header["VERSION"]
    assert header["PROBCONV"] == "calibrated" and header["SYSTINCL"] is True
    assert header["LEVEL_90"] == 17.33 and header["MJD-OBS"] == 60123.456
    assert header["DATE-OBS"] == Time(60123.456, format="mjd", scale="utc").isot + "000"
    assert abs(float(np.sum(pmap.density * pmap.area_sr)) - 1.0) < 1e-9


def test_flat_map_reads_with_healpy(products: dict[str, Product], written: Path) -> None:
    flat = hp.read_map(str(written / "skymap.flat.fits.gz"), nest=True)
    assert flat.size == hp.nside2npix(256)
    assert float(flat.sum()) == pytest.approx(1.0, abs=1e-9)
    header = fits.getheader(written / "skymap.flat.fits.gz", 1)
    assert header["EXTNAME"] == "SKYMAP" and header["ORDERING"] == "NESTED"
    assert header["NSIDE"] == 256 and header["TTYPE1"] == "PROB"
    stats = stats_of(products)
    peak = int(np.argmax(flat))
    theta, phi = hp.pix2ang(256, peak, nest=True)
    best = stats["best_fit"]
    assert math.degrees(phi) == pytest.approx(best["ra_deg"], abs=0.5)
    assert 90 - math.degrees(theta) == pytest.approx(best["dec_deg"], abs=0.5)


def _schema_registry() -> Registry:
    if not SCHEMA_ROOT.is_dir():
        raise AssertionError(f"{SCHEMA_ROOT} is missing: run scripts/setup.sh (npm install step)")
    resources = []
    for path in SCHEMA_ROOT.rglob("*.schema.json"):
        doc = json.loads(path.read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources)


def validate_notice(notice: dict[str, Any]) -> None:
    """Against the schema, and against it with no field outside it (unevaluatedProperties)."""
    registry = _schema_registry()
    schema_id = json.loads((SCHEMA_ROOT / NOTICE_SCHEMA).read_text())["$id"]
    assert notice["$schema"] == schema_id, "the notice names the pinned schema version"
    body = {k: v for k, v in notice.items() if k != "$schema"}
    for schema in ({"$ref": schema_id}, {"$ref": schema_id, "unevaluatedProperties": False}):
        validator = jsonschema.Draft202012Validator(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}, registry=registry
        )
        validator.validate(body)


def test_notice_validates_initial_then_update(
    physics: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    result = physics[1]
    classifiers = {
        "pipeline": "Gold Track Alert",
        "event_name": "IceCube-230716A",
        "nu_energy_tev": 100.0,
        "signalness": 0.5,
        "far_per_year": 0.5,
        "unrelated": "kept out",
    }
    info = ScanInfo(scan_id="abc123", reco_algo="pandel_mpe", classifiers=classifiers)
    issued = dt.datetime(2023, 7, 16, 12, 0, tzinfo=dt.UTC)
    notices = []
    for kind, record in ((AlertType.INITIAL, 1), (AlertType.UPDATE, 2)):
        options = ProductOptions(
            alert_type=kind, record_number=record, issued_at=issued, healpix_url="https://x/y.fits"
        )
        notice = json.loads(build_products(result, scan=info, options=options)["notice.json"].data)
        validate_notice(notice)
        notices.append(notice)
    first, second = notices
    assert (first["alert_type"], first["record_number"]) == ("initial", 1)
    assert (second["alert_type"], second["record_number"]) == ("update", 2)
    assert first["alert_tense"] == "test" and first["pipeline"] == "Gold Track Alert"
    assert first["far"] == pytest.approx(0.5 / (365.25 * 86400))
    assert first["p_astro"] == 0.5 and first["nu_energy"] == 100.0
    assert first["id"] == ["4242_1"] and first["event_name"] == ["IceCube-230716A"]
    assert first["containment_probability"] == 0.9 and first["systematic_included"] is True
    assert first["alert_datetime"] == "2023-07-16T12:00:00.000000Z"
    # the same notice with a field the schema does not know, or a wrong type, is refused
    for broken in (
        {**first, "alert_typ": "initial"},
        {**first, "ra": "12.3"},
        {**first, "alert_tense": "now"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_notice(broken)


def test_notice_leaves_out_what_it_cannot_know(products: dict[str, Product]) -> None:
    notice = json.loads(products["notice.json"].data)
    validate_notice(notice)
    for field in ("nu_energy", "p_astro", "far", "pipeline", "alert_datetime", "healpix_file"):
        assert field not in notice
    wrong = ScanInfo(
        classifiers={"signalness": 3.0, "pipeline": "Platinum", "nu_energy_tev": "a lot"}
    )
    bad = json.loads(build_products(make_result(), scan=wrong)["notice.json"].data)
    assert not {"p_astro", "pipeline", "nu_energy"} & set(bad)
    embedded = build_products(make_result(), options=ProductOptions(embed_healpix=True))
    notice = json.loads(embedded["notice.json"].data)
    import base64

    assert base64.b64decode(notice["healpix_file"]) == embedded["skymap.multiorder.fits"].data


def test_bytes_are_a_function_of_the_inputs() -> None:
    result = make_result()
    one, two = build_products(result, scan=SCAN), build_products(copy.deepcopy(result), scan=SCAN)
    assert {k: p.etag for k, p in one.items()} == {k: p.etag for k, p in two.items()}
    update = build_products(result, scan=SCAN, options=ProductOptions(alert_type=AlertType.UPDATE))
    changed = {k for k in one if one[k].data != update[k].data}
    assert changed == {"notice.json"}
    wilks = build_products(result, scan=SCAN, options=ProductOptions(convention=Convention.WILKS))
    assert wilks["skymap.multiorder.fits"].etag != one["skymap.multiorder.fits"].etag
    assert wilks["regions.geojson"].data == one["regions.geojson"].data  # both conventions anyway


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="alert_tense"):
        ProductOptions(alert_tense="now")
    with pytest.raises(ValueError, match="record_number"):
        ProductOptions(record_number=0)
    with pytest.raises(ValueError, match="flat_nside"):
        ProductOptions(flat_nside=100)
    with pytest.raises(ValueError, match="timezone"):
        ProductOptions(issued_at=dt.datetime(2024, 1, 1))


def test_a_partial_result_says_so() -> None:
    partial = make_result()
    for entry in partial.values():
        entry["metadata"]["complete"] = False
    products = build_products(partial)
    assert "PARTIAL RESULT" in products["circular.txt"].data.decode()
    assert (
        fits.getheader(io.BytesIO(products["skymap.multiorder.fits"].data), 1)["COMPLETE"] is False
    )
    assert stats_of(products)["scan"]["complete"] is False


def test_position_query(products: dict[str, Product]) -> None:
    best = stats_of(products)["best_fit"]
    data = products["skymap.multiorder.fits"].data
    here = position_query(data, best["ra_deg"], best["dec_deg"], radius_deg=1.0)
    assert here["inside"] == {"50": True, "90": True} and here["offset_from_best_fit_deg"] < 1e-6
    assert here["cone"]["probability"] > 0.5 and here["convention"] == "calibrated"
    away = position_query(data, best["ra_deg"] + 180.0, -best["dec_deg"])
    assert away["inside"] == {"50": False, "90": False} and away["searched_probability"] > 0.999
    with pytest.raises(ValueError):
        position_query(data, 10.0, 95.0)


GOLDEN_CIRCULAR = """\
*** SIMULATED EVENT: NOT FOR DISTRIBUTION ***
TITLE: DRAFT GCN CIRCULAR (<...> marks what a person must fill in or check before sending.)
SUBJECT: IceCube-220524<A> - IceCube observation of a high-energy neutrino candidate track-like event

The IceCube Collaboration (http://icecube.wisc.edu/) reports:

On 2022-05-24 at 07:41:32.19 UT IceCube detected a track-like event (run 136662, event 35405932),
selected by the Gold Track Alert stream with <signalness> probability of being astrophysical and an
estimated false alarm rate of 0.91 events per year.

The direction was then refined with a likelihood scan of the sky with the pandel_mpe muon-track
reconstruction: 2688 HEALPix directions (nside 8 over the whole sky, refined around the best fit at
nside 64, 512), to:

Date: 2022-05-24
Time: 07:41:32.19 UT
RA: 123.40 (+7.38/-7.38 deg 90% PSF containment) J2000
Dec: -23.40 (+6.44/-6.60 deg 90% PSF containment) J2000

The 90% (50%) credible region covers 122.18 (36.92) square degrees. The containment regions include
a systematic widening of the likelihood, calibrated on simulation (90% level at 2DeltaLLH = 17.33).

<Fermi 4FGL-DR4 / 3FHL sources inside the 90% region: to be checked.>

IceCube is a cubic-kilometer neutrino detector at the geographic South Pole, Antarctica.
<Contact of the IceCube realtime alert team.>
"""


def test_golden_circular() -> None:
    """The draft circular of a fixed synthetic scan (2ΔLLH = (θ/1.5°)² around RA 123.4°,
    Dec −23.4°, event time MJD 59723.32051140454, a simulated event)."""
    info = ScanInfo(
        scan_id="golden",
        reco_algo="pandel_mpe",
        classifiers={"pipeline": "Gold Track Alert", "far_per_year": 0.91},
    )
    text = build_products(make_result(), scan=info)["circular.txt"].data.decode()
    assert text == GOLDEN_CIRCULAR


def test_summarize_several_files_and_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "run1.json"
    good.write_text(json.dumps(make_result()))
    other = tmp_path / "run2.json"
    other.write_text(json.dumps(make_result(event_id=7)))
    not_result = tmp_path / "notes.json"
    not_result.write_text(json.dumps({"hello": "world"}))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    out = tmp_path / "products"
    code = scanner_main(
        ["summarize", str(good), str(not_result), str(other), str(broken), "--products", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 2
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in captured.err
    assert errors[0].startswith(f"skymap-scanner: error: {not_result}: not a SkyScanResult")
    assert errors[1].startswith(f"skymap-scanner: error: {broken}: not JSON")
    assert f"== {good}" in captured.out and f"== {other}" in captured.out
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 20 and "run1.stats.json" in names and "run2.circular.txt" in names
    assert (out / "run1.stats.json").read_bytes() == build_products(make_result())[
        "stats.json"
    ].data


def test_first_partial_result_and_failed_pixels() -> None:
    """Products of a result with only the all-sky nside (the first partial result) and of one
    with a failed (NaN) pixel."""
    from skymap_scanner.products.multiorder import NAN_SENTINEL

    first = {"nside-8": make_result()["nside-8"]}
    first["nside-8"]["metadata"]["complete"] = False
    products = build_products(first)
    stats = stats_of(products)
    assert stats["scan"]["nsides"] == [8] and stats["summary"]["area_90_deg2"] > 50.0
    validate_notice(json.loads(products["notice.json"].data))
    pmap, header = read_multiorder_fits(products["skymap.multiorder.fits"].data)
    assert header["MOCORDER"] == 3 and pmap.uniq.size == 768
    failed = make_result()
    failed["nside-512"]["data"][0][1] = NAN_SENTINEL
    stats = stats_of(build_products(failed))
    assert stats["scan"]["failed_pixels"] == 1 and stats["best_fit"]["nside"] == 64
