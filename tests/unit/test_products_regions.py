"""Probability maps and credible regions: normalisation, the conventions, GeoJSON (RFC 7946) and MOC.

Results are synthetic 8/64/512 scans refined as the scanner does (``test_products.make_result``:
2ΔLLH = (angle / 1.5°)² around a chosen direction), placed so that regions cross RA = 0, the
antimeridian (RA = 180°) and the poles.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import shapely
from mocpy import MOC
from shapely.geometry import Point, shape

from skymap_scanner.products.contours import summarize_result
from skymap_scanner.products.credible import (
    asymmetric_errors,
    cone_probability,
    containment_radius_deg,
    credible_region,
    position_stats,
)
from skymap_scanner.products.geojson import region_feature, region_geometry
from skymap_scanner.products.moc import moc_fits_bytes, region_moc
from skymap_scanner.products.probability import (
    CHI2_2DOF_90,
    Convention,
    ProbabilityMap,
    make_treatment,
    probability_map,
)
from tests.unit.test_products import SIGMA_DEG, make_result

SR_TO_DEG2 = (180 / math.pi) ** 2


def pmap_of(result: dict[str, Any], convention: str = "calibrated", **kw: Any) -> ProbabilityMap:
    return probability_map(summarize_result(result).skymap, make_treatment(convention, **kw))


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return make_result(math.radians(123.4), math.radians(-23.4))


def geojson_area_deg2(geometry: dict[str, Any]) -> float:
    """Area on the sphere of a GeoJSON MultiPolygon with straight (lon, lat) edges, as RFC 7946
    reads them: Green's theorem, ∮ −sin(lat) d(lon), exact for edges linear in (lon, lat)."""
    total = 0.0
    for polygon in geometry["coordinates"]:
        for ring in polygon:
            c = np.radians(np.asarray(ring))
            lam1, lam2, phi1, phi2 = c[:-1, 0], c[1:, 0], c[:-1, 1], c[1:, 1]
            dphi = phi2 - phi1
            flat = np.abs(dphi) < 1e-12
            mean_sin = np.where(
                flat, np.sin(phi1), (np.cos(phi1) - np.cos(phi2)) / np.where(flat, 1.0, dphi)
            )
            total += float(np.sum(-(lam2 - lam1) * mean_sin))
    return total * SR_TO_DEG2


def check_rfc7946(feature: dict[str, Any]) -> None:
    """Closed rings of ≥ 4 positions, longitudes in −180…180, latitudes in −90…90, outer rings
    counter-clockwise and holes clockwise, and a valid geometry."""
    geometry = feature["geometry"]
    assert feature["type"] == "Feature" and geometry["type"] == "MultiPolygon"
    for polygon in geometry["coordinates"]:
        for k, ring in enumerate(polygon):
            assert len(ring) >= 4 and ring[0] == ring[-1]
            lon, lat = np.asarray(ring).T
            assert lon.min() >= -180.0 and lon.max() <= 180.0
            assert lat.min() >= -90.0 and lat.max() <= 90.0
            signed = shapely.Polygon(ring).area * (
                1 if shapely.is_ccw(shapely.LinearRing(ring)) else -1
            )
            assert (signed > 0) == (k == 0), "outer rings CCW, holes CW"
    assert shape(geometry).is_valid


@pytest.mark.parametrize("convention", ["calibrated", "wilks"])
@pytest.mark.parametrize("smoothing", [None, 1.0])
def test_probability_sums_to_one(
    result: dict[str, Any], convention: str, smoothing: float | None
) -> None:
    pmap = pmap_of(result, convention, smoothing_deg=smoothing)
    assert abs(float(np.sum(pmap.density * pmap.area_sr)) - 1.0) < 1e-9
    assert (pmap.density >= 0).all()
    assert abs(float(pmap.flatten(64).sum()) - 1.0) < 1e-9


def test_conventions_give_their_levels_on_a_gaussian_likelihood(result: dict[str, Any]) -> None:
    """For 2ΔLLH = (θ/σ)², the 90 % credible region is the disc 2ΔLLH ≤ 4.605 (Wilks) or
    2ΔLLH ≤ L90 (calibrated): area π σ² level."""
    for convention, level in (("wilks", CHI2_2DOF_90), ("calibrated", 17.33)):
        pmap = pmap_of(result, convention, calibrated_delta_llh_90=17.33)
        area = credible_region(pmap, 0.9).area_deg2
        assert area == pytest.approx(math.pi * SIGMA_DEG**2 * level, rel=0.05), convention
        assert pmap.treatment is not None
        assert pmap.treatment.systematic_included is (convention == "calibrated")
    # 50 %: the level scales with the convention (2 ln 2 for Wilks)
    area50 = credible_region(pmap_of(result, "wilks"), 0.5).area_deg2
    assert area50 == pytest.approx(math.pi * SIGMA_DEG**2 * 2 * math.log(2), rel=0.08)


def test_smoothing_widens_and_keeps_the_peak(result: dict[str, Any]) -> None:
    sharp = pmap_of(result, "wilks")
    smooth = pmap_of(result, "wilks", smoothing_deg=2.0)
    assert smooth.treatment is not None and smooth.treatment.systematic_included
    a_sharp, a_smooth = (
        credible_region(sharp, 0.9).area_deg2,
        credible_region(smooth, 0.9).area_deg2,
    )
    # convolving two Gaussians: σ² adds (1.5² + 2²) / 1.5² = 2.78 times the area
    assert a_smooth / a_sharp == pytest.approx((1.5**2 + 2.0**2) / 1.5**2, rel=0.12)
    ra, dec = smooth.centres()
    peak = int(np.argmax(smooth.density))
    assert math.degrees(ra[peak]) == pytest.approx(123.4, abs=1.0)
    assert math.degrees(dec[peak]) == pytest.approx(-23.4, abs=1.0)


def test_errors_radius_cone_and_position(result: dict[str, Any]) -> None:
    pmap = pmap_of(result, "wilks")
    summary = summarize_result(result)
    region = credible_region(pmap, 0.9)
    err = asymmetric_errors(pmap, region, summary.ra_rad, summary.dec_rad)
    r90 = SIGMA_DEG * math.sqrt(CHI2_2DOF_90)  # 3.22°
    # the region's edge lies in nside-64 tiles (0.92°) here: extents are tile edges, so they may
    # exceed the disc's radius by up to one tile
    tile = 0.95
    assert r90 - 0.2 <= err.dec_plus_deg <= r90 + tile
    assert r90 - 0.2 <= err.dec_minus_deg <= r90 + tile
    # RA errors are in degrees of RA: wider by 1/cos(Dec)
    ra90 = r90 / math.cos(math.radians(23.4))
    assert ra90 - 0.2 <= err.ra_plus_deg <= ra90 + tile / math.cos(math.radians(23.4))
    assert err.ra_minus_deg is not None and ra90 - 0.2 <= err.ra_minus_deg
    assert containment_radius_deg(pmap, summary.ra_rad, summary.dec_rad, 0.9) == pytest.approx(
        r90, rel=0.05
    )
    cone = cone_probability(pmap, summary.ra_rad, summary.dec_rad, r90)
    assert cone == pytest.approx(0.9, abs=0.02)
    assert cone_probability(pmap, 0.0, 0.0, 180.0) == pytest.approx(1.0, abs=1e-9)
    near = position_stats(pmap, 123.4, -23.4 + 2.0, best_fit_deg=(summary.ra_deg, summary.dec_deg))
    far = position_stats(pmap, 123.4, -23.4 + 4.0)
    assert near.inside == {"50": False, "90": True} and not far.inside["90"]
    assert near.searched_probability == pytest.approx(1 - math.exp(-0.5 * (2 / 1.5) ** 2), abs=0.03)
    assert near.offset_deg == pytest.approx(2.0, abs=0.1)


CASES = {
    # name: (RA, Dec) of the likelihood's centre [deg], what the 90 % calibrated region holds
    "crosses RA=0": (0.3, 20.0),
    "crosses RA=180": (180.2, -30.0),
    "north pole": (40.0, 87.0),
    "south pole": (250.0, -88.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_geojson_and_moc_of_a_region(name: str) -> None:
    ra0, dec0 = CASES[name]
    res = make_result(math.radians(ra0), math.radians(dec0))
    pmap = pmap_of(res)  # calibrated: 90 % radius 6.2°
    summary = summarize_result(res)
    region = credible_region(pmap, 0.9)
    feature = region_feature(region_geometry(pmap, region.tiles), {"name": name})
    check_rfc7946(feature)
    geometry = shape(feature["geometry"])
    best_lon = (summary.ra_deg + 180.0) % 360.0 - 180.0
    assert geometry.covers(Point(best_lon, summary.dec_deg)), "the region holds the best fit"
    lons = np.concatenate(
        [np.asarray(r)[:, 0] for p in feature["geometry"]["coordinates"] for r in p]
    )
    if name == "crosses RA=0":
        assert lons.min() < 0 < lons.max() and len(feature["geometry"]["coordinates"]) == 1
    if name == "crosses RA=180":  # cut at the antimeridian into two polygons
        assert len(feature["geometry"]["coordinates"]) == 2 and {-180.0, 180.0} <= set(lons)
    if "pole" in name:
        pole = 90.0 if name == "north pole" else -90.0
        assert geometry.covers(Point(0.0, pole)) and geometry.covers(Point(179.0, pole))
        assert asymmetric_errors(pmap, region, summary.ra_rad, summary.dec_rad).ra_plus_deg is None
    moc = region_moc(pmap, region.tiles)
    moc_area = float(moc.sky_fraction) * 4 * math.pi * SR_TO_DEG2
    assert moc_area == pytest.approx(region.pixel_area_deg2, rel=1e-9)
    assert moc_area == pytest.approx(
        float(pmap.area_sr[region.tiles].sum()) * SR_TO_DEG2, rel=1e-12
    )
    assert geojson_area_deg2(feature["geometry"]) == pytest.approx(moc_area, rel=0.02)
    # the MOC file reads back as the same coverage
    import io

    assert MOC.from_fits(io.BytesIO(moc_fits_bytes(moc, [("MOCPROB", 0.9, "")]))) == moc


def test_region_with_a_hole_and_two_parts() -> None:
    """A ring-shaped and a two-part region keep their hole and their parts."""
    import healpy as hp

    nside = 64
    uniq = 4 * nside**2 + np.arange(hp.nside2npix(nside))
    pmap = ProbabilityMap(uniq, np.full(uniq.size, 1 / (4 * math.pi)))
    centre = hp.ang2vec(math.radians(70), math.radians(100))
    ring = np.setdiff1d(
        hp.query_disc(nside, centre, math.radians(10), nest=True),
        hp.query_disc(nside, centre, math.radians(4), nest=True),
    )
    geom = region_geometry(pmap, np.searchsorted(uniq, 4 * nside**2 + ring))
    assert len(geom.geoms) == 1 and len(geom.geoms[0].interiors) == 1
    expected = ring.size * hp.nside2pixarea(nside, degrees=True)
    feature = region_feature(geom, {})
    check_rfc7946(feature)
    assert geojson_area_deg2(feature["geometry"]) == pytest.approx(expected, rel=0.01)
    two = np.concatenate(
        [
            hp.query_disc(nside, hp.ang2vec(math.radians(t), math.radians(p)), 0.05, nest=True)
            for t, p in ((60, 10), (120, 250))
        ]
    )
    geom2 = region_geometry(pmap, np.searchsorted(uniq, 4 * nside**2 + two))
    assert len(geom2.geoms) == 2


def test_convention_enum_and_bad_options() -> None:
    assert make_treatment(Convention.WILKS).llh_scale == 1.0
    assert make_treatment().llh_scale == pytest.approx(CHI2_2DOF_90 / 17.33)
    with pytest.raises(ValueError):
        make_treatment("bayesian")
    with pytest.raises(ValueError):
        make_treatment(smoothing_deg=-1.0)


def test_corners_straddling_a_grid_cell_are_still_joined(monkeypatch: pytest.MonkeyPatch) -> None:
    """When corner ids by grid cell do not balance (a corner split across a cell edge), the
    outline falls back to clustering corners by distance and gives the same rings."""
    import healpy as hp

    from skymap_scanner.products import outline

    nside = 32
    uniq = 4 * nside**2 + np.arange(hp.nside2npix(nside))
    pmap = ProbabilityMap(uniq, np.full(uniq.size, 1 / (4 * math.pi)))
    disc = hp.query_disc(nside, hp.ang2vec(1.0, 2.0), math.radians(8), nest=True)
    tiles = np.searchsorted(uniq, 4 * nside**2 + disc)
    expected = outline.boundary_rings(pmap, tiles)
    calls = []
    grid_ids = outline._grid_ids

    def split_one(points: Any, tolerance: float) -> Any:
        ids = grid_ids(points, tolerance)
        ids[0] = ids.max() + 1  # one computation of a corner in a cell of its own
        calls.append(1)
        return ids

    monkeypatch.setattr(outline, "_grid_ids", split_one)
    rings = outline.boundary_rings(pmap, tiles)
    assert calls and len(rings) == len(expected) == 1
    np.testing.assert_allclose(rings[0], expected[0])


@pytest.mark.parametrize("quarters", [1, 3])
def test_region_whose_edge_runs_through_a_pole(quarters: int) -> None:
    """Polar-cap pixels in 1 or 3 of the 4 quadrants around the north pole: the outline passes
    through the pole, which becomes the stretch of the map's top edge over those quadrants."""
    import healpy as hp

    nside = 32
    npix = hp.nside2npix(nside)
    uniq = 4 * nside**2 + np.arange(npix)
    pmap = ProbabilityMap(uniq, np.full(npix, 1 / (4 * math.pi)))
    theta, phi = hp.pix2ang(nside, np.arange(npix), nest=True)
    quadrant = np.floor(np.degrees(phi) / 90.0)
    chosen = np.flatnonzero((np.degrees(theta) < 20.0) & (quadrant < quarters))
    feature = region_feature(
        region_geometry(pmap, np.searchsorted(uniq, 4 * nside**2 + chosen)), {}
    )
    check_rfc7946(feature)
    expected = chosen.size * hp.nside2pixarea(nside, degrees=True)
    assert geojson_area_deg2(feature["geometry"]) == pytest.approx(expected, rel=0.01)
    geometry = shape(feature["geometry"])
    inside_lon = [45.0, 135.0, -135.0][:quarters]
    outside_lon = [45.0, 135.0, -135.0, -45.0][quarters:]
    for lon in inside_lon:
        assert geometry.covers(Point(lon, 89.9)) and geometry.covers(Point(lon, 75.0))
    for lon in outside_lon:
        assert not geometry.covers(Point(lon, 89.0))


def test_inside_means_inside_the_region_tiles(result: dict[str, Any]) -> None:
    """A position is inside the P region exactly when its tile is one of the region's tiles (the
    MOC's): the crossing tile is inside, the next densest is not."""
    pmap = pmap_of(result, "wilks")
    region = credible_region(pmap, 0.9)
    ra, dec = pmap.centres()
    last = int(region.tiles[-1])
    following = int(pmap.greedy[region.tiles.size])
    at_last = position_stats(pmap, math.degrees(ra[last]), math.degrees(dec[last]))
    after = position_stats(pmap, math.degrees(ra[following]), math.degrees(dec[following]))
    assert (
        at_last.searched_probability >= 0.9 > at_last.searched_probability - pmap.probability[last]
    )
    assert at_last.inside["90"] and not after.inside["90"]


def test_flatten_at_the_finest_order_matches_the_general_path(result: dict[str, Any]) -> None:
    """The one-repeat path (nside = the finest tiles') equals summing the general path's finer map."""
    pmap = pmap_of(result)
    direct = pmap.flatten(pmap.max_nside)
    finer = pmap.flatten(2 * pmap.max_nside)  # general path: every tile shared out
    np.testing.assert_allclose(direct, finer.reshape(-1, 4).sum(axis=1), rtol=1e-12, atol=1e-300)
    coarse = pmap.flatten(64)  # general path: fine tiles summed
    np.testing.assert_allclose(coarse, direct.reshape(-1, 64).sum(axis=1), rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("seed", [8, 12, 28])
def test_a_speckled_region_is_exactly_its_tiles(seed: int) -> None:
    """A random half of the sky's tiles (what a noisy map's region looks like): parts touching at
    one corner, holes pinched at a corner, outlines around and through the poles and across the
    antimeridian. Every tile's centre is inside the region exactly when the tile is one of its
    tiles, and the region has the tiles' area."""
    import healpy as hp

    nside = 16
    npix = hp.nside2npix(nside)
    uniq = 4 * nside**2 + np.arange(npix)
    pmap = ProbabilityMap(uniq, np.full(npix, 1 / (4 * math.pi)))
    chosen = np.flatnonzero(np.random.default_rng(seed).random(npix) < 0.5)
    feature = region_feature(region_geometry(pmap, chosen), {})
    check_rfc7946(feature)
    geometry = shape(feature["geometry"])
    ra, dec = pmap.centres()
    lon = np.clip((np.degrees(ra) + 180.0) % 360.0 - 180.0, -180.0 + 1e-6, 180.0 - 1e-6)
    inside = shapely.contains_xy(geometry, lon, np.degrees(dec))
    wanted = np.isin(np.arange(npix), chosen)
    assert np.array_equal(inside, wanted), f"{np.sum(inside != wanted)} tiles on the wrong side"
    expected = chosen.size * hp.nside2pixarea(nside, degrees=True)
    assert geojson_area_deg2(feature["geometry"]) == pytest.approx(expected, rel=0.01)
