"""Tests of the per-pixel track fit on a synthetic (toy) IceCube-like event."""

from __future__ import annotations

import math

import healpy as hp
import numpy as np
import pytest
from numpy.typing import NDArray

from skymap_scanner.physics import pandel
from skymap_scanner.physics.constants import (
    C_VACUUM_M_PER_NS,
    N_GROUP,
    PANDEL_JITTER_NS,
    PANDEL_LAMBDA_M,
    THETA_CHERENKOV,
)
from skymap_scanner.physics.hits import HitSeries
from skymap_scanner.physics.linefit import linefit
from skymap_scanner.physics.trackfit import (
    TrackFit,
    fit_pixel,
    fit_track,
    position_variations,
    rotate_variations,
)

F = NDArray[np.float64]
TRUE_ZEN = 0.7
TRUE_AZI = 1.0
TRUE_VERTEX = np.array([30.0, -20.0, 10.0])
TRUE_T = 1000.0


def unit(zen: float, azi: float) -> F:
    return np.array([math.sin(zen) * math.cos(azi), math.sin(zen) * math.sin(azi), math.cos(zen)])


def angle_deg(z1: float, a1: float, z2: float, a2: float) -> float:
    return math.degrees(math.acos(float(np.clip(unit(z1, a1) @ unit(z2, a2), -1.0, 1.0))))


def toy_detector() -> tuple[NDArray[np.int64], NDArray[np.int64], F]:
    """Strings on a triangular 125 m grid within 600 m, 60 DOMs each from z = -500 to 500 m."""
    xy = []
    for i in range(-6, 7):
        for j in range(-6, 7):
            x, y = 125.0 * (i + 0.5 * j), 125.0 * (math.sqrt(3) / 2 * j)
            if math.hypot(x, y) < 600.0:
                xy.append((x, y))
    xy_a = np.array(xy)
    z = np.linspace(-500.0, 500.0, 60)
    n_str = len(xy_a)
    pos = np.column_stack([np.repeat(xy_a[:, 0], 60), np.repeat(xy_a[:, 1], 60), np.tile(z, n_str)])
    string = np.repeat(np.arange(1, n_str + 1), 60).astype(np.int64)
    om = np.tile(np.arange(1, 61), n_str).astype(np.int64)
    return string, om, pos


def toy_event(
    zen: float, azi: float, vertex: F, amp: float, seed: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], F, F, F]:
    """Per-pulse arrays of a toy muon: Poisson photon counts, Gamma(xi, 1/rho) + jitter delays.

    The first photon of each DOM is a 1-PE pulse, the remaining photons one pulse at their
    median time.
    """
    rng = np.random.default_rng(seed)
    string, om, pos = toy_detector()
    p = -unit(zen, azi)
    rel = pos - vertex
    d_t = rel @ p
    perp = rel - np.outer(d_t, p)
    d = np.linalg.norm(perp, axis=1)
    cos_eta = math.sin(THETA_CHERENKOV) * perp[:, 2] / np.maximum(d, 1e-9) + math.cos(
        THETA_CHERENKOV
    ) * float(p[2])
    xi = pandel.effective_distance(d, cos_eta) / PANDEL_LAMBDA_M
    k = N_GROUP / math.sin(THETA_CHERENKOV) - 1.0 / math.tan(THETA_CHERENKOV)
    t_geo = TRUE_T + (d_t + d * k) / C_VACUUM_M_PER_NS
    n_ph = rng.poisson(amp * np.exp(-d / 60.0) / (1.0 + d / 20.0))
    s_l, o_l, t_l, q_l, x_l = [], [], [], [], []
    for i in np.flatnonzero(n_ph > 0):
        delays = rng.gamma(xi[i], 1.0 / pandel.PANDEL_RHO_PER_NS, size=n_ph[i])
        delays = np.sort(delays + rng.normal(0.0, PANDEL_JITTER_NS, size=n_ph[i]))
        s_l.append(string[i])
        o_l.append(om[i])
        t_l.append(t_geo[i] + delays[0])
        q_l.append(1.0)
        x_l.append(pos[i])
        if n_ph[i] > 1:
            s_l.append(string[i])
            o_l.append(om[i])
            t_l.append(t_geo[i] + float(np.median(delays[1:])))
            q_l.append(float(n_ph[i] - 1))
            x_l.append(pos[i])
    return (
        np.array(s_l, dtype=np.int64),
        np.array(o_l, dtype=np.int64),
        np.array(t_l),
        np.array(q_l),
        np.array(x_l),
    )


@pytest.fixture(scope="module")
def bright_hits() -> HitSeries:
    hits = HitSeries.from_pulses(*toy_event(TRUE_ZEN, TRUE_AZI, TRUE_VERTEX, 25.0, 1))
    assert 240 <= len(hits) <= 360
    return hits


def transverse_offset(fit: TrackFit) -> float:
    p = unit(TRUE_ZEN, TRUE_AZI)
    rel = fit.position - TRUE_VERTEX
    return float(np.linalg.norm(rel - (rel @ p) * p))


# --------------------------------------------------------------------------- geometry


def test_position_variations_cylinder() -> None:
    v = position_variations()
    assert v.shape == (7, 3)
    np.testing.assert_array_equal(v[0], 0.0)
    np.testing.assert_allclose(np.hypot(v[1:, 0], v[1:, 1]), 150.0)
    np.testing.assert_allclose(v[1:, 2], [-40, -40, -40, 40, 40, 40])
    angles = np.degrees(np.arctan2(v[1:, 1], v[1:, 0])) % 360.0
    np.testing.assert_allclose(angles, [0, 120, 240, 60, 180, 300], atol=1e-9)
    assert position_variations(1).shape == (1, 3)
    with pytest.raises(ValueError):
        position_variations(8)


def test_rotation_maps_axis_to_from_direction() -> None:
    zen, azi = 1.1, 2.3
    rot = rotate_variations(np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]), zen, azi)
    np.testing.assert_allclose(rot[0], unit(zen, azi), atol=1e-12)
    assert abs(float(rot[1] @ unit(zen, azi))) < 1e-12
    # the +-40 m offsets lie along the track, the 150 m ring is transverse
    v = rotate_variations(position_variations(), zen, azi)
    along = v @ unit(zen, azi)
    np.testing.assert_allclose(np.abs(along[1:]), 40.0, atol=1e-9)


# --------------------------------------------------------------------------- hits


def test_hit_cleaning_removes_isolated_and_late_pulses() -> None:
    s, o, t, q, x = toy_event(TRUE_ZEN, TRUE_AZI, TRUE_VERTEX, 10.0, 3)
    clean = HitSeries.from_pulses(s, o, t, q, x)
    # an isolated noise DOM far from everything, and a pulse 20 us late on a hit DOM
    s2 = np.append(s, [999, s[0]])
    o2 = np.append(o, [1, o[0]])
    t2 = np.append(t, [float(np.median(t)), float(np.max(t)) + 20000.0])
    q2 = np.append(q, [1.0, 5.0])
    x2 = np.vstack([x, [[2000.0, 2000.0, 0.0], x[0]]])
    hits = HitSeries.from_pulses(s2, o2, t2, q2, x2)
    assert 999 not in hits.string
    np.testing.assert_array_equal(hits.time, clean.time)
    np.testing.assert_array_equal(hits.charge, clean.charge)
    raw = HitSeries.from_pulses(s2, o2, t2, q2, x2, time_window_ns=None, rt_radius_m=None)
    raw0 = HitSeries.from_pulses(s, o, t, q, x, time_window_ns=None, rt_radius_m=None)
    assert len(raw) == len(raw0) + 1
    assert raw.total_charge == pytest.approx(raw0.total_charge + 6.0)
    assert len(clean) <= len(raw0)
    assert np.all(np.diff(hits.string * 1000 + hits.om) > 0)


def test_linefit_seed(bright_hits: HitSeries) -> None:
    lf = linefit(bright_hits)
    assert angle_deg(lf.zenith, lf.azimuth, TRUE_ZEN, TRUE_AZI) < 5.0
    np.testing.assert_allclose(lf.pos, bright_hits.cog())
    assert 0.1 < lf.speed < 0.4
    assert math.isfinite(lf.time)


# --------------------------------------------------------------------------- fit


@pytest.mark.parametrize("mpe", [False, True])
def test_true_direction_beats_offsets(bright_hits: HitSeries, mpe: bool) -> None:
    lf = linefit(bright_hits)
    llh = {}
    for off in (0.0, 5.0, 20.0):
        zen = TRUE_ZEN + math.radians(off)
        llh[off] = fit_pixel(bright_hits, zen, TRUE_AZI, lf.pos, lf.time, mpe=mpe).llh
        # also off in azimuth (same opening angle)
        azi = TRUE_AZI + math.radians(off) / math.sin(TRUE_ZEN)
        llh[-off] = fit_pixel(bright_hits, TRUE_ZEN, azi, lf.pos, lf.time, mpe=mpe).llh
    assert llh[0.0] < llh[5.0] and llh[0.0] < llh[-5.0]
    assert llh[5.0] < llh[20.0] and llh[-5.0] < llh[-20.0]


@pytest.mark.parametrize("mpe", [False, True])
def test_vertex_recovered_at_true_direction(bright_hits: HitSeries, mpe: bool) -> None:
    lf = linefit(bright_hits)
    fit = fit_pixel(bright_hits, TRUE_ZEN, TRUE_AZI, lf.pos, lf.time, mpe=mpe)
    assert transverse_offset(fit) < 20.0
    # t is the time the track passes the fitted vertex
    p = -unit(TRUE_ZEN, TRUE_AZI)
    t_true_at_vertex = TRUE_T + float((fit.position - TRUE_VERTEX) @ p) / C_VACUUM_M_PER_NS
    assert abs(fit.t - t_true_at_vertex) < 30.0
    assert math.isfinite(fit.llh)
    assert 0.0 < fit.e_in <= fit.e_tot
    assert fit.e_tot == pytest.approx(5.0 * bright_hits.total_charge)


def test_fit_track_from_far_seed_converges(bright_hits: HitSeries) -> None:
    lf = linefit(bright_hits)
    near = fit_track(bright_hits, TRUE_ZEN, TRUE_AZI, lf.pos, lf.time, mpe=True)
    far_seed = lf.pos + rotate_variations(position_variations()[1:2], TRUE_ZEN, TRUE_AZI)[0]
    far = fit_track(bright_hits, TRUE_ZEN, TRUE_AZI, far_seed, math.nan, mpe=True)
    assert far.llh == pytest.approx(near.llh, abs=0.05)
    assert 0 < far.n_evals <= 60


def test_scan_finds_true_direction(bright_hits: HitSeries) -> None:
    lf = linefit(bright_hits)
    origin = np.zeros((1, 3))
    # coarse: all-sky nside 8, seed position only
    npix = hp.nside2npix(8)
    th, ph = hp.pix2ang(8, np.arange(npix))
    coarse = [
        fit_pixel(
            bright_hits, th[i], ph[i], lf.pos, lf.time, mpe=True, variations=origin, max_evals=40
        ).llh
        for i in range(npix)
    ]
    i0 = int(np.argmin(coarse))
    # fine: nside 32 within 8 deg of the coarse best, all 7 variations
    pix = hp.query_disc(32, unit(th[i0], ph[i0]), math.radians(8.0))
    th32, ph32 = hp.pix2ang(32, pix)
    fine = [
        fit_pixel(bright_hits, th32[i], ph32[i], lf.pos, lf.time, mpe=True).llh
        for i in range(len(pix))
    ]
    j0 = int(np.argmin(fine))
    assert angle_deg(th32[j0], ph32[j0], TRUE_ZEN, TRUE_AZI) < 2.0


def test_deterministic(bright_hits: HitSeries) -> None:
    lf = linefit(bright_hits)
    a = fit_pixel(bright_hits, 0.75, 1.1, lf.pos, lf.time, mpe=True)
    b = fit_pixel(bright_hits, 0.75, 1.1, lf.pos, lf.time, mpe=True)
    assert a == b
    c = fit_track(bright_hits, 0.75, 1.1, lf.pos, lf.time, mpe=False)
    d = fit_track(bright_hits, 0.75, 1.1, lf.pos, lf.time, mpe=False)
    assert c == d


def test_tiny_and_empty_hit_series() -> None:
    one = HitSeries.from_doms([[0.0, 0.0, 0.0]], [100.0], [3.0])
    for mpe in (False, True):
        fit = fit_pixel(one, 0.3, 0.2, [10.0, 0.0, 0.0], 50.0, mpe=mpe)
        assert math.isfinite(fit.llh)
        assert all(math.isfinite(v) for v in (fit.x, fit.y, fit.z, fit.t))
    empty = HitSeries.from_doms(np.zeros((0, 3)), [], [])
    with pytest.raises(ValueError):
        fit_track(empty, 0.3, 0.2, [0.0, 0.0, 0.0], 0.0, mpe=True)
