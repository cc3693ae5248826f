"""Gaussian-smoothed Pandel photon arrival-time pdf, its survival function and DOM likelihoods.

Raw Pandel (physics.md): for a time residual ``t`` (ns) and ``xi = d_eff / lambda``,

    p(t) = rho^xi t^(xi-1) exp(-rho t) / Gamma(xi),   rho = 1/tau + c_ice/lambda_a,

a Gamma(xi, 1/rho) density, zero for ``t <= 0`` and singular at 0 for ``xi < 1``.

Smoothing ("patched Pandel", our own construction). The exact convolution with a Gaussian of width
``sigma`` needs parabolic-cylinder functions (~175 us per 300 DOMs with scipy, and it overflows at
large residuals), so we use a cheap continuous approximation instead. With the patch point
``t_p = PATCH_POINT_SIGMAS * sigma`` (one ``sigma`` by default, 15 ns):

* ``t >= t_p``: the raw Pandel density;
* ``t <  t_p``: a Gaussian of width ``sigma`` in ``t`` whose log is matched to the Pandel
  log-density in value **and** slope at ``t_p`` (so ``log p`` is C1):
  ``log p(t) = log p(t_p) + s u - u^2 / (2 sigma^2)``, ``u = t - t_p``,
  ``s = (xi - 1)/t_p - rho``;
* the whole is divided by its exact integral
  ``N(xi) = Q(xi, rho t_p) + p(t_p) sigma sqrt(pi/2) erfcx(s sigma / sqrt 2)``, so it is normalised
  for every ``xi``. ``Q`` is the regularised upper incomplete gamma function; ``P = 1 - Q`` at the
  small argument ``rho t_p`` is summed from its power series (also giving ``dN/dxi``).

The survival function ``S = 1 - CDF`` of the same density is exact for the construction:
``Q(xi, rho t) / N`` above ``t_p`` and ``1 - G(t)/N`` below, with ``G`` the closed-form integral of
the Gaussian patch. Against the exact Gaussian convolution (numerical quadrature) the
Kullback-Leibler divergence per hit is 0.10 nat at the smallest physical ``xi`` (0.068,
``d_eff = 2.25 m``), 0.02 nat at ``xi = 0.2``, <= 0.0065 nat for ``xi >= 0.3``, <= 0.002 nat for
``xi >= 1`` and < 0.0005 nat for ``xi >= 2``; only DOMs within ~10 m of the track see a
noticeable difference (the patch is slightly too narrow there).

Noise: every DOM likelihood gets a constant floor ``NOISE_FLOOR_PER_NS`` (a density in 1/ns) added,
``L = L_signal + floor`` (about a 1 % chance of a noise first hit spread over a 10 us window), so a
single badly-timed DOM costs at most ``-log(floor) ~ 14`` nat.

DOM likelihoods: SPE uses ``p(t1)`` of the first hit; MPE uses the first of ``N`` photons,
``N p(t1) S(t1)^(N-1)`` with ``N = max(1, round(charge))``.

Numerics: ``log N(xi)`` is tabulated once per ``sigma`` on a fine grid in ``log xi`` and
interpolated with cubic Hermite polynomials (C1, error < 1e-12); derivatives w.r.t. ``t`` and
``xi`` are analytic except ``d log Q / d xi`` above ``t_p`` (forward difference, step 1e-6).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from skymap_scanner.physics.constants import (
    C_ICE_M_PER_NS,
    D_EFF_A,
    D_EFF_B,
    D_EFF_C,
    D_EFF_D,
    PANDEL_ABSORPTION_M,
    PANDEL_JITTER_NS,
    PANDEL_LAMBDA_M,
    PANDEL_TAU_NS,
)

FloatArray = NDArray[np.float64]

#: Pandel rate rho = 1/tau + c_ice/lambda_a, in 1/ns.
PANDEL_RHO_PER_NS: float = 1.0 / PANDEL_TAU_NS + C_ICE_M_PER_NS / PANDEL_ABSORPTION_M
#: Patch point of the Gaussian continuation, in units of the jitter sigma.
PATCH_POINT_SIGMAS: float = 1.0
#: Constant noise floor added to every DOM likelihood, density in 1/ns.
NOISE_FLOOR_PER_NS: float = 1e-6

_LOG_RHO = math.log(PANDEL_RHO_PER_NS)
_SQRT2 = math.sqrt(2.0)
_SQRT_PI_2 = math.sqrt(math.pi / 2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_N_SERIES = 10
_TINY = 1e-300
_XI_MIN = 1e-3
_DXI_FD = 1e-6


def effective_distance(d: ArrayLike, cos_eta: ArrayLike) -> FloatArray:
    """Effective distance (m) ``0.8395 d + 3.094 - 3.946 cos(eta) + 4.636 cos(eta)^2``.

    ``eta`` is the angle between the PMT axis (pointing down, -z) and the direction the
    Cherenkov photon comes from, i.e. ``cos(eta) = +1`` for light arriving from straight below
    onto the photocathode and ``-1`` for light hitting the back of the DOM from above.
    """
    d_arr = np.asarray(d, dtype=np.float64)
    c = np.asarray(cos_eta, dtype=np.float64)
    out: FloatArray = D_EFF_A * d_arr + D_EFF_B + D_EFF_C * c + D_EFF_D * c * c
    return out


def pandel_xi(d_eff: ArrayLike) -> FloatArray:
    """Pandel shape parameter ``xi = d_eff / lambda`` (dimensionless, clipped to >= 1e-3)."""
    out: FloatArray = np.maximum(np.asarray(d_eff, dtype=np.float64) / PANDEL_LAMBDA_M, _XI_MIN)
    return out


class _Norm(NamedTuple):
    log_norm: FloatArray  # log N(xi)
    dlog_norm: FloatArray  # d log N / d xi (zeros if not requested)
    log_pp: FloatArray  # unnormalised log p(t_p)
    dlog_pp: FloatArray  # d log p(t_p) / d xi (zeros if not requested)
    slope: FloatArray  # s = d log p / dt at t_p
    log_gamma: FloatArray  # log Gamma(xi)


def log_normalisation_series(
    xi: ArrayLike, *, sigma: float = PANDEL_JITTER_NS
) -> tuple[FloatArray, FloatArray]:
    """``log N(xi)`` of the patched pdf and ``d log N / d xi`` from the closed form + series.

    This is the reference implementation; the likelihood uses a cubic-Hermite table built from it.
    """
    xi_a = np.maximum(np.asarray(xi, dtype=np.float64), _XI_MIN)
    t_p = PATCH_POINT_SIGMAS * sigma
    x_p = PANDEL_RHO_PER_NS * t_p
    log_x = math.log(x_p)
    log_pp = xi_a * (_LOG_RHO + math.log(t_p)) - special.gammaln(xi_a) - math.log(t_p) - x_p
    slope = (xi_a - 1.0) / t_p - PANDEL_RHO_PER_NS
    y = slope * (sigma / _SQRT2)
    ex = special.erfcx(y)
    mass_g = np.exp(log_pp) * (sigma * _SQRT_PI_2) * ex
    # P(xi, x_p) = exp(-x) sum_k x^(xi+k) / Gamma(xi+k+1); the ratio of terms is x/(xi+k).
    term = np.exp(xi_a * log_x - x_p - special.gammaln(xi_a + 1.0))
    p_low = term.copy()
    psi_k = special.digamma(xi_a + 1.0)
    dp_low = term * (log_x - psi_k)
    for k in range(1, _N_SERIES):
        term = term * (x_p / (xi_a + k))
        psi_k = psi_k + 1.0 / (xi_a + k)
        p_low += term
        dp_low += term * (log_x - psi_k)
    norm = (1.0 - p_low) + mass_g
    dlog_pp = _LOG_RHO + math.log(t_p) - special.digamma(xi_a)
    dex = 2.0 * y * ex - _TWO_OVER_SQRT_PI
    dmass = mass_g * dlog_pp + np.exp(log_pp) * (sigma * _SQRT_PI_2) * dex * (
        sigma / (_SQRT2 * t_p)
    )
    out: tuple[FloatArray, FloatArray] = (np.log(norm), (dmass - dp_low) / norm)
    return out


_TABLE_U_MIN = math.log(_XI_MIN)
_TABLE_U_MAX = math.log(500.0)
_TABLE_SIZE = 6001


@functools.lru_cache(maxsize=8)
def _norm_table(sigma: float) -> FloatArray:
    """Cubic-Hermite coefficients ``(f0, m0, b, a)`` per interval of a uniform grid in log(xi).

    On interval ``j`` with ``tau`` in [0, 1]: ``log N = f0 + tau (m0 + tau (b + tau a))``.
    """
    u = np.linspace(_TABLE_U_MIN, _TABLE_U_MAX, _TABLE_SIZE)
    xi = np.exp(u)
    f, dlog_n = log_normalisation_series(xi, sigma=sigma)
    step = (_TABLE_U_MAX - _TABLE_U_MIN) / (_TABLE_SIZE - 1)
    m = dlog_n * xi * step  # derivative per unit tau
    f0, f1, m0, m1 = f[:-1], f[1:], m[:-1], m[1:]
    a = 2.0 * (f0 - f1) + m0 + m1
    b = 3.0 * (f1 - f0) - 2.0 * m0 - m1
    coef: FloatArray = np.ascontiguousarray(np.column_stack([f0, m0, b, a]))
    return coef


def _log_norm_interp(xi: FloatArray, sigma: float) -> tuple[FloatArray, FloatArray]:
    """Cubic-Hermite interpolation (C1, derivative consistent with the value) of ``log N(xi)``.

    ``xi`` must be >= 1e-3; above the table (xi > 500, where N = 1 to double precision) the
    last value is used with zero derivative.
    """
    coef = _norm_table(sigma)
    inv_step = (_TABLE_SIZE - 1) / (_TABLE_U_MAX - _TABLE_U_MIN)
    pos = np.minimum((np.log(xi) - _TABLE_U_MIN) * inv_step, _TABLE_SIZE - 1.0)
    j = np.minimum(pos.astype(np.intp), _TABLE_SIZE - 2)
    tau = pos - j
    c = coef[j]
    f0, m0, b, a = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    value = f0 + tau * (m0 + tau * (b + tau * a))
    dvalue_dtau = m0 + tau * (2.0 * b + 3.0 * a * tau)
    dvalue_dxi = dvalue_dtau * (inv_step / xi)
    return value, dvalue_dxi


def _normalisation(xi: FloatArray, t_p: float, sigma: float, grad: bool) -> _Norm:
    """Normalisation ``N(xi)`` of the patched pdf, the patch parameters and xi-derivatives."""
    log_gamma = special.gammaln(xi)
    log_pp = xi * (_LOG_RHO + math.log(t_p)) - log_gamma - (math.log(t_p) + PANDEL_RHO_PER_NS * t_p)
    slope = (xi - 1.0) / t_p - PANDEL_RHO_PER_NS
    log_norm, dlog_norm = _log_norm_interp(xi, sigma)
    if grad:
        dlog_pp = (_LOG_RHO + math.log(t_p)) - special.digamma(xi)
    else:
        dlog_pp = np.zeros_like(xi)
        dlog_norm = np.zeros_like(xi)
    return _Norm(log_norm, dlog_norm, log_pp, dlog_pp, slope, log_gamma)


class PandelTerms(NamedTuple):
    """Log-pdf and log-survival of the smoothed Pandel, with derivatives (zeros if not asked)."""

    log_pdf: FloatArray
    dlog_pdf_dt: FloatArray
    dlog_pdf_dxi: FloatArray
    log_sf: FloatArray
    dlog_sf_dt: FloatArray
    dlog_sf_dxi: FloatArray


def pandel_terms(
    t_res: ArrayLike,
    xi: ArrayLike,
    *,
    sigma: float = PANDEL_JITTER_NS,
    survival: bool | NDArray[np.bool_] = True,
    grad: bool = False,
) -> PandelTerms:
    """Evaluate the smoothed Pandel log-pdf (and log-survival) at residuals ``t_res`` (ns).

    ``t_res`` and ``xi`` broadcast against each other. ``survival`` is a flag or a boolean mask
    (broadcastable) of the elements whose survival terms are needed; the survival fields are
    unspecified (finite) where it is false. If ``grad`` is false all derivative fields are zeros.
    """
    if not sigma > 0.0:
        raise ValueError("sigma must be positive")
    t = np.asarray(t_res, dtype=np.float64)
    xi_b = np.maximum(np.asarray(xi, dtype=np.float64), _XI_MIN)
    if t.shape != xi_b.shape:
        t, xi_b = np.broadcast_arrays(t, xi_b)
    t_p = PATCH_POINT_SIGMAS * sigma
    nrm = _normalisation(xi_b, t_p, sigma, grad)
    inv_s2 = 1.0 / (sigma * sigma)
    hi = t >= t_p
    tt = np.maximum(t, t_p)
    log_t = np.log(tt)
    u = np.minimum(t - t_p, 0.0)
    lp_hi = xi_b * _LOG_RHO - nrm.log_gamma + (xi_b - 1.0) * log_t - PANDEL_RHO_PER_NS * tt
    lp_lo = nrm.log_pp + nrm.slope * u - 0.5 * inv_s2 * u * u
    log_pdf = np.where(hi, lp_hi, lp_lo) - nrm.log_norm
    zeros = np.zeros_like(t)
    if grad:
        dpdt = np.where(hi, (xi_b - 1.0) / tt - PANDEL_RHO_PER_NS, nrm.slope - inv_s2 * u)
        # nrm.dlog_pp = log(rho) + log(t_p) - digamma(xi)
        dpdxi = np.where(hi, log_t - math.log(t_p), u / t_p) + (nrm.dlog_pp - nrm.dlog_norm)
    else:
        dpdt = zeros
        dpdxi = zeros
    if survival is False:
        return PandelTerms(log_pdf, dpdt, dpdxi, zeros, zeros, zeros)

    # Above t_p: S = Q(xi, rho t) / N, with Q evaluated only where it is needed.
    sel_mask = hi if survival is True else hi & np.asarray(survival, dtype=bool)
    sel = np.flatnonzero(sel_mask)
    log_q_flat = np.zeros(t.size)
    dlog_q_flat = np.zeros(t.size)
    if sel.size:
        xs = PANDEL_RHO_PER_NS * t.ravel()[sel]
        xis = xi_b.ravel()[sel]
        if grad:
            m = sel.size
            q_both = special.gammaincc(np.concatenate([xis, xis + _DXI_FD]), np.tile(xs, 2))
            lq = np.log(np.maximum(q_both[:m], _TINY))
            log_q_flat[sel] = lq
            dlog_q_flat[sel] = (np.log(np.maximum(q_both[m:], _TINY)) - lq) * (1.0 / _DXI_FD)
        else:
            log_q_flat[sel] = np.log(np.maximum(special.gammaincc(xis, xs), _TINY))
    log_q = log_q_flat.reshape(t.shape)
    # Below t_p: S = 1 - G(t)/N with G the integral of the Gaussian patch up to t.
    ss = nrm.slope * sigma
    v = u / sigma - ss
    log_ndtr_v = special.log_ndtr(v)
    log_g = nrm.log_pp + (math.log(sigma) + _LOG_SQRT_2PI) + 0.5 * ss * ss + log_ndtr_v
    frac = np.exp(np.minimum(log_g - nrm.log_norm, 0.0))
    ls_lo = np.log1p(-np.minimum(frac, 1.0 - 1e-16))
    log_sf = np.where(hi, log_q - nrm.log_norm, ls_lo)
    if grad:
        dls_dt = -np.exp(log_pdf - log_sf)
        mills = np.exp(-0.5 * v * v - log_ndtr_v - _LOG_SQRT_2PI)
        dlog_g = nrm.dlog_pp + nrm.slope * (sigma * sigma / t_p) - (sigma / t_p) * mills
        dls_lo = -frac * (dlog_g - nrm.dlog_norm) / np.exp(ls_lo)
        dls_dxi = np.where(hi, dlog_q_flat.reshape(t.shape) - nrm.dlog_norm, dls_lo)
    else:
        dls_dt = zeros
        dls_dxi = zeros
    return PandelTerms(log_pdf, dpdt, dpdxi, log_sf, dls_dt, dls_dxi)


def log_pdf(t_res: ArrayLike, d_eff: ArrayLike, *, sigma: float = PANDEL_JITTER_NS) -> FloatArray:
    """Normalised smoothed-Pandel log-density (1/ns) of a single photon, without noise floor."""
    return pandel_terms(t_res, pandel_xi(d_eff), sigma=sigma, survival=False).log_pdf


def log_sf(t_res: ArrayLike, d_eff: ArrayLike, *, sigma: float = PANDEL_JITTER_NS) -> FloatArray:
    """Log of the survival function ``1 - CDF`` of the smoothed Pandel, without noise floor."""
    return pandel_terms(t_res, pandel_xi(d_eff), sigma=sigma, survival=True).log_sf


def cdf(t_res: ArrayLike, d_eff: ArrayLike, *, sigma: float = PANDEL_JITTER_NS) -> FloatArray:
    """Cumulative distribution function of the smoothed Pandel, without noise floor."""
    out: FloatArray = -np.expm1(log_sf(t_res, d_eff, sigma=sigma))
    return out


def n_photons_from_charge(charge: ArrayLike) -> FloatArray:
    """MPE photon count ``N = max(1, round(charge))`` as floats."""
    out: FloatArray = np.maximum(np.rint(np.asarray(charge, dtype=np.float64)), 1.0)
    return out


class DomLogLike(NamedTuple):
    """Per-DOM log-likelihood and its derivatives w.r.t. the time residual and ``xi``."""

    value: FloatArray
    d_dt: FloatArray
    d_dxi: FloatArray


def dom_loglike_terms(
    t_res: ArrayLike,
    xi: ArrayLike,
    n_photons: ArrayLike,
    *,
    mpe: bool,
    sigma: float = PANDEL_JITTER_NS,
    noise_floor: float = NOISE_FLOOR_PER_NS,
    grad: bool = True,
) -> DomLogLike:
    """Per-DOM ``log(L_signal + noise_floor)`` with (optional) derivatives.

    ``L_signal`` is ``p(t1)`` (SPE) or ``N p(t1) S(t1)^(N-1)`` (MPE, ``n_photons`` = N >= 1).
    """
    n = np.asarray(n_photons, dtype=np.float64)
    need_sf = n > 1.0
    use_sf = mpe and bool(need_sf.any())
    terms = pandel_terms(t_res, xi, sigma=sigma, survival=need_sf if use_sf else False, grad=grad)
    if use_sf:
        nm1 = n - 1.0
        sig_ll = np.log(n) + terms.log_pdf + nm1 * terms.log_sf
    else:
        sig_ll = terms.log_pdf
    if noise_floor > 0.0:
        value = np.logaddexp(sig_ll, math.log(noise_floor))
        weight = np.exp(sig_ll - value)
    else:
        value = sig_ll
        weight = np.ones_like(sig_ll)
    if not grad:
        zeros = np.zeros_like(value)
        return DomLogLike(value, zeros, zeros)
    if use_sf:
        d_dt = weight * (terms.dlog_pdf_dt + nm1 * terms.dlog_sf_dt)
        d_dxi = weight * (terms.dlog_pdf_dxi + nm1 * terms.dlog_sf_dxi)
    else:
        d_dt = weight * terms.dlog_pdf_dt
        d_dxi = weight * terms.dlog_pdf_dxi
    return DomLogLike(value, d_dt, d_dxi)


def dom_loglike(
    t_res: ArrayLike,
    d_eff: ArrayLike,
    charge: ArrayLike,
    *,
    mpe: bool,
    sigma: float = PANDEL_JITTER_NS,
    noise_floor: float = NOISE_FLOOR_PER_NS,
) -> FloatArray:
    """Per-DOM log-likelihood (SPE or MPE, with noise floor) from residual, d_eff and charge."""
    return dom_loglike_terms(
        t_res,
        pandel_xi(d_eff),
        n_photons_from_charge(charge),
        mpe=mpe,
        sigma=sigma,
        noise_floor=noise_floor,
        grad=False,
    ).value
