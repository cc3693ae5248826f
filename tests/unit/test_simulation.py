"""Tests of skymap_scanner.simulation (fast toy muon-track simulation)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from skymap_scanner.events import PulseEvent, parse_event
from skymap_scanner.simulation import (
    direction_from_vector,
    dumps_event,
    simulate_event,
    simulate_event_detailed,
    simulate_events,
    write_events,
)


def _one(seed: int, energy_gev: float = 1e5, **kwargs: float) -> dict[str, object]:
    return simulate_event(
        np.random.default_rng(seed),
        energy_gev=energy_gev,
        zenith=1.2,
        azimuth=2.5,
        run_id=7,
        event_id=seed,
        mjd=60000.5,
        **kwargs,
    )


def _linefit_velocity(ev: PulseEvent, min_dom_charge: float = 2.0) -> np.ndarray:
    """LineFit-like: least-squares r = r0 + v t over the first pulse of DOMs with enough charge."""
    key = ev.string * 1000 + ev.om
    _, inv = np.unique(key, return_inverse=True)
    dom_charge = np.bincount(inv, weights=ev.charge)
    order = np.lexsort((ev.time, key))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    idx = order[first]
    idx = idx[dom_charge[inv[idx]] >= min_dom_charge]
    t = ev.time[idx] - ev.time[idx].mean()
    r = ev.position[idx] - ev.position[idx].mean(axis=0)
    return (t[:, None] * r).sum(axis=0) / (t**2).sum()


def test_same_seed_identical_different_seed_differs() -> None:
    a, b, c = _one(11), _one(11), _one(12)
    assert dumps_event(a) == dumps_event(b)
    assert json.dumps(a) == json.dumps(b)
    assert a["pulses"] != c["pulses"]
    many1 = simulate_events(3, seed=5)
    many2 = simulate_events(3, seed=5)
    assert [dumps_event(e) for e in many1] == [dumps_event(e) for e in many2]
    assert [e["pulses"] for e in simulate_events(3, seed=6)] != [e["pulses"] for e in many1]
    # event i does not depend on how many events are simulated
    assert dumps_event(simulate_events(1, seed=5)[0]) == dumps_event(many1[0])


def test_simulated_event_is_valid_pulse_event() -> None:
    raw = _one(1)
    assert raw["format"] == "pulse-event/1"
    assert raw["is_real_event"] is False and raw["event_type"] == "simulated"
    assert raw["truth"] == {"zenith": 1.2, "azimuth": 2.5, "energy_gev": 1e5}
    ev = parse_event(json.dumps(raw))
    assert isinstance(ev, PulseEvent)
    assert ev.truth is not None and ev.truth.zenith == 1.2
    assert ev.metadata.run_id == 7 and ev.metadata.is_real_event is False
    assert np.all(ev.charge > 0)


def test_100tev_lights_many_doms() -> None:
    for seed in range(3):
        ev = parse_event(_one(seed, energy_gev=1e5, impact_radius_m=300.0))
        assert isinstance(ev, PulseEvent)
        assert ev.n_doms > 50
        assert 50 < ev.n_pulses < 20_000


def test_energy_scaling_and_noise() -> None:
    rng = np.random.default_rng(3)
    _, low = simulate_event_detailed(
        rng, energy_gev=1e3, zenith=0.3, azimuth=1.0, run_id=1, event_id=1, mjd=6e4,
        impact_parameter_m=100.0,
    )  # fmt: skip
    _, high = simulate_event_detailed(
        rng, energy_gev=1e5, zenith=0.3, azimuth=1.0, run_id=1, event_id=2, mjd=6e4,
        impact_parameter_m=100.0,
    )  # fmt: skip
    assert 5 < low.n_signal_doms < 150
    assert high.n_signal_doms > 3 * low.n_signal_doms
    # ~ 5083 live DOMs x 500 Hz x 15 us = 38 noise pulses
    assert 10 < low.n_noise_pulses < 80
    quiet = simulate_event(
        rng, energy_gev=1e4, zenith=0.3, azimuth=1.0, run_id=1, event_id=3, mjd=6e4,
        noise_rate_hz=0.0, impact_parameter_m=50.0,
    )  # fmt: skip
    assert len(quiet["pulses"]) > 0  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(5))
def test_truth_direction_matches_time_ordering(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    zenith = math.acos(rng.uniform(-1.0, 1.0))
    azimuth = rng.uniform(0.0, 2.0 * math.pi)
    raw = simulate_event(
        rng, energy_gev=1e5, zenith=zenith, azimuth=azimuth, run_id=1, event_id=seed, mjd=6e4
    )
    ev = parse_event(raw)
    assert isinstance(ev, PulseEvent)
    v = _linefit_velocity(ev)
    came_from = direction_from_vector(zenith, azimuth)
    cos_angle = float(np.dot(-v, came_from) / np.linalg.norm(v))
    assert math.degrees(math.acos(min(1.0, cos_angle))) < 30.0


def test_simulate_events_ranges_and_write(tmp_path: Path) -> None:
    events = simulate_events(
        4, seed=42, energy_range_gev=(1e3, 1e4), zenith_range=(0.0, math.pi / 2)
    )
    assert [e["event_id"] for e in events] == [1, 2, 3, 4]
    for e in events:
        truth = e["truth"]
        assert 1e3 <= truth["energy_gev"] <= 1e4
        assert 0.0 <= truth["zenith"] <= math.pi / 2
        assert isinstance(parse_event(e), PulseEvent)
    paths = write_events(events, tmp_path / "out")
    assert [p.name for p in paths] == [f"sim_run00000042_evt{i:012d}.json" for i in range(1, 5)]
    assert json.loads(paths[0].read_text()) == events[0]
    again = write_events(simulate_events(4, 42, (1e3, 1e4), (0.0, math.pi / 2)), tmp_path / "b")
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="energy_gev"):
        _one(1, energy_gev=-1.0)
    with pytest.raises(ValueError, match="zenith"):
        simulate_event(
            np.random.default_rng(1), energy_gev=1e3, zenith=4.0, azimuth=0.0, run_id=1,
            event_id=1, mjd=6e4,
        )  # fmt: skip
