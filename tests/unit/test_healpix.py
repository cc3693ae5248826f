"""Our numpy HEALPix functions against healpy, pixel by pixel."""

from __future__ import annotations

import subprocess
import sys

import healpy
import numpy as np
import pytest

from skymap_scanner import healpix

NSIDES = [1, 2, 4, 8, 16, 64, 256]


def _sample(nside: int, n: int = 50_000) -> np.ndarray:
    npix = 12 * nside * nside
    if npix <= n:
        return np.arange(npix)
    return np.random.default_rng(nside).integers(0, npix, n)


@pytest.mark.parametrize("nside", [*NSIDES, 512, 8192])
def test_pix2ang_and_pix2vec_match_healpy(nside: int) -> None:
    pix = _sample(nside)
    theta, phi = healpix.pix2ang(nside, pix)
    ref_theta, ref_phi = healpy.pix2ang(nside, pix)
    np.testing.assert_allclose(theta, ref_theta, rtol=0, atol=1e-13)
    np.testing.assert_allclose(phi, ref_phi, rtol=0, atol=1e-13)
    np.testing.assert_allclose(
        healpix.pix2vec(nside, pix), np.array(healpy.pix2vec(nside, pix)).T, rtol=0, atol=1e-13
    )


def test_scalar_pixel_gives_scalars() -> None:
    theta, phi = healpix.pix2ang(8, 100)
    assert theta.shape == () and phi.shape == ()
    assert healpix.pix2vec(8, 100).shape == (3,)
    assert float(theta) == pytest.approx(healpy.pix2ang(8, 100)[0], abs=1e-13)


@pytest.mark.parametrize("nside", [*NSIDES, 512, 8192])
def test_ring_nest_conversions_match_healpy(nside: int) -> None:
    pix = _sample(nside)
    assert (healpix.ring2nest(nside, pix) == healpy.ring2nest(nside, pix)).all()
    assert (healpix.nest2ring(nside, pix) == healpy.nest2ring(nside, pix)).all()


@pytest.mark.parametrize("nside", [1, 2, 4, 8, 16, 64, 512])
def test_neighbours_match_healpy(nside: int) -> None:
    pix = _sample(nside, 20_000)
    ours = healpix.neighbours(nside, pix)
    ref = healpy.get_all_neighbours(nside, pix).T
    assert ours.shape == (pix.size, 8)
    for p, a, b in zip(pix.tolist(), ours.tolist(), ref.tolist(), strict=True):
        assert sorted(a) == sorted(b), p  # same neighbours (order differs), -1 where healpy has it


@pytest.mark.parametrize(("fine", "coarse"), [(2, 1), (16, 4), (64, 8), (512, 64), (512, 8)])
def test_parent_is_the_coarse_pixel_holding_the_centre(fine: int, coarse: int) -> None:
    pix = _sample(fine)
    theta, phi = healpy.pix2ang(fine, pix)
    assert (healpix.parent(fine, pix, coarse) == healpy.ang2pix(coarse, theta, phi)).all()


@pytest.mark.parametrize("nside", [1, 2, 8, 64, 512])
def test_pixels_within_matches_query_disc(nside: int) -> None:
    rng = np.random.default_rng(nside)
    centres = [np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0])]
    centres += [v / np.linalg.norm(v) for v in rng.normal(size=(30, 3))]
    for centre in centres:
        radius = float(rng.uniform(0.001, 2.5 if nside <= 64 else 0.1))
        candidates = healpy.query_disc(nside, centre, radius, inclusive=True)
        vecs = np.array(healpy.pix2vec(nside, candidates)).T
        inside = candidates[np.arccos(np.clip(vecs @ centre, -1, 1)) < radius]
        got = healpix.pixels_within(nside, centre, radius)
        assert sorted(got.tolist()) == sorted(inside.tolist()), (centre, radius)


def test_sizes() -> None:
    assert healpix.nside2npix(64) == healpy.nside2npix(64)
    assert healpix.nside2pixarea(64) == pytest.approx(healpy.nside2pixarea(64), rel=1e-15)


def test_the_scanner_server_does_not_import_healpy() -> None:
    """healpy drags in matplotlib and astropy; the server's start-up is on every scan's critical path."""
    code = (
        "import sys, skymap_scanner.server.main, skymap_scanner.server.scan;"
        "print(sorted(m for m in ('healpy', 'matplotlib', 'astropy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
