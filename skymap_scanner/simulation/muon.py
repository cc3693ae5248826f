"""Fast toy simulation of through-going muon tracks in IceCube-86, as ``pulse-event/1`` events.

This is a FAST APPROXIMATION for testing and evaluating the scanner; it is NOT IceCube's photon
propagation (no ice layers, no stochastic energy-loss profile, no DOM angular acceptance beyond
the effective-distance term, no saturation, no trigger/readout simulation).  The model:

* An infinite muon track with direction of travel ``p = -u``, where
  ``u = (sin(zen) cos(azi), sin(zen) sin(azi), cos(zen))`` is the direction the muon came FROM
  (IceCube convention).  Its point of closest approach to the detector centre is uniform in a
  disk of radius ``impact_radius_m`` (default 500 m) perpendicular to the track, so the track
  crosses IceCube-86; the muon passes that point at ``t0 = 0.4 * window``.
* For every live DOM: perpendicular distance ``d``, along-track distance ``d_t``, direct
  Cherenkov arrival time ``t_geo = t0 + [d_t + d (n_group / sin(th_c) - 1 / tan(th_c))] / c``
  and effective distance ``d_eff = 0.8395 d + 3.094 - 3.946 cos_eta + 4.636 cos_eta**2``, where
  ``cos_eta`` is the z component of the direct photon's direction of travel (PMT facing down:
  a photon travelling straight up hits it head-on, cos_eta = 1).
* Mean number of photo-electrons
  ``mu = N_mip (1 + E / E_c) eff exp(-d_eff / lambda_att) / d_eff``: light yield roughly linear
  in muon energy above ``E_c`` = 720 GeV (ionisation + radiative losses), ``eff`` the relative
  DOM efficiency, ``lambda_att = sqrt(lambda_a * lambda / 3)`` ~ 33 m a diffusion-like
  attenuation length from the Pandel constants, and ``N_mip = 25`` tuned so that a 1 TeV track
  lights a few tens of DOMs and a 100 TeV track a few hundred.
* Photon count per DOM ~ Poisson(mu); each photon's delay after ``t_geo`` ~ Pandel, i.e.
  Gamma(shape xi = d_eff / lambda, rate rho = 1/tau + c_ice/lambda_a), plus Gaussian jitter
  (sigma = 2.5 ns); its charge ~ Normal(1, 0.3) p.e. (at least 0.1).  Photons of a DOM are merged
  into pulses in time bins counted from the DOM's first photon, 25 ns wide and growing by 1.3x
  per bin (pulse time = first photon of the bin, charge = sum), which keeps bright DOMs to about
  ten pulses.
* Dark noise: Poisson(rate * window) single-p.e. pulses per live DOM, uniform over the event
  window (default 15 us).

Everything is drawn from the given ``numpy.random.Generator``: a seed gives byte-identical output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from ..events.geometry import DEFAULT_DETECTOR, load_geometry
from ..events.model import FORMAT_PULSE_EVENT_1
from ..physics.constants import (
    C_ICE_M_PER_NS,
    C_VACUUM_M_PER_NS,
    D_EFF_A,
    D_EFF_B,
    D_EFF_C,
    D_EFF_D,
    N_GROUP,
    PANDEL_ABSORPTION_M,
    PANDEL_LAMBDA_M,
    PANDEL_TAU_NS,
    THETA_CHERENKOV,
)

__all__ = [
    "EVENT_TYPE_SIMULATED",
    "SimulatedTrack",
    "direction_from_vector",
    "simulate_event",
    "simulate_event_detailed",
    "simulate_events",
    "write_events",
]

EVENT_TYPE_SIMULATED: Final = "simulated"

#: Light yield: mean photo-electron scale of a minimum-ionising muon (tuned, see module doc).
LIGHT_YIELD_MIP: Final = 25.0
#: Muon critical energy in ice, GeV: above it radiative losses dominate and light grows ~ linearly.
MUON_CRITICAL_ENERGY_GEV: Final = 720.0
#: Diffusion-like attenuation length of the light amplitude, metres.
ATTENUATION_LENGTH_M: Final = math.sqrt(PANDEL_ABSORPTION_M * PANDEL_LAMBDA_M / 3.0)
#: Default Gaussian timing jitter added to each photon, ns.
PHOTON_JITTER_NS: Final = 2.5
#: Photons of one DOM are merged into pulses in time bins after its first photon: the first bin is
#: PULSE_MERGE_NS wide, each next one PULSE_BIN_GROWTH times wider (bright DOMs: ~10 pulses).
PULSE_MERGE_NS: Final = 25.0
PULSE_BIN_GROWTH: Final = 1.3
#: Single photo-electron charge distribution (Normal(mean, sigma), at least SPE_MIN).
SPE_MEAN: Final = 1.0
SPE_SIGMA: Final = 0.3
SPE_MIN: Final = 0.1

_TAN_C: Final = math.tan(THETA_CHERENKOV)
_SIN_C: Final = math.sin(THETA_CHERENKOV)
_PANDEL_RHO: Final = 1.0 / PANDEL_TAU_NS + C_ICE_M_PER_NS / PANDEL_ABSORPTION_M
_MJD_RANGE_DEFAULT: Final = (58849.0, 61041.0)  # 2020-01-01 .. 2026-01-01


@dataclass(frozen=True)
class SimulatedTrack:
    """What was simulated, beyond the event's ``truth`` (for evaluation and debugging)."""

    #: unit vector pointing back to where the muon came from
    direction_from: tuple[float, float, float]
    #: point of closest approach to the detector centre, metres
    vertex: tuple[float, float, float]
    #: time at which the muon passes ``vertex``, ns (event time axis)
    t0_ns: float
    impact_parameter_m: float
    n_signal_photons: int
    n_signal_doms: int
    n_signal_pulses: int
    n_noise_pulses: int


def direction_from_vector(zenith: float, azimuth: float) -> NDArray[np.float64]:
    """Unit vector (sinθ cosφ, sinθ sinφ, cosθ) pointing back to the source."""
    st = math.sin(zenith)
    return np.array(
        [st * math.cos(azimuth), st * math.sin(azimuth), math.cos(zenith)], dtype=np.float64
    )


def _perpendicular_basis(p: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(p[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = np.cross(p, helper)
    a /= np.linalg.norm(a)
    b = np.cross(p, a)
    return a, b


def _spe_charges(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    out: NDArray[np.float64] = np.maximum(rng.normal(SPE_MEAN, SPE_SIGMA, n), SPE_MIN)
    return out


def _check_finite(name: str, value: float) -> float:
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def simulate_event_detailed(
    rng: np.random.Generator,
    *,
    energy_gev: float,
    zenith: float,
    azimuth: float,
    run_id: int,
    event_id: int,
    mjd: float,
    noise_rate_hz: float = 500.0,
    impact_radius_m: float = 500.0,
    impact_parameter_m: float | None = None,
    time_window_ns: float = 15_000.0,
    jitter_ns: float = PHOTON_JITTER_NS,
    light_yield_scale: float = 1.0,
    detector: str = DEFAULT_DETECTOR,
) -> tuple[dict[str, Any], SimulatedTrack]:
    """Like :func:`simulate_event`, also returning what was simulated (:class:`SimulatedTrack`)."""
    energy_gev = _check_finite("energy_gev", energy_gev)
    zenith = _check_finite("zenith", zenith)
    azimuth = _check_finite("azimuth", azimuth)
    mjd = _check_finite("mjd", mjd)
    if energy_gev <= 0:
        raise ValueError(f"energy_gev must be > 0, got {energy_gev}")
    if not 0.0 <= zenith <= math.pi:
        raise ValueError(f"zenith must be in [0, pi], got {zenith}")
    if not (
        noise_rate_hz >= 0 and time_window_ns > 0 and jitter_ns >= 0 and light_yield_scale >= 0
    ):
        raise ValueError("noise_rate_hz, jitter_ns, light_yield_scale must be >= 0, window > 0")
    if isinstance(run_id, bool) or isinstance(event_id, bool) or run_id < 0 or event_id < 0:
        raise ValueError("run_id and event_id must be non-negative integers")

    geo = load_geometry(detector)
    live = np.flatnonzero(geo.live)
    pos = geo.position[live]
    eff = geo.efficiency[live]

    # --- the track: travel direction p, closest approach r_c, time t0 at r_c
    u = direction_from_vector(zenith, azimuth)
    p = -u
    a, b = _perpendicular_basis(p)
    if impact_parameter_m is None:
        r = impact_radius_m * math.sqrt(rng.uniform())
    else:
        r = float(impact_parameter_m)
    alpha = rng.uniform(0.0, 2.0 * math.pi)
    r_c = r * (math.cos(alpha) * a + math.sin(alpha) * b)
    t0 = 0.4 * time_window_ns

    # --- direct Cherenkov light geometry per live DOM
    v = pos - r_c
    d_t = v @ p
    d = np.linalg.norm(v - np.outer(d_t, p), axis=1)
    t_geo = t0 + (d_t + d * (N_GROUP / _SIN_C - 1.0 / _TAN_C)) / C_VACUUM_M_PER_NS
    emission = r_c + np.outer(d_t - d / _TAN_C, p)
    k = pos - emission
    k_norm = np.linalg.norm(k, axis=1)
    cos_eta = np.divide(k[:, 2], k_norm, out=np.zeros_like(k_norm), where=k_norm > 0)
    d_eff = D_EFF_A * d + D_EFF_B + D_EFF_C * cos_eta + D_EFF_D * cos_eta**2

    # --- expected and drawn photo-electrons
    yield_ = light_yield_scale * LIGHT_YIELD_MIP * (1.0 + energy_gev / MUON_CRITICAL_ENERGY_GEV)
    mu = yield_ * eff * np.exp(-d_eff / ATTENUATION_LENGTH_M) / d_eff
    n_photons = rng.poisson(mu)
    hit = np.flatnonzero(n_photons)
    counts = n_photons[hit]
    dom_of_photon = np.repeat(hit, counts)
    xi = d_eff[dom_of_photon] / PANDEL_LAMBDA_M
    delay = rng.gamma(xi, 1.0 / _PANDEL_RHO)
    t_photon = t_geo[dom_of_photon] + delay + rng.normal(0.0, jitter_ns, dom_of_photon.shape[0])
    q_photon = _spe_charges(rng, dom_of_photon.shape[0])

    # --- merge photons into pulses: 25 ns bins from each DOM's first photon
    order = np.lexsort((t_photon, dom_of_photon))
    dom_sorted = dom_of_photon[order]
    t_sorted = t_photon[order]
    q_sorted = q_photon[order]
    first = np.ones(dom_sorted.shape[0], dtype=bool)
    first[1:] = dom_sorted[1:] != dom_sorted[:-1]
    t_first = np.maximum.accumulate(np.where(first, np.arange(first.shape[0]), 0))
    # bin k covers [w (g^k - 1) / (g - 1), w (g^(k+1) - 1) / (g - 1)) after the DOM's first photon
    since_first = np.maximum(t_sorted - t_sorted[t_first], 0.0)
    bins = np.floor(
        np.log1p(since_first * (PULSE_BIN_GROWTH - 1.0) / PULSE_MERGE_NS)
        / math.log(PULSE_BIN_GROWTH)
    ).astype(np.int64)
    new_pulse = first.copy()
    new_pulse[1:] |= bins[1:] != bins[:-1]
    starts = np.flatnonzero(new_pulse)
    sig_dom = dom_sorted[starts]
    sig_time = t_sorted[starts]
    sig_charge = np.add.reduceat(q_sorted, starts) if starts.shape[0] else np.zeros(0)

    # --- dark noise on all live DOMs, uniform over the window
    n_noise = rng.poisson(noise_rate_hz * 1e-9 * time_window_ns, live.shape[0])
    noise_dom = np.repeat(np.arange(live.shape[0]), n_noise)
    noise_time = rng.uniform(0.0, time_window_ns, noise_dom.shape[0])
    noise_charge = _spe_charges(rng, noise_dom.shape[0])

    dom = np.concatenate([sig_dom, noise_dom])
    rows = pulse_rows(
        geo.string[live][dom],
        geo.om[live][dom],
        np.concatenate([sig_time, noise_time]),
        np.concatenate([sig_charge, noise_charge]),
    )

    event: dict[str, Any] = {
        "format": FORMAT_PULSE_EVENT_1,
        "run_id": int(run_id),
        "event_id": int(event_id),
        "mjd": mjd,
        "event_type": EVENT_TYPE_SIMULATED,
        "is_real_event": False,
        "detector": geo.name,
        "pulses": rows,
        "truth": {"zenith": zenith, "azimuth": azimuth, "energy_gev": energy_gev},
    }
    info = SimulatedTrack(
        direction_from=(float(u[0]), float(u[1]), float(u[2])),
        vertex=(float(r_c[0]), float(r_c[1]), float(r_c[2])),
        t0_ns=t0,
        impact_parameter_m=r,
        n_signal_photons=int(counts.sum()),
        n_signal_doms=int(hit.shape[0]),
        n_signal_pulses=int(starts.shape[0]),
        n_noise_pulses=int(noise_dom.shape[0]),
    )
    return event, info


def simulate_event(
    rng: np.random.Generator,
    *,
    energy_gev: float,
    zenith: float,
    azimuth: float,
    run_id: int,
    event_id: int,
    mjd: float,
    noise_rate_hz: float = 500.0,
    impact_radius_m: float = 500.0,
    impact_parameter_m: float | None = None,
    time_window_ns: float = 15_000.0,
    jitter_ns: float = PHOTON_JITTER_NS,
    light_yield_scale: float = 1.0,
    detector: str = DEFAULT_DETECTOR,
) -> dict[str, Any]:
    """Simulate one through-going muon track as a ``pulse-event/1`` dict (see module docstring).

    Args:
        rng: the only source of randomness (same generator state -> identical event).
        energy_gev: muon energy (sets the light yield).
        zenith, azimuth: direction the muon came FROM, radians, IceCube convention.
        run_id, event_id, mjd: the event's metadata (``is_real_event`` is false).
        noise_rate_hz: dark-noise rate per DOM.
        impact_radius_m: radius of the disk (perpendicular to the track, centred on the detector
            centre) in which the track's point of closest approach is drawn uniformly.
        impact_parameter_m: fix the distance of closest approach instead (direction still random).
        time_window_ns: event window for noise; the muon passes its closest approach at
            0.4 * window.
        jitter_ns: Gaussian timing jitter per photon.
        light_yield_scale: multiplies the mean number of photo-electrons.
        detector: geometry name.

    Returns:
        A ``pulse-event/1`` dict with ``truth`` and ``event_type`` "simulated"; pulses are sorted by
        time and all numbers are plain Python ints/floats (JSON-serialisable).
    """
    event, _ = simulate_event_detailed(
        rng,
        energy_gev=energy_gev,
        zenith=zenith,
        azimuth=azimuth,
        run_id=run_id,
        event_id=event_id,
        mjd=mjd,
        noise_rate_hz=noise_rate_hz,
        impact_radius_m=impact_radius_m,
        impact_parameter_m=impact_parameter_m,
        time_window_ns=time_window_ns,
        jitter_ns=jitter_ns,
        light_yield_scale=light_yield_scale,
        detector=detector,
    )
    return event


def simulate_events(
    n_events: int,
    seed: int,
    energy_range_gev: tuple[float, float] = (1e3, 1e6),
    zenith_range: tuple[float, float] = (0.0, math.pi),
    noise_rate_hz: float = 500.0,
    *,
    run_id: int | None = None,
    mjd_range: tuple[float, float] = _MJD_RANGE_DEFAULT,
    impact_radius_m: float = 500.0,
) -> list[dict[str, Any]]:
    """Simulate ``n_events`` tracks: energy log-uniform, direction isotropic within ``zenith_range``
    (uniform in cos zenith, azimuth uniform), MJD uniform in ``mjd_range``.

    Event ``i`` uses the generator ``numpy.random.default_rng((seed, i))``, so it does not depend on
    ``n_events``.  ``run_id`` defaults to ``seed % 1_000_000``; event ids are 1..n_events.
    """
    if n_events < 0 or seed < 0:
        raise ValueError("n_events and seed must be >= 0")
    e_lo, e_hi = (float(x) for x in energy_range_gev)
    z_lo, z_hi = (float(x) for x in zenith_range)
    if not 0 < e_lo <= e_hi:
        raise ValueError(f"bad energy_range_gev {energy_range_gev}")
    if not 0.0 <= z_lo <= z_hi <= math.pi:
        raise ValueError(f"bad zenith_range {zenith_range}")
    run = seed % 1_000_000 if run_id is None else run_id
    events: list[dict[str, Any]] = []
    for i in range(n_events):
        rng = np.random.default_rng((seed, i))
        energy = math.exp(rng.uniform(math.log(e_lo), math.log(e_hi)))
        cos_zenith = rng.uniform(math.cos(z_hi), math.cos(z_lo))
        zenith = math.acos(min(1.0, max(-1.0, cos_zenith)))
        azimuth = rng.uniform(0.0, 2.0 * math.pi)
        mjd = rng.uniform(*mjd_range)
        events.append(
            simulate_event(
                rng,
                energy_gev=energy,
                zenith=zenith,
                azimuth=azimuth,
                run_id=run,
                event_id=i + 1,
                mjd=mjd,
                noise_rate_hz=noise_rate_hz,
                impact_radius_m=impact_radius_m,
            )
        )
    return events


def event_filename(event: dict[str, Any]) -> str:
    """``sim_run<run>_evt<event>.json`` (run zero-padded to 8 digits, event to 12)."""
    return f"sim_run{int(event['run_id']):08d}_evt{int(event['event_id']):012d}.json"


def dumps_event(event: dict[str, Any]) -> str:
    """Deterministic JSON text of an event (one pulse row per line, for readable diffs)."""
    head = {k: v for k, v in event.items() if k != "pulses"}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, allow_nan=False)},")
    rows: Sequence[Any] = event.get("pulses", [])
    lines.append('  "pulses": [')
    lines.extend(
        f"    {json.dumps(row, allow_nan=False)}{',' if i + 1 < len(rows) else ''}"
        for i, row in enumerate(rows)
    )
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_events(events: Iterable[dict[str, Any]], output_dir: str | PathLike[str]) -> list[Path]:
    """Write each event as ``<output_dir>/sim_run<run>_evt<event>.json``; returns the paths."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for event in events:
        path = out / event_filename(event)
        path.write_text(dumps_event(event), encoding="utf-8")
        paths.append(path)
    return paths


def pulse_rows(string: Any, om: Any, time: Any, charge: Any) -> list[list[Any]]:
    """`pulse-event/1` rows [string, om, time, charge], time to 0.1 ns and charge to 0.001 PE, in time
    order (ties by string, om, charge): what both simulators write."""
    time, charge = np.round(time, 1), np.round(charge, 3)
    order = np.lexsort((charge, om, string, time))
    return [
        [s, o, t, q]
        for s, o, t, q in zip(
            string[order].tolist(),
            om[order].tolist(),
            time[order].tolist(),
            charge[order].tolist(),
            strict=True,
        )
    ]
