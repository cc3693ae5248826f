"""Each part of the track likelihood (physics/likelihood.py): exact gradients, and a test per term
that fails when the term is removed."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from skymap_scanner.physics.hits import HitSeries
from skymap_scanner.physics.ice import LayeredIce, spice_ice
from skymap_scanner.physics.likelihood import (
    COT_C,
    INV_C,
    K_OVER_C,
    LikelihoodOptions,
    NoHitTerm,
    TrackLikelihood,
)
from skymap_scanner.physics.trackfit import fit_track, rotation_matrix

ZEN, AZI = 2.2, 0.7


def _frame() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rot = rotation_matrix(ZEN, AZI)
    return rot[:, 0], rot[:, 1], -rot[:, 2]


def _grid_doms(spacing: float = 60.0, half: float = 300.0) -> np.ndarray:
    """A cubic lattice of DOM positions around the origin."""
    ax = np.arange(-half, half + 1.0, spacing)
    return np.array([[x, y, z] for x in ax for y in ax for z in ax])


def _event(start_s: float | None = None, seed: int = 3) -> tuple[HitSeries, np.ndarray]:
    """First-hit times of DOMs within 120 m of a track through the origin (direct light plus a
    small exponential delay); with ``start_s`` the track starts there and DOMs upstream of their
    emission point see the vertex's light instead."""
    rng = np.random.default_rng(seed)
    e1, e2, p = _frame()
    pos = _grid_doms(35.0, 250.0) + rng.normal(0, 2.0, (1, 3))
    ell = pos @ p
    x, y = pos @ e1, pos @ e2
    d = np.hypot(x, y)
    near = d < 120.0
    pos, ell, d = pos[near], ell[near], d[near]
    t = (ell + 0.0) * INV_C + K_OVER_C * d
    if start_s is not None:
        before = ell - d * COT_C < start_s
        r = np.hypot(d, ell - start_s)
        t = np.where(before, start_s * INV_C + r * 1.35634 * INV_C, t)
        # DOMs far upstream see nothing
        keep = ~(before & (r > 80.0))
        pos, t, d = pos[keep], t[keep], d[keep]
    t = t + rng.exponential(3.0 + 0.3 * d) + 1000.0
    q = np.maximum(1.0, rng.poisson(200.0 / (d + 10.0)))
    return HitSeries.from_doms(pos, t, q), pos


def _fd_check(lk: TrackLikelihood, params: np.ndarray, steps: np.ndarray) -> None:
    value, grad = lk.nll(params)
    for j, h in enumerate(steps):
        up, dn = params.copy(), params.copy()
        up[:, j] += h
        dn[:, j] -= h
        fd = (lk.nll(up)[0] - lk.nll(dn)[0]) / (2 * h)
        np.testing.assert_allclose(grad[:, j], fd, rtol=2e-3, atol=2e-3)
    assert np.all(np.isfinite(value))


@pytest.mark.parametrize("variant", ["classic", "ice", "starting", "cap", "nohit", "all"])
def test_gradients_match_finite_differences(variant: str) -> None:
    hits, _ = _event(start_s=-60.0)
    e1, e2, p = _frame()
    dark = _grid_doms(70.0, 210.0) + 7.0
    nohit = NoHitTerm(
        brightness=30.0,
        unhit_pos=dark,
        unhit_rde=np.ones(dark.shape[0]),
        hit_rde=np.ones(len(hits)),
    )
    base = LikelihoodOptions()
    options = {
        "classic": base,
        "ice": replace(base, ice=spice_ice()),
        "starting": replace(base, starting=True),
        "cap": replace(base, max_photons=3.0),
        "nohit": replace(base, nohit=nohit),
        "all": replace(base, ice=spice_ice(), starting=True, max_photons=3.0, nohit=nohit),
    }[variant]
    lk = TrackLikelihood(hits, e1, e2, p, options)
    rows = [[12.0, -7.0, 1005.0], [-20.0, 15.0, 990.0], [3.0, 4.0, 1010.0]]
    if options.starting:
        rows = [[*r, sv] for r, sv in zip(rows, (-50.0, -80.0, 10.0), strict=True)]
    params = np.array(rows)
    _fd_check(lk, params, np.array([1e-3, 1e-3, 1e-3, 1e-3][: params.shape[1]]))


def _one_dom_llh(options: LikelihoodOptions, z: float, delay: float, charge: float = 1.0) -> float:
    """-log L of one DOM 40 m from a horizontal track at depth z, first hit ``delay`` ns late."""
    e1, e2, p = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    pos = np.array([[0.0, 40.0, z]])
    t = np.array([K_OVER_C * 40.0 + delay])
    hits = HitSeries.from_doms(pos, t, np.array([charge]))
    lk = TrackLikelihood(hits, e1, e2, p, options)
    # track along x at depth z: a = (track - cog) . e1 = -40, b = 0
    return float(lk.nll(np.array([[-40.0, 0.0, 0.0]]))[0][0])


def test_layered_ice_term() -> None:
    """Dust (short scattering) makes late light likely and early light unlikely; clear ice the
    reverse. Removing the layered-ice term makes the two depths alike and fails this test."""
    ice = LayeredIce.from_layers([-1e5, 0.0, 1e5], [1.0 / 8.0, 1.0 / 60.0], [1 / 30.0, 1 / 200.0])
    layered = LikelihoodOptions(ice=ice, ice_reference_b=1.0 / 25.0)
    dust, clear = -200.0, 200.0
    late, early = 800.0, 15.0
    assert _one_dom_llh(layered, dust, late) < _one_dom_llh(layered, clear, late) - 1.0
    assert _one_dom_llh(layered, clear, early) < _one_dom_llh(layered, dust, early) - 1.0


def test_photon_cap_term() -> None:
    """A DOM made bright by a nearby cascade, whose first photon is nevertheless 150 ns late: the
    MPE likelihood without a cap calls this nearly impossible; with the cap it is plausible."""
    free = LikelihoodOptions()
    capped = LikelihoodOptions(max_photons=10.0)
    assert _one_dom_llh(capped, 0.0, 150.0, 2000.0) < _one_dom_llh(free, 0.0, 150.0, 2000.0) - 5.0


def test_starting_track_term() -> None:
    """Hits of a track that starts at s = -40 m: the starting hypothesis explains the vertex light
    (lower -log L) and recovers the vertex; without the vertex branch it cannot."""
    hits, _ = _event(start_s=-40.0, seed=5)
    seed = np.zeros(3)
    through = fit_track(hits, ZEN, AZI, seed, math.nan, mpe=True)
    start = fit_track(
        hits, ZEN, AZI, seed, math.nan, mpe=True, options=LikelihoodOptions(starting=True)
    )
    assert start.llh < through.llh - 20.0
    _, _, p = _frame()
    vertex_along = float(start.position @ p)
    assert vertex_along == pytest.approx(-40.0, abs=15.0)


def test_nohit_term() -> None:
    """Dark DOMs next to a hypothesised track raise -log L by their expected light; the hit DOMs'
    probability of being hit lowers it. Without the term both are zero."""
    hits, _ = _event()
    e1, e2, p = _frame()
    dark = np.array([[0.0, 0.0, 0.0]]) + 20.0 * e1  # a dark DOM 20 m from the track
    term = NoHitTerm(
        brightness=50.0, unhit_pos=dark, unhit_rde=np.ones(1), hit_rde=np.ones(len(hits))
    )
    params = np.array([[0.0, 0.0, 1000.0], [150.0, 0.0, 1000.0]])
    with_term = TrackLikelihood(hits, e1, e2, p, LikelihoodOptions(nohit=term)).nll(params)[0]
    without = TrackLikelihood(hits, e1, e2, p, LikelihoodOptions()).nll(params)[0]
    extra = with_term - without
    mu = 50.0 * math.exp(-20.0 / term.attenuation_m) / (20.0 + term.d0_m)
    # at the true track: the dark DOM's mu (times the acceptance factor) plus the hit DOMs' terms
    assert extra[0] > 0.8 * mu
    # 150 m away the hit DOMs are far: unlikely to be hit, much larger penalty
    assert extra[1] > extra[0] + 10.0


def test_dom_acceptance_in_nohit_term() -> None:
    """The expected light of a DOM follows its acceptance: ``1 + acceptance_slope cos(eta)`` in the
    angle at which the light arrives (up-going light, seen by the downward-facing PMT from below,
    counts more) and the DOM's relative efficiency (rde). A dark DOM 20 m above and one 20 m below a
    horizontal track, then the same DOM with rde 1.35 (high quantum efficiency) and 1.0. Without the
    angular or the rde part of the acceptance the ratios are 1 and the test fails."""
    e1, e2, p = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    hits = HitSeries.from_doms(
        np.array([[0.0, 40.0, 0.0]]), np.array([K_OVER_C * 40.0]), np.array([1.0])
    )
    dark = np.array([[0.0, 0.0, 20.0], [0.0, 0.0, -20.0], [0.0, 0.0, 20.0]])
    term = NoHitTerm(
        brightness=50.0,
        unhit_pos=dark,
        unhit_rde=np.array([1.35, 1.35, 1.0]),
        hit_rde=np.ones(1),
    )
    lk = TrackLikelihood(hits, e1, e2, p, LikelihoodOptions(nohit=term))
    _, mu = lk.unit_amplitudes(np.array([[-40.0, 0.0, 0.0]]))  # the track along x at y = z = 0
    sin_c = math.sin(math.acos(1.0 / 1.3195))
    slope = 0.5  # the stated acceptance model
    assert mu[0] / mu[1] == pytest.approx((1 + slope * sin_c) / (1 - slope * sin_c), rel=0.02)
    assert mu[0] / mu[2] == pytest.approx(1.35, rel=1e-6)
