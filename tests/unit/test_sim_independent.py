"""The independent simulator as a whole: determinism per seed, valid events, truth; muon losses and
light parametrisations against their published reference values."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pytest

from skymap_scanner.events import PulseEvent, parse_event
from skymap_scanner.simulation import (
    add_simulate_arguments,
    dumps_event,
    run_simulate,
    simulate_independent_events,
)
from skymap_scanner.simulation.light import (
    PHOTONS_PER_M,
    cascade_length_mean,
    muon_light_per_m,
)
from skymap_scanner.simulation.losses import mean_loss_per_m, propagate_muon
from skymap_scanner.simulation.volume import instrumented_volume, length_inside

LOW = (1e3, 3e3)  # cheap events for the tests


def test_deterministic_per_seed_and_independent_of_the_count() -> None:
    a = simulate_independent_events(2, seed=31, energy_range_gev=LOW)
    b = simulate_independent_events(2, seed=31, energy_range_gev=LOW)
    c = simulate_independent_events(2, seed=32, energy_range_gev=LOW)
    assert [dumps_event(e) for e in a] == [dumps_event(e) for e in b]
    assert [e["pulses"] for e in a] != [e["pulses"] for e in c]
    second = simulate_independent_events(1, seed=31, energy_range_gev=LOW, first_event=1)
    assert dumps_event(second[0]) == dumps_event(a[1])


def test_events_are_valid_with_truth() -> None:
    events = simulate_independent_events(
        4, seed=5, energy_range_gev=LOW, starting_fraction=0.5, min_length_m=300.0
    )
    kinds = set()
    prism = instrumented_volume()
    for event in events:
        parsed = parse_event(event)
        assert isinstance(parsed, PulseEvent)
        truth = event["truth"]
        kinds.add(truth["starting"])
        assert truth["length_in_detector_m"] >= 300.0
        assert LOW[0] <= truth["energy_gev"] <= LOW[1]
        p = -np.array(
            [
                math.sin(truth["zenith"]) * math.cos(truth["azimuth"]),
                math.sin(truth["zenith"]) * math.sin(truth["azimuth"]),
                math.cos(truth["zenith"]),
            ]
        )
        if truth["starting"]:
            vertex = np.array(truth["vertex"])
            assert bool(prism.contains(vertex)[0])
            assert truth["muon_energy_gev"] + truth["cascade_energy_gev"] == pytest.approx(
                truth["energy_gev"]
            )
            assert length_inside(prism, vertex, p, 1e4) == pytest.approx(
                truth["length_in_detector_m"], abs=0.01
            )
        else:
            assert truth["cascade_energy_gev"] == 0.0
        assert len({(s, o) for s, o, _, _ in event["pulses"]}) >= 8
    assert kinds == {True, False}


def test_command_writes_events(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    args = parser.parse_args(
        ["--n-events", "1", "--seed", "2", "--output-dir", str(tmp_path), "--energy-range-gev"]
        + [str(v) for v in LOW]
    )
    assert args.simulator == "independent"
    assert run_simulate(args) == 0
    (path,) = tmp_path.glob("sim_run*.json")
    assert "skymap_scanner.simulation.independent" in path.read_text()


def test_mean_muon_energy_loss_is_a_plus_b_e() -> None:
    """Chirkin & Rhode 2004 (ice): a = 0.2375 GeV/m, b = 3.33e-4 /m; the stochastic sampler must
    reproduce the mean a + b E (10 TeV muons over 20 m, 3000 of them)."""
    assert mean_loss_per_m(1e4) == pytest.approx(0.2375 + 3.33e-4 * 1e4, rel=0.003)
    rng = np.random.default_rng(11)
    e0 = 1e4
    lost = np.array([e0 - propagate_muon(rng, e0, 20.0).energy[-1] for _ in range(3000)])
    assert lost.mean() / 20.0 == pytest.approx(mean_loss_per_m(e0), rel=0.12)
    # most muons lose far less than the mean: the losses are stochastic
    assert np.median(lost) < 0.6 * lost.mean()


def test_light_yield_reference_values() -> None:
    """Frank-Tamm (300-600 nm, n = 1.3195): 3.25e4 photons per metre; Raedel & Wiebusch: a muon
    gives 1.188 + 0.0206 ln E times the bare track, an EM cascade 5.3207 m per GeV, a hadronic one
    3.3355 E^1.0366 m."""
    assert PHOTONS_PER_M == pytest.approx(32527.0, rel=1e-3)
    assert float(muon_light_per_m(1e5)) == pytest.approx(1.188 + 0.0206 * math.log(1e5))
    e = np.array([10.0, 1e4])
    em = cascade_length_mean(e, np.array([False, False]))
    had = cascade_length_mean(e, np.array([True, True]))
    np.testing.assert_allclose(em, 5.3207 * e)
    np.testing.assert_allclose(had, 3.3355 * e**1.0366)
