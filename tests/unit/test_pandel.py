"""Tests of the smoothed Pandel pdf, survival function and DOM likelihoods."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, special

from skymap_scanner.physics import pandel
from skymap_scanner.physics.constants import PANDEL_JITTER_NS, PANDEL_LAMBDA_M

SIGMA = PANDEL_JITTER_NS
T_P = pandel.PATCH_POINT_SIGMAS * SIGMA
DISTANCES = [2.5, 5.0, 20.0, 60.0, 150.0, 400.0]


def _pdf(t: float, d_eff: float) -> float:
    return float(np.exp(pandel.log_pdf(np.array([t]), np.array([d_eff]))[0]))


def _integral(d_eff: float, lo: float, hi: float) -> float:
    """Integral of the pdf over [lo, hi], split at the patch point and the Pandel mode."""
    xi = d_eff / PANDEL_LAMBDA_M
    mode = max((xi - 1.0) / pandel.PANDEL_RHO_PER_NS, 0.0)
    pts = sorted({p for p in (T_P, mode, 3 * mode + 50.0) if lo < p < hi})
    edges = [lo, *pts, hi]
    return float(
        sum(
            integrate.quad(_pdf, a, b, args=(d_eff,), limit=400, epsabs=1e-13)[0]
            for a, b in itertools.pairwise(edges)
        )
    )


@pytest.mark.parametrize("d_eff", DISTANCES)
def test_pdf_normalised(d_eff: float) -> None:
    total = _integral(d_eff, -400.0, 60000.0)
    assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("d_eff", DISTANCES)
def test_log_sf_matches_integrated_cdf(d_eff: float) -> None:
    ts = np.array([-40.0, -5.0, 0.0, T_P - 1.0, T_P, 40.0, 300.0, 2000.0])
    sf = np.exp(pandel.log_sf(ts, np.full(ts.shape, d_eff)))
    cdf_num = np.array([_integral(d_eff, -400.0, float(t)) for t in ts])
    np.testing.assert_allclose(sf, 1.0 - cdf_num, atol=1e-7)
    np.testing.assert_allclose(pandel.cdf(ts, np.full(ts.shape, d_eff)), cdf_num, atol=1e-7)
    # monotone, from 1 to 0
    assert np.all(np.diff(sf) <= 1e-15)
    assert float(np.exp(pandel.log_sf(np.array([-300.0]), np.array([d_eff]))[0])) > 1 - 1e-12


@pytest.mark.parametrize("d_eff", DISTANCES)
def test_continuity_at_patch_point(d_eff: float) -> None:
    eps = 1e-7
    ts = np.array([T_P - eps, T_P, T_P + eps])
    d = np.full(3, d_eff)
    terms = pandel.pandel_terms(ts, d / PANDEL_LAMBDA_M, grad=True)
    # value continuity (log pdf and log sf)
    assert abs(terms.log_pdf[0] - terms.log_pdf[2]) < 1e-5
    assert abs(terms.log_sf[0] - terms.log_sf[2]) < 1e-5
    # slope continuity (C1) of the log pdf, analytic and numerical
    assert terms.dlog_pdf_dt[0] == pytest.approx(terms.dlog_pdf_dt[2], rel=1e-5, abs=1e-8)
    h = 1e-3
    left = (pandel.log_pdf(T_P - h, d_eff) - pandel.log_pdf(T_P - 2 * h, d_eff)) / h
    right = (pandel.log_pdf(T_P + 2 * h, d_eff) - pandel.log_pdf(T_P + h, d_eff)) / h
    assert float(left) == pytest.approx(float(right), abs=5e-3)


def test_matches_exact_gaussian_convolution_away_from_zero() -> None:
    """For xi > 1 the patched pdf is close to the true Gamma (x) Gaussian convolution."""
    rho = pandel.PANDEL_RHO_PER_NS
    for d_eff, times in ((60.0, (100.0, 400.0, 1200.0)), (150.0, (400.0, 1200.0, 2500.0))):
        xi = d_eff / PANDEL_LAMBDA_M
        for t in times:

            def integrand(x: float, t: float = t, xi: float = xi) -> float:
                log_g = xi * math.log(rho) + (xi - 1) * math.log(x) - rho * x - special.gammaln(xi)
                return math.exp(log_g - 0.5 * ((t - x) / SIGMA) ** 2) / (
                    SIGMA * math.sqrt(2 * math.pi)
                )

            exact = integrate.quad(integrand, 1e-12, t + 12 * SIGMA, points=[t], limit=200)[0]
            assert _pdf(t, d_eff) == pytest.approx(exact, rel=0.02)


def test_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(7)
    t = np.concatenate([rng.uniform(-40, 40, 200), rng.uniform(40, 3000, 200)])
    xi = rng.uniform(0.07, 15.0, t.size)
    n = rng.integers(1, 30, t.size).astype(float)
    h = 1e-5
    for mpe in (False, True):
        ll = pandel.dom_loglike_terms(t, xi, n, mpe=mpe)
        num_t = (
            pandel.dom_loglike_terms(t + h, xi, n, mpe=mpe).value
            - pandel.dom_loglike_terms(t - h, xi, n, mpe=mpe).value
        ) / (2 * h)
        num_xi = (
            pandel.dom_loglike_terms(t, xi + h, n, mpe=mpe).value
            - pandel.dom_loglike_terms(t, xi - h, n, mpe=mpe).value
        ) / (2 * h)
        np.testing.assert_allclose(ll.d_dt, num_t, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(ll.d_dxi, num_xi, rtol=1e-3, atol=1e-4)


def test_mpe_first_hit_pdf_normalised() -> None:
    d_eff, n_ph = 40.0, 6.0

    def f(t: float) -> float:
        v = pandel.dom_loglike_terms(
            np.array([t]),
            np.array([d_eff / PANDEL_LAMBDA_M]),
            np.array([n_ph]),
            mpe=True,
            noise_floor=0.0,
            grad=False,
        ).value[0]
        return float(np.exp(v))

    total = sum(
        integrate.quad(f, a, b, limit=400)[0]
        for a, b in ((-300.0, T_P), (T_P, 300.0), (300.0, 20000.0))
    )
    assert total == pytest.approx(1.0, abs=1e-6)


def test_noise_floor_bounds_loglike() -> None:
    t = np.array([-5000.0, -200.0, 0.0, 50.0, 1e5])
    d = np.full(t.shape, 30.0)
    q = np.array([1.0, 3.0, 10.0, 1.0, 50.0])
    for mpe in (False, True):
        ll = pandel.dom_loglike(t, d, q, mpe=mpe)
        assert np.all(np.isfinite(ll))
        assert np.all(ll >= math.log(pandel.NOISE_FLOOR_PER_NS) - 1e-12)
    no_floor = pandel.dom_loglike(t, d, q, mpe=False, noise_floor=0.0)
    assert no_floor[0] < -1000.0


def test_normalisation_table_matches_series() -> None:
    xi = np.exp(np.linspace(math.log(1e-3), math.log(400.0), 5001)) * 1.0003
    ref, dref = pandel.log_normalisation_series(xi)
    val, dval = pandel._log_norm_interp(xi, SIGMA)
    np.testing.assert_allclose(val, ref, atol=1e-10)
    np.testing.assert_allclose(dval, dref, rtol=1e-6, atol=1e-8)


def test_effective_distance_and_photon_count() -> None:
    # cos(eta) = +1: light from below onto the photocathode; -1: from above (back of the DOM)
    d = np.array([10.0, 10.0, 10.0])
    deff = pandel.effective_distance(d, np.array([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(deff, [8.395 + 3.784, 8.395 + 3.094, 8.395 + 11.676])
    assert deff[2] > deff[0]
    np.testing.assert_array_equal(
        pandel.n_photons_from_charge([0.2, 0.6, 1.4, 2.6, 10.0]), [1, 1, 1, 3, 10]
    )
