"""The independent simulator's photon propagation and DOM index against reference values.

References: (1) geometry — DOM-sphere crossings found by the index equal a brute-force test over all
spheres; (2) light yield — in ice without scattering or absorption, the photo-electrons a DOM sees
from a bare muon equal the Frank-Tamm photon count times the cylinder-geometry flux
``r^2 N / (2 d sin(theta_c))`` (Cherenkov photons per metre N, DOM radius r, distance d); (3)
arrival times — far from an isotropic source in a scattering and absorbing medium, the photon
arrival-time distribution is the diffusion solution ``t^-3/2 exp(-3 r^2 / (4 c lambda_e t) - c t /
lambda_a)`` (e.g. Ishimaru, Wave Propagation and Scattering in Random Media, 1978); without
scattering every photon arrives at ``d n_group / c``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from skymap_scanner.physics.constants import C_ICE_M_PER_NS, THETA_CHERENKOV
from skymap_scanner.physics.ice import LayeredIce, spice_ice
from skymap_scanner.simulation.domindex import DomIndex
from skymap_scanner.simulation.light import COS_CHERENKOV, PHOTONS_PER_M
from skymap_scanner.simulation.propagation import propagate, rotate_directions
from skymap_scanner.simulation.readout import (
    angular_acceptance,
    detection_probability_scale,
)


def _ring_detector(
    radius_xy: float, n_strings: int, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    ang = np.arange(n_strings) * 2.0 * math.pi / n_strings
    xy = np.column_stack([radius_xy * np.cos(ang), radius_xy * np.sin(ang)])
    pos = np.array([[x, y, zz] for x, y in xy for zz in z])
    strings = np.repeat(np.arange(n_strings), z.shape[0])
    return pos, strings


def test_crossings_equal_brute_force() -> None:
    from skymap_scanner.events.geometry import load_geometry

    geo = load_geometry("IceCube-86")
    pos = geo.position[geo.live]
    index = DomIndex(pos, geo.string[geo.live], 5.0)
    rng = np.random.default_rng(4)
    n = 6000
    near = pos[rng.integers(0, pos.shape[0], n)]
    p0 = near + rng.uniform(-25.0, 25.0, (n, 3))
    u = rotate_directions(
        np.tile([0.0, 0.0, 1.0], (n, 1)), rng.uniform(-1, 1, n), rng.uniform(0, 2 * math.pi, n)
    )
    length = rng.exponential(30.0, n)
    first = rng.random(n) < 0.5
    got = index.crossings(p0, u, length, first)
    # brute force over all spheres, 500 segments at a time
    pairs = []
    for lo in range(0, n, 500):
        sl = slice(lo, lo + 500)
        w = pos[None, :, :] - p0[sl, None, :]
        s_ca = np.einsum("ijk,ik->ij", w, u[sl])
        d2 = np.einsum("ijk,ijk->ij", w, w) - s_ca**2
        s_in = s_ca - np.sqrt(np.maximum(25.0 - d2, 0.0))
        hit = (d2 < 25.0) & (
            ((s_in >= 0) & (s_in < length[sl, None])) | (first[sl, None] & (s_in < 0) & (s_ca >= 0))
        )
        i, j = np.nonzero(hit)
        pairs += list(zip((i + lo).tolist(), j.tolist(), strict=True))
    want = set(pairs)
    assert len(want) > 200
    assert set(zip(got.photon.tolist(), got.dom.tolist(), strict=True)) == want


def test_direct_light_time_and_bare_muon_yield() -> None:
    """No scattering, no absorption: times are geometric and the yield is Frank-Tamm's."""
    ice = LayeredIce.homogeneous(1e9, 1e9)
    z = np.array([0.0])
    pos, strings = _ring_detector(30.0, 5, z)  # DOMs 30 m from a vertical muon on the z axis
    radius = 4.0
    index = DomIndex(pos, strings, radius)
    rng = np.random.default_rng(1)
    n = 600_000
    s = rng.uniform(-400.0, 400.0, n)
    start = np.column_stack([np.zeros(n), np.zeros(n), s])
    axis = np.tile([0.0, 0.0, 1.0], (n, 1))  # travelling up
    u = rotate_directions(axis, np.full(n, COS_CHERENKOV), rng.uniform(0, 2 * math.pi, n))
    t0 = s / 0.299792458
    hits = propagate(rng, ice, index, start, u, t0, max_distance_m=60.0)
    # geometric time of the Cherenkov front: t = z_dom/c + d (n_g/sin - 1/tan)/c
    d = 30.0
    from skymap_scanner.physics.constants import C_VACUUM_M_PER_NS, N_GROUP

    t_geo = (d * (N_GROUP / math.sin(THETA_CHERENKOV) - 1.0 / math.tan(THETA_CHERENKOV))) / (
        C_VACUUM_M_PER_NS
    )
    # photons crossing the 4 m sphere off-centre differ by < 0.1 ns per m of offset
    assert np.all(np.abs(hits.time - t_geo) < 1.0)
    # expected photo-electrons per DOM: each tracked photon stands for 800 m * N / n real photons
    per_tracked = 800.0 * PHOTONS_PER_M / n
    pe = per_tracked * detection_probability_scale(radius) * angular_acceptance(hits.u_z)
    per_dom = np.bincount(hits.dom, weights=pe, minlength=5)
    from skymap_scanner.simulation.readout import DOM_RADIUS_M, HEADON_EFFICIENCY

    photons_per_dom = DOM_RADIUS_M**2 * PHOTONS_PER_M / (2.0 * d * math.sin(THETA_CHERENKOV))
    reference = (
        photons_per_dom
        * HEADON_EFFICIENCY
        * float(angular_acceptance(np.array([COS_CHERENKOV]))[0])
    )
    assert reference == pytest.approx(1.069, rel=0.01)  # PE per DOM 30 m from a bare muon
    assert float(per_dom.mean()) == pytest.approx(reference, rel=0.07)
    np.testing.assert_allclose(per_dom, reference, rtol=0.25)


def _diffusion_median_delay(r: float, lambda_e: float, lambda_a: float) -> float:
    c = C_ICE_M_PER_NS
    t = np.linspace(r / c, 40.0 * r / c, 200_000)
    pdf = t**-1.5 * np.exp(-3.0 * r * r / (4.0 * c * lambda_e * t) - c * t / lambda_a)
    cdf = np.cumsum(pdf)
    cdf /= cdf[-1]
    return float(np.interp(0.5, cdf, t))


def test_diffuse_arrival_times_match_diffusion_theory() -> None:
    lambda_e, lambda_a, r = 15.0, 150.0, 120.0
    ice = LayeredIce.homogeneous(lambda_e, lambda_a)
    pos, strings = _ring_detector(r, 12, np.array([0.0]))
    index = DomIndex(pos, strings, 8.0)
    rng = np.random.default_rng(7)
    n = 200_000
    u = rotate_directions(
        np.tile([0.0, 0.0, 1.0], (n, 1)), rng.uniform(-1, 1, n), rng.uniform(0, 2 * math.pi, n)
    )
    hits = propagate(rng, ice, index, np.zeros((n, 3)), u, np.zeros(n), max_distance_m=1e4)
    assert hits.time.size > 500
    median = float(np.median(hits.time))
    reference = _diffusion_median_delay(r, lambda_e, lambda_a)
    assert reference == pytest.approx(1353.0, rel=0.01)  # ns: median delay 120 m from the source
    assert median == pytest.approx(reference, rel=0.08)


def test_layers_change_the_light() -> None:
    """The same source in the dust layer (z ~ -100 m) and in clear ice (z ~ -350 m): much less light
    and later arrivals in the dust."""
    ice = spice_ice()
    rng = np.random.default_rng(3)
    results = {}
    for z_src in (-100.0, -350.0):
        pos, strings = _ring_detector(60.0, 6, np.array([z_src]))
        index = DomIndex(pos, strings, 5.0)
        n = 60_000
        u = rotate_directions(
            np.tile([0.0, 0.0, 1.0], (n, 1)), rng.uniform(-1, 1, n), rng.uniform(0, 2 * math.pi, n)
        )
        start = np.tile([0.0, 0.0, z_src], (n, 1))
        hits = propagate(rng, ice, index, start, u, np.zeros(n))
        results[z_src] = (hits.time.size, float(np.median(hits.time)))
    dust, clear = results[-100.0], results[-350.0]
    assert dust[0] < 0.5 * clear[0]
    assert dust[1] > clear[1]
