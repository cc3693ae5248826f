"""The per-pixel track likelihood: smoothed Pandel timing with optional layered ice, a photon cap, a
starting-track vertex and a hit/no-hit term.

Frame (see ``trackfit``): for a fixed pixel direction, ``e1``, ``e2`` span the transverse plane, ``p``
is the direction of travel, DOM coordinates are relative to the event's charge-weighted centre of
gravity (COG): transverse ``(x, y)``, along-track ``l``. Parameters are the transverse vertex
``(a, b)``, the time ``t0`` at which the track passes the COG's closest approach, and for a
**starting track** the along-track position ``s_v`` of its vertex.

Per hit DOM (first hit time ``t``, charge ``q``):

* **Geometry of the first light.** An infinite track's earliest light leaves the track at the
  Cherenkov emission point ``s_e = l - d cot(theta_c)`` (``d`` the perpendicular distance, smoothed
  as ``sqrt(d^2 + 0.5^2)``). For a starting track, if ``s_e < s_v`` the earliest light comes from the
  vertex itself (the arrival time along the track is convex in the emission point, so its minimum
  over ``s >= s_v`` is at ``max(s_e, s_v)``): a point source at distance ``r``, with geometric delay
  ``(r n_g - (l - s_v)) / c`` and source distance ``d_src = r - d (1/sin(theta_c) - 1)``, both equal
  to the track's (``K d`` and ``d``) where the two meet, so the likelihood is continuous in ``s_v``.
* **Pandel timing** with ``d_eff = 0.8395 d_src + 3.094 - 3.946 cos(eta) + 4.636 cos(eta)^2``
  (``cos(eta)`` the z component of the light's direction) and ``xi = d_eff s / lambda``.
* **Layered ice** (``ice`` given): ``s = (b / ice_reference_b) ** ice_exponent`` with ``b`` the
  effective scattering coefficient averaged over the depths the direct light crosses, from the
  emission depth to the DOM's (widened by ``ice_window_m`` on each side so that the average stays
  smooth for horizontal paths). Dusty layers thus stretch the delays, clear ice shortens them.
  Without ``ice``, ``s = 1`` (the bulk-ice Pandel of Ahrens et al. 2004).
* **Robustness**: the MPE photon count ``N = max(1, round(q))`` is capped at ``max_photons``, so a
  DOM made bright by a nearby stochastic loss does not demand an implausibly early first photon.
* **Hit/no-hit** (``nohit`` given): expected photo-electrons ``mu = Lambda rde A(d_src, cos eta)``
  (:class:`NoHitTerm`); a DOM that saw nothing adds ``mu`` to -log L, a hit DOM adds
  ``-log(1 - exp(-mu))``.

``-log L = -sum log(L_timing + noise floor) + hit/no-hit terms``; analytic gradients throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .constants import (
    C_VACUUM_M_PER_NS,
    D_EFF_A,
    D_EFF_B,
    D_EFF_C,
    D_EFF_D,
    N_GROUP,
    PANDEL_JITTER_NS,
    PANDEL_LAMBDA_M,
    THETA_CHERENKOV,
)
from .hits import HitSeries
from .ice import LayeredIce
from .pandel import NOISE_FLOOR_PER_NS, dom_loglike_terms, n_photons_from_charge, pandel_xi

FloatArray = NDArray[np.float64]

SIN_C = math.sin(THETA_CHERENKOV)
COS_C = math.cos(THETA_CHERENKOV)
COT_C = COS_C / SIN_C
INV_C = 1.0 / C_VACUUM_M_PER_NS
#: d-coefficient of the direct-light delay of a track, (n_g / sin - cot) / c, ns per m.
K_OVER_C = (N_GROUP / SIN_C - COT_C) / C_VACUUM_M_PER_NS
_D_SMOOTH2 = 0.5**2


@dataclass(frozen=True)
class NoHitTerm:
    """Expected photo-electrons ``mu = brightness * rde * A(d, cos eta)`` with the amplitude

        A = exp(-d / attenuation_m) / (d + d0_m) * (1 + acceptance_slope * cos eta)

    (``d`` the source distance ``d_src``), for the hit DOMs and for ``unhit`` DOMs (positions and
    rde) that saw nothing; DOMs farther than ``max_distance_m`` are ignored.
    """

    brightness: float
    unhit_pos: FloatArray
    unhit_rde: FloatArray
    hit_rde: FloatArray
    attenuation_m: float = 40.0
    d0_m: float = 10.0
    acceptance_slope: float = 0.5
    max_distance_m: float = 150.0


@dataclass(frozen=True)
class LikelihoodOptions:
    """What the likelihood includes (module docstring); the defaults are the classic Pandel."""

    mpe: bool = True
    sigma: float = PANDEL_JITTER_NS
    noise_floor: float = NOISE_FLOOR_PER_NS
    ice: LayeredIce | None = None
    ice_reference_b: float = 1.0 / 25.0
    ice_exponent: float = 1.0
    ice_window_m: float = 5.0
    max_photons: float | None = None
    starting: bool = False
    nohit: NoHitTerm | None = None

    @property
    def n_params(self) -> int:
        return 4 if self.starting else 3


class _Doms:
    """DOM coordinates in the track frame (and, with layered ice, the cumulative scattering at the
    DOM's depth minus and plus the averaging window)."""

    def __init__(
        self,
        pos: FloatArray,
        cog: FloatArray,
        e1: FloatArray,
        e2: FloatArray,
        p: FloatArray,
        options: LikelihoodOptions,
    ) -> None:
        rel = pos - cog
        self.x = rel @ e1
        self.y = rel @ e2
        self.ell = rel @ p
        self.z = pos[:, 2].copy()
        self.cum_lo: FloatArray | None = None
        self.cum_hi: FloatArray | None = None
        if options.ice is not None:
            w = options.ice_window_m
            self.cum_lo = options.ice.fast_cumulative_scattering(self.z - w)[0]
            self.cum_hi = options.ice.fast_cumulative_scattering(self.z + w)[0]


class _Geo:
    """Per (variation, DOM) geometry of the first light and its derivatives (a, b, s_v)."""

    def __init__(self, lk: TrackLikelihood, doms: _Doms, params: FloatArray) -> None:
        a = params[:, 0:1]
        b = params[:, 1:2]
        dx = doms.x - a
        dy = doms.y - b
        d = np.sqrt(dx * dx + dy * dy + _D_SMOOTH2)
        inv_d = 1.0 / d
        rz = dx * lk.e1z + dy * lk.e2z  # z of the perpendicular vector from the track to the DOM
        # track light
        ce = (rz * SIN_C) * inv_d + lk.cos_p
        self.delay = K_OVER_C * d
        self.d_src = d
        self.ce = ce
        self.z_src = doms.z - rz - d * (lk.pz * COT_C)
        dd_a, dd_b = -dx * inv_d, -dy * inv_d
        self.delay_a, self.delay_b = K_OVER_C * dd_a, K_OVER_C * dd_b
        self.dsrc_a, self.dsrc_b = dd_a, dd_b
        self.ce_a = (-lk.e1z * SIN_C - (ce - lk.cos_p) * dd_a) * inv_d
        self.ce_b = (-lk.e2z * SIN_C - (ce - lk.cos_p) * dd_b) * inv_d
        self.zsrc_a = lk.e1z - dd_a * (lk.pz * COT_C)
        self.zsrc_b = lk.e2z - dd_b * (lk.pz * COT_C)
        if params.shape[1] > 3:
            zeros = np.zeros_like(d)
            self.delay_s = zeros
            self.dsrc_s = zeros
            self.ce_s = zeros
            self.zsrc_s = zeros
            self._vertex(lk, doms, params[:, 3:4], dx, dy, d, rz, dd_a, dd_b)

    def _vertex(
        self,
        lk: TrackLikelihood,
        doms: _Doms,
        sv: FloatArray,
        dx: FloatArray,
        dy: FloatArray,
        d: FloatArray,
        rz: FloatArray,
        dd_a: FloatArray,
        dd_b: FloatArray,
    ) -> None:
        u = doms.ell - sv
        use = u < d * COT_C  # the Cherenkov emission point lies before the vertex
        if not use.any():
            return
        r = np.sqrt(d * d + u * u)
        inv_r = 1.0 / r
        ce_v = (rz + u * lk.pz) * inv_r
        r_a, r_b, r_s = -dx * inv_r, -dy * inv_r, -u * inv_r
        k = 1.0 / SIN_C - 1.0

        def pick(vertex: FloatArray, track: FloatArray) -> FloatArray:
            out: FloatArray = np.where(use, vertex, track)
            return out

        self.delay = pick((r * N_GROUP - u) * INV_C, self.delay)
        self.delay_a = pick(r_a * (N_GROUP * INV_C), self.delay_a)
        self.delay_b = pick(r_b * (N_GROUP * INV_C), self.delay_b)
        self.delay_s = pick(r_s * (N_GROUP * INV_C) + INV_C, self.delay_s)
        self.d_src = pick(r - d * k, self.d_src)
        self.dsrc_a = pick(r_a - k * dd_a, self.dsrc_a)
        self.dsrc_b = pick(r_b - k * dd_b, self.dsrc_b)
        self.dsrc_s = pick(r_s, self.dsrc_s)
        self.ce_a = pick((-lk.e1z - ce_v * r_a) * inv_r, self.ce_a)
        self.ce_b = pick((-lk.e2z - ce_v * r_b) * inv_r, self.ce_b)
        self.ce_s = pick((-lk.pz - ce_v * r_s) * inv_r, self.ce_s)
        self.ce = pick(ce_v, self.ce)
        self.z_src = pick(doms.z - rz - u * lk.pz, self.z_src)
        self.zsrc_a = pick(np.broadcast_to(lk.e1z, use.shape), self.zsrc_a)
        self.zsrc_b = pick(np.broadcast_to(lk.e2z, use.shape), self.zsrc_b)
        self.zsrc_s = pick(np.broadcast_to(lk.pz, use.shape), self.zsrc_s)


class TrackLikelihood:
    """-log L of one pixel direction for a hit series (see the module docstring)."""

    def __init__(
        self,
        hits: HitSeries,
        e1: FloatArray,
        e2: FloatArray,
        p: FloatArray,
        options: LikelihoodOptions,
    ) -> None:
        self.options = options
        self.e1z, self.e2z, self.pz = float(e1[2]), float(e2[2]), float(p[2])
        self.cos_p = COS_C * self.pz
        self.cog = hits.cog()
        self.hit = _Doms(hits.pos, self.cog, e1, e2, p, options)
        self.t_along = hits.time - self.hit.ell * INV_C
        n_ph = n_photons_from_charge(hits.charge)
        if options.max_photons is not None:
            n_ph = np.minimum(n_ph, options.max_photons)
        self.n_ph = n_ph
        nohit = options.nohit
        self.unhit = None if nohit is None else _Doms(nohit.unhit_pos, self.cog, e1, e2, p, options)
        self.n_evals = 0

    # ---- pieces

    def _ice_scale(self, geo: _Geo, doms: _Doms) -> tuple[FloatArray, FloatArray]:
        """Scattering scale ``s`` of each (variation, DOM) and ``ds / dz_src``."""
        opt = self.options
        if opt.ice is None or doms.cum_lo is None or doms.cum_hi is None:
            one = np.ones_like(geo.d_src)
            return one, np.zeros_like(one)
        w = opt.ice_window_m
        below = geo.z_src < doms.z
        # the path's far end: the source widened by w; the DOM's end is precomputed
        z_far = np.where(below, geo.z_src - w, geo.z_src + w)
        cum_far, b_far = opt.ice.fast_cumulative_scattering(z_far)
        span = np.where(below, (doms.z + w) - z_far, z_far - (doms.z - w))
        inv_span = 1.0 / span
        mean_b = np.where(below, doms.cum_hi - cum_far, cum_far - doms.cum_lo) * inv_span
        # d mean / d z_src
        d_mean = np.where(below, mean_b - b_far, b_far - mean_b) * inv_span
        inv_ref = 1.0 / opt.ice_reference_b
        if opt.ice_exponent == 1.0:
            return mean_b * inv_ref, d_mean * inv_ref
        s = (mean_b * inv_ref) ** opt.ice_exponent
        return s, s * opt.ice_exponent * d_mean / mean_b

    def nll(self, params: FloatArray) -> tuple[FloatArray, FloatArray]:
        """-log L (k,) and its gradient (k, n_params) at the parameter rows ``params``."""
        self.n_evals += params.shape[0]
        opt = self.options
        geo = _Geo(self, self.hit, params)
        s, ds_dz = self._ice_scale(geo, self.hit)
        d_eff = D_EFF_A * geo.d_src + (D_EFF_C + D_EFF_D * geo.ce) * geo.ce + D_EFF_B
        xi = pandel_xi(d_eff * s)
        t_res = self.t_along - params[:, 2:3] - geo.delay
        ll = dom_loglike_terms(
            t_res, xi, self.n_ph, mpe=opt.mpe, sigma=opt.sigma, noise_floor=opt.noise_floor
        )
        g_xi = ll.d_dxi * (1.0 / PANDEL_LAMBDA_M)
        dce = D_EFF_C + 2.0 * D_EFF_D * geo.ce
        grad = np.empty((params.shape[0], params.shape[1]))

        def d_ll(
            delay_x: FloatArray, dsrc_x: FloatArray, ce_x: FloatArray, zsrc_x: FloatArray
        ) -> FloatArray:
            dxi = (D_EFF_A * dsrc_x + dce * ce_x) * s + d_eff * ds_dz * zsrc_x
            out: FloatArray = -np.sum(-ll.d_dt * delay_x + g_xi * dxi, axis=1)
            return out

        grad[:, 0] = d_ll(geo.delay_a, geo.dsrc_a, geo.ce_a, geo.zsrc_a)
        grad[:, 1] = d_ll(geo.delay_b, geo.dsrc_b, geo.ce_b, geo.zsrc_b)
        grad[:, 2] = np.sum(ll.d_dt, axis=1)
        if params.shape[1] > 3:
            grad[:, 3] = d_ll(geo.delay_s, geo.dsrc_s, geo.ce_s, geo.zsrc_s)
        value: FloatArray = -np.sum(ll.value, axis=1)
        if opt.nohit is not None:
            nh_value, nh_grad = self._nohit(params, geo)
            value = value + nh_value
            grad += nh_grad
        return value, grad

    def unit_amplitudes(self, params: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``mu / brightness`` of the hit and of the dark DOMs at one parameter row (1, n_params)."""
        if self.unhit is None:
            raise ValueError("the likelihood has no hit/no-hit term")
        nh = self.options.nohit
        assert nh is not None
        hit, _ = self._amplitude(_Geo(self, self.hit, params), nh.hit_rde, 1.0)
        dark, _ = self._amplitude(_Geo(self, self.unhit, params), nh.unhit_rde, 1.0)
        return hit.ravel(), dark.ravel()

    def _amplitude(
        self, geo: _Geo, rde: FloatArray, brightness: float | None = None
    ) -> tuple[FloatArray, list[FloatArray]]:
        """``mu`` (k, n) and its derivatives w.r.t. the parameters (a, b[, s_v])."""
        nh = self.options.nohit
        assert nh is not None
        lam = nh.brightness if brightness is None else brightness
        d = geo.d_src
        shape = 1.0 + nh.acceptance_slope * geo.ce
        base = np.exp(-d / nh.attenuation_m) / (d + nh.d0_m)
        inside = d < nh.max_distance_m
        mu = np.where(inside, lam * rde * base * shape, 0.0)
        dlog_d = -1.0 / nh.attenuation_m - 1.0 / (d + nh.d0_m)
        dlog_ce = nh.acceptance_slope / shape
        derivs = [
            mu * (dlog_d * geo.dsrc_a + dlog_ce * geo.ce_a),
            mu * (dlog_d * geo.dsrc_b + dlog_ce * geo.ce_b),
        ]
        if self.options.starting:
            derivs.append(mu * (dlog_d * geo.dsrc_s + dlog_ce * geo.ce_s))
        return mu, derivs

    def _nohit(self, params: FloatArray, hit_geo: _Geo) -> tuple[FloatArray, FloatArray]:
        nh = self.options.nohit
        assert nh is not None and self.unhit is not None
        n_par = params.shape[1]
        grad = np.zeros((params.shape[0], n_par))
        # hit DOMs: -log(1 - exp(-mu))
        mu, dmu = self._amplitude(hit_geo, nh.hit_rde)
        mu_c = np.maximum(mu, 1e-12)
        term = -np.log(-np.expm1(-mu_c))
        factor = -1.0 / np.expm1(mu_c)  # d term / d mu
        value: FloatArray = np.sum(term, axis=1)
        for j, idx in enumerate((0, 1, 3)):
            if idx < n_par:
                grad[:, idx] += np.sum(factor * dmu[j], axis=1)
        if self.unhit.x.shape[0]:
            geo = _Geo(self, self.unhit, params)
            mu_u, dmu_u = self._amplitude(geo, nh.unhit_rde)
            value = value + np.sum(mu_u, axis=1)
            for j, idx in enumerate((0, 1, 3)):
                if idx < n_par:
                    grad[:, idx] += np.sum(dmu_u[j], axis=1)
        return value, grad

    def nll_scan_t0(
        self, ab: FloatArray, t0s: FloatArray, sv: FloatArray | None = None
    ) -> FloatArray:
        """-log L at transverse positions ``ab`` (k, 2) [and vertices ``sv`` (k,)] for the times
        ``t0s`` (k, m): the timing part only, to initialise t0."""
        k, m = t0s.shape
        cols = [ab[:, 0], ab[:, 1], np.zeros(k)] + ([] if sv is None else [sv])
        base_params = np.column_stack(cols)
        geo = _Geo(self, self.hit, base_params)
        s, _ = self._ice_scale(geo, self.hit)
        d_eff = D_EFF_A * geo.d_src + (D_EFF_C + D_EFF_D * geo.ce) * geo.ce + D_EFF_B
        xi = pandel_xi(d_eff * s)
        base = self.t_along - geo.delay
        opt = self.options
        ll = dom_loglike_terms(
            (base[:, None, :] - t0s[:, :, None]).reshape(k * m, -1),
            np.repeat(xi, m, axis=0),
            self.n_ph,
            mpe=opt.mpe,
            sigma=opt.sigma,
            noise_floor=opt.noise_floor,
            grad=False,
        )
        out: FloatArray = -np.sum(ll.value, axis=1).reshape(k, m)
        return out

    def base_residuals(self, ab: FloatArray, sv: FloatArray | None = None) -> FloatArray:
        """Time residuals at ``t0 = 0`` (k, n) for transverse positions ``ab`` (k, 2)."""
        k = ab.shape[0]
        cols = [ab[:, 0], ab[:, 1], np.zeros(k)] + ([] if sv is None else [sv])
        geo = _Geo(self, self.hit, np.column_stack(cols))
        out: FloatArray = self.t_along - geo.delay
        return out

    def distances(self, a: float, b: float) -> FloatArray:
        """Perpendicular distances (m) of the hit DOMs from the track at (a, b)."""
        out: FloatArray = np.hypot(self.hit.x - a, self.hit.y - b)
        return out
