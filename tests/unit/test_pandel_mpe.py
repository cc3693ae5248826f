"""MPE is not SPE. Both DOM likelihoods are normalised densities in the first hit time, so a normalisation test
cannot tell them apart; these tests check values: the MPE likelihood of a DOM that saw N > 1 photons is the
first-of-N density N p(t) S(t)^(N-1) (physics.md), with S computed here by integrating p numerically (not
through the module's survival function), and `pandel_mpe` reconstructs a pixel with it while `pandel_spe`
does not."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate

from skymap_scanner.physics import pandel
from skymap_scanner.physics.constants import PANDEL_JITTER_NS
from skymap_scanner.physics.coordinates import dir_to_equa
from skymap_scanner.recos import get_reco
from skymap_scanner.simulation import simulate_event
from skymap_scanner.startup import make_startup_data
from skyscan_contract.messages import PixelTask

T_P = pandel.PATCH_POINT_SIGMAS * PANDEL_JITTER_NS


def pdf(t: float, d_eff: float) -> float:
    return float(np.exp(pandel.log_pdf(np.array([t]), np.array([d_eff]))[0]))


def survival(t: float, d_eff: float) -> float:
    """1 - integral of the single-photon pdf up to t (quadrature, split at the patch point)."""
    edges = [-400.0, *([T_P] if T_P < t else []), t]
    mass: float = sum(
        integrate.quad(pdf, a, b, args=(d_eff,), limit=400, epsabs=1e-13)[0]
        for a, b in itertools.pairwise(edges)
    )
    return 1.0 - mass


@pytest.mark.parametrize("d_eff", [10.0, 40.0, 120.0])
@pytest.mark.parametrize("n_photons", [2, 5, 12])
def test_mpe_is_the_first_of_n_photons_density(d_eff: float, n_photons: int) -> None:
    times = np.array([-10.0, 5.0, 30.0, 120.0])
    charge = np.full(times.shape, float(n_photons))
    deff = np.full(times.shape, d_eff)
    mpe = pandel.dom_loglike(times, deff, charge, mpe=True, noise_floor=0.0)
    spe = pandel.dom_loglike(times, deff, charge, mpe=False, noise_floor=0.0)
    for i, t in enumerate(times.tolist()):
        s = survival(t, d_eff)
        first_of_n = math.log(n_photons) + math.log(pdf(t, d_eff)) + (n_photons - 1) * math.log(s)
        assert mpe[i] == pytest.approx(first_of_n, abs=1e-6), (t, d_eff, n_photons)
        assert spe[i] == pytest.approx(math.log(pdf(t, d_eff)), abs=1e-9)
    # they differ by log N + (N-1) log S (zero only where S = N^(-1/(N-1))): the points tell them apart
    assert np.max(np.abs(mpe - spe)) > 0.3, mpe - spe


def test_one_photon_mpe_equals_spe() -> None:
    times = np.array([-10.0, 5.0, 30.0, 120.0])
    deff = np.full(times.shape, 40.0)
    ones = np.ones(times.shape)
    np.testing.assert_allclose(
        pandel.dom_loglike(times, deff, ones, mpe=True),
        pandel.dom_loglike(times, deff, ones, mpe=False),
        rtol=0,
        atol=1e-12,
    )


def test_pandel_mpe_and_pandel_spe_reconstruct_with_their_own_likelihoods() -> None:
    """The same pixel from the same seed: a bright track has many multi-photon DOMs, so the two best-fit
    likelihoods differ by far more than fit noise (and only MPE carries the log N terms)."""
    rng = np.random.default_rng(7)
    zenith, azimuth, mjd = math.radians(120.0), 2.0, 60123.456
    event = simulate_event(
        rng, energy_gev=1e5, zenith=zenith, azimuth=azimuth, run_id=1, event_id=1, mjd=mjd
    )
    charges = np.array([row[3] for row in event["pulses"]], dtype=float)
    assert np.count_nonzero(np.rint(charges) >= 2) >= 10, "the test needs multi-photon DOMs"
    ra, dec = (float(v) for v in dir_to_equa(zenith, azimuth, mjd))
    llh: dict[str, float] = {}
    for algo in ("pandel_mpe", "pandel_spe"):
        startup = make_startup_data("mpe", algo, event)
        task = PixelTask(
            scan_id="mpe",
            reco_algo=algo,
            nside=8,
            pixel=0,
            posvar=0,
            ra=ra,
            dec=dec,
            seed=startup.fallback_seed,
        )
        llh[algo] = get_reco(algo)(startup).reconstruct(task).llh
    assert all(math.isfinite(v) for v in llh.values()), llh
    assert abs(llh["pandel_mpe"] - llh["pandel_spe"]) > 10.0, llh
