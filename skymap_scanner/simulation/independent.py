"""An independent event simulator: muons with stochastic losses, photons through the layered ice.

It shares no light model with the reconstruction (no Pandel, no effective distance): light comes
from published emission parametrisations (:mod:`.light`), is carried photon by photon through the
SPICE layers (:mod:`.propagation`) and detected with IceCube's angular acceptance, timing spread
and noise (:mod:`.readout`). What an event is:

* **through-going** (probability ``1 - starting_fraction``): a muon of energy E (log-uniform in the
  energy range) at the boundary of the simulation volume (a cylinder of radius ``SIM_RADIUS_M`` and
  half-height ``SIM_HALF_HEIGHT_M`` around the detector centre: light from farther is absorbed),
  on a line whose closest approach to the detector centre is uniform in a disk of radius 800 m;
* **starting**: a charged-current neutrino interaction of energy E at a vertex uniform in the
  instrumented volume: a hadronic cascade of energy ``y E`` and a muon of ``(1 - y) E`` along the
  neutrino direction from the vertex (the muon-neutrino angle, < 0.1 deg above 10 TeV, is left
  out); ``y`` from ``dN/dy ~ (1 + (1 - y)^2) y^-0.7`` on [0.001, 1] (mean 0.27, close to the
  charged-current mean inelasticity above 10 TeV, Gandhi et al. 1996, Astropart. Phys. 5, 81);
* the direction is isotropic within the zenith range; events whose track is shorter than
  ``min_length_m`` inside the instrumented volume, or that light fewer than ``MIN_SIGNAL_DOMS``
  DOMs, are redrawn (from the same generator, so the result stays a function of the seed).

The tracked-photon budget: enough photons that one crossing gives at most one photo-electron on
average, up to ``max_tracked`` (2 million, ~15 s on one core); above ~300 TeV the cap makes the
brightest DOMs' photo-electrons share crossing times (see :mod:`.readout`).

Truth: ``zenith``, ``azimuth`` (the direction the muon comes from), ``energy_gev`` (the neutrino
energy for starting events, the muon energy at the simulation boundary for through-going ones) and
``starting``, ``vertex`` (interaction vertex, or the point closest to the detector centre),
``muon_energy_gev`` (at the vertex or boundary), ``cascade_energy_gev``, ``inelasticity``,
``length_in_detector_m``, ``energy_lost_in_detector_gev``, ``simulator``.

Left out (beyond the modules'): neutrino propagation through the Earth, atmospheric muons and
coincident events, tau neutrinos and neutral currents, the muon's multiple scattering, layer tilt
and scattering anisotropy, bulk-ice wavelength dependence, hole-ice photon propagation (folded into
the angular acceptance), DOM shadowing, saturation and the trigger.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from ..events.geometry import DEFAULT_DETECTOR, load_geometry
from ..events.model import FORMAT_PULSE_EVENT_1
from ..physics.constants import C_VACUUM_M_PER_NS
from ..physics.ice import spice_ice
from .domindex import DomIndex
from .light import (
    PHOTONS_PER_M,
    Photons,
    cascade_length_sample,
    cascade_photons,
    muon_light_per_m,
    track_photons,
)
from .losses import MuonLosses, propagate_muon
from .muon import pulse_rows
from .propagation import HG_SCATTERS, propagate
from .readout import (
    ACCEPTANCE_MAX,
    Pulses,
    detection_probability_scale,
    merge_pulses,
    noise_pulses,
    photo_electrons,
)
from .volume import Prism, instrumented_volume, length_inside

FloatArray = NDArray[np.float64]
log = logging.getLogger(__name__)

SIMULATOR_NAME: Final = "skymap_scanner.simulation.independent/1"
EVENT_TYPE: Final = "simulated"
SIM_RADIUS_M = 1000.0
SIM_HALF_HEIGHT_M = 950.0
IMPACT_RADIUS_M = 800.0
DOM_RADIUS_OVERSIZED_M = 5.0
MAX_TRACKED = 2_000_000
MIN_SIGNAL_DOMS = 8
#: The muon passes its closest approach to the detector centre at this time, ns.
T_CLOSEST_NS = 10_000.0
#: Readout window around the signal: from this long before the first photo-electron to this long
#: after the last one (noise is drawn over it), ns.
WINDOW_BEFORE_NS, WINDOW_AFTER_NS = 4000.0, 2000.0
_MAX_TRIES = 1000
_MJD_RANGE = (58849.0, 61041.0)


@dataclass(frozen=True)
class Track:
    """The muon: start point (m), unit direction of travel, time at the start (ns), energy there
    (GeV), plus the neutrino vertex cascade (energy 0 for through-going muons)."""

    start: FloatArray
    direction: FloatArray
    t_start: float
    energy_gev: float
    max_length_m: float
    starting: bool
    cascade_energy_gev: float
    inelasticity: float
    reference_point: FloatArray


def from_vector(zenith: float, azimuth: float) -> FloatArray:
    """Unit vector pointing back to where the particle came from."""
    st = math.sin(zenith)
    return np.array([st * math.cos(azimuth), st * math.sin(azimuth), math.cos(zenith)])


def _cylinder_exit(point: FloatArray, d: FloatArray) -> tuple[float, float] | None:
    """(s_in, s_out) of the line ``point + s d`` through the simulation cylinder."""
    lo, hi = -math.inf, math.inf
    if abs(d[2]) > 1e-12:
        a = (-SIM_HALF_HEIGHT_M - point[2]) / d[2]
        b = (SIM_HALF_HEIGHT_M - point[2]) / d[2]
        lo, hi = min(a, b), max(a, b)
    elif abs(point[2]) > SIM_HALF_HEIGHT_M:
        return None
    aa = d[0] ** 2 + d[1] ** 2
    bb = point[0] * d[0] + point[1] * d[1]
    cc = point[0] ** 2 + point[1] ** 2 - SIM_RADIUS_M**2
    if aa < 1e-12:
        if cc > 0.0:
            return None
    else:
        disc = bb * bb - aa * cc
        if disc <= 0.0:
            return None
        root = math.sqrt(disc)
        lo, hi = max(lo, (-bb - root) / aa), min(hi, (-bb + root) / aa)
    return (lo, hi) if lo < hi else None


def _perpendicular(p: FloatArray) -> tuple[FloatArray, FloatArray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(p[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = np.cross(p, helper)
    a /= np.linalg.norm(a)
    return a, np.cross(p, a)


@functools.lru_cache(maxsize=1)
def _inelasticity_table() -> tuple[FloatArray, FloatArray]:
    y = np.logspace(-3.0, 0.0, 3001)
    pdf = (1.0 + (1.0 - y) ** 2) * y**-0.7
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(y))])
    return cdf / cdf[-1], y


def sample_inelasticity(rng: np.random.Generator) -> float:
    """Charged-current inelasticity ``y`` (module docstring)."""
    cdf, y = _inelasticity_table()
    return float(np.interp(rng.random(), cdf, y))


def _draw_track(
    rng: np.random.Generator,
    prism: Prism,
    energy: float,
    zenith: float,
    azimuth: float,
    starting: bool,
) -> tuple[Track, float] | None:
    """One candidate track and its length in the instrumented volume (None: misses the volume)."""
    p = -from_vector(zenith, azimuth)
    if starting:
        vertex = prism.sample_inside(rng)
        ch = _cylinder_exit(vertex, p)
        if ch is None:
            return None
        y = sample_inelasticity(rng)
        track = Track(
            start=vertex,
            direction=p,
            t_start=T_CLOSEST_NS,
            energy_gev=(1.0 - y) * energy,
            max_length_m=ch[1],
            starting=True,
            cascade_energy_gev=y * energy,
            inelasticity=y,
            reference_point=vertex,
        )
    else:
        a, b = _perpendicular(p)
        r = IMPACT_RADIUS_M * math.sqrt(rng.random())
        phi = rng.uniform(0.0, 2.0 * math.pi)
        closest = r * (math.cos(phi) * a + math.sin(phi) * b)
        ch = _cylinder_exit(closest, p)
        if ch is None:
            return None
        track = Track(
            start=closest + ch[0] * p,
            direction=p,
            t_start=T_CLOSEST_NS + ch[0] / C_VACUUM_M_PER_NS,
            energy_gev=energy,
            max_length_m=ch[1] - ch[0],
            starting=False,
            cascade_energy_gev=0.0,
            inelasticity=0.0,
            reference_point=closest,
        )
    return track, length_inside(prism, track.start, p, track.max_length_m)


def _emit(
    rng: np.random.Generator, track: Track, muon: MuonLosses, max_tracked: int, rde_max: float
) -> tuple[Photons, float]:
    """Tracked photons of the whole event and the real photons each one stands for."""
    s = muon.s_grid
    dens = muon_light_per_m(muon.energy)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(s))])
    track_light = float(cum[-1])
    n_loss = muon.loss_s.shape[0]
    c_energy = muon.loss_energy
    c_had = muon.loss_hadronic
    c_pos = track.start[None, :] + muon.loss_s[:, None] * track.direction[None, :]
    c_time = track.t_start + muon.loss_s / C_VACUUM_M_PER_NS
    if track.cascade_energy_gev > 0.0:
        c_energy = np.append(c_energy, track.cascade_energy_gev)
        c_had = np.append(c_had, True)
        c_pos = np.vstack([c_pos, track.start])
        c_time = np.append(c_time, track.t_start)
    c_light = cascade_length_sample(rng, c_energy, c_had)
    light = np.concatenate([[track_light], c_light])
    total_photons = float(light.sum()) * PHOTONS_PER_M
    per_pe = detection_probability_scale(DOM_RADIUS_OVERSIZED_M) * ACCEPTANCE_MAX * rde_max
    n_tracked = int(min(max_tracked, max(1000, math.ceil(total_photons * per_pe))))
    counts = rng.multinomial(n_tracked, light / light.sum())
    n_track = int(counts[0])
    s_photon = np.interp(rng.random(n_track) * track_light, cum, s)
    bare = 1.0 / muon_light_per_m(muon.energy_at(s_photon))
    parts = [
        track_photons(
            rng, n_track, track.start, track.direction, track.t_start, s_photon, bare_fraction=bare
        ),
        cascade_photons(
            rng,
            counts[1:].astype(np.int64),
            c_pos,
            np.broadcast_to(track.direction, (c_energy.shape[0], 3)),
            c_time,
            c_energy,
            c_had,
        ),
    ]
    log.debug(
        "%d losses, light %.3g m, %d tracked photons for %.3g real",
        n_loss,
        light.sum(),
        n_tracked,
        total_photons,
    )
    return Photons.concatenate(parts), total_photons / n_tracked


@functools.lru_cache(maxsize=2)
def _dom_index(detector: str) -> DomIndex:
    geo = load_geometry(detector)
    live = geo.live
    return DomIndex(geo.position[live], geo.string[live], DOM_RADIUS_OVERSIZED_M)


@dataclass(frozen=True)
class SimulatedEvent:
    """A simulated event and facts about it (beyond the event's truth) for checks."""

    event: dict[str, Any]
    n_tracked_photons: int
    photons_per_tracked: float
    n_signal_pe: int
    n_signal_doms: int


def simulate_one(
    rng: np.random.Generator,
    *,
    energy_gev: float,
    zenith: float,
    azimuth: float,
    starting: bool,
    run_id: int,
    event_id: int,
    mjd: float,
    min_length_m: float = 300.0,
    noise_rate_hz: float = 500.0,
    max_tracked: int = MAX_TRACKED,
    hg_scatters: int | None = HG_SCATTERS,
    detector: str = DEFAULT_DETECTOR,
) -> SimulatedEvent:
    """Simulate one event with the given energy and direction (geometry drawn from ``rng``)."""
    geo = load_geometry(detector)
    live = np.flatnonzero(geo.live)
    rde = geo.efficiency[live]
    prism = instrumented_volume(detector)
    index = _dom_index(detector)
    for _ in range(_MAX_TRIES):
        drawn = _draw_track(rng, prism, energy_gev, zenith, azimuth, starting)
        if drawn is None or drawn[1] < min_length_m:
            continue
        track, length_in = drawn
        muon = propagate_muon(rng, track.energy_gev, track.max_length_m)
        photons, per_tracked = _emit(rng, track, muon, max_tracked, float(rde.max()))
        hits = propagate(
            rng,
            spice_ice(),
            index,
            photons.pos,
            photons.direction,
            photons.time,
            hg_scatters=hg_scatters,
        )
        pe = photo_electrons(rng, hits, per_tracked, DOM_RADIUS_OVERSIZED_M, rde)
        n_doms = int(np.unique(pe.dom).shape[0])
        if n_doms < MIN_SIGNAL_DOMS:
            continue
        signal = merge_pulses(rng, pe)
        t0 = float(pe.time.min()) - WINDOW_BEFORE_NS
        t1 = float(pe.time.max()) + WINDOW_AFTER_NS
        noise = noise_pulses(rng, live.shape[0], noise_rate_hz, t0, t1)
        pulses = Pulses.concatenate([signal, noise])
        event = _event_dict(
            geo_string=geo.string[live],
            geo_om=geo.om[live],
            pulses=pulses,
            track=track,
            muon=muon,
            length_in=length_in,
            prism=prism,
            energy_gev=energy_gev,
            zenith=zenith,
            azimuth=azimuth,
            run_id=run_id,
            event_id=event_id,
            mjd=mjd,
            detector=geo.name,
        )
        return SimulatedEvent(event, photons.n, per_tracked, int(pe.dom.shape[0]), n_doms)
    raise RuntimeError(f"no acceptable event in {_MAX_TRIES} draws (energy {energy_gev:g} GeV)")


def _event_dict(
    *,
    geo_string: NDArray[np.int64],
    geo_om: NDArray[np.int64],
    pulses: Pulses,
    track: Track,
    muon: MuonLosses,
    length_in: float,
    prism: Prism,
    energy_gev: float,
    zenith: float,
    azimuth: float,
    run_id: int,
    event_id: int,
    mjd: float,
    detector: str,
) -> dict[str, Any]:
    rows = pulse_rows(geo_string[pulses.dom], geo_om[pulses.dom], pulses.time, pulses.charge)
    chord = prism.chord(track.start, track.direction)
    lost = 0.0
    if chord is not None:
        s_in = max(chord[0], 0.0)
        s_out = min(chord[1], muon.length_m)
        if s_out > s_in:
            e_in, e_out = muon.energy_at(np.array([s_in, s_out]))
            lost = float(e_in - e_out)
    if track.starting:
        lost += track.cascade_energy_gev
    return {
        "format": FORMAT_PULSE_EVENT_1,
        "run_id": int(run_id),
        "event_id": int(event_id),
        "mjd": float(mjd),
        "event_type": EVENT_TYPE,
        "is_real_event": False,
        "detector": detector,
        "pulses": rows,
        "truth": {
            "zenith": float(zenith),
            "azimuth": float(azimuth),
            "energy_gev": float(energy_gev),
            "starting": bool(track.starting),
            "vertex": [round(float(v), 3) for v in track.reference_point],
            "muon_energy_gev": float(track.energy_gev),
            "cascade_energy_gev": float(track.cascade_energy_gev),
            "inelasticity": float(track.inelasticity),
            "length_in_detector_m": round(float(length_in), 3),
            "energy_lost_in_detector_gev": round(lost, 3),
            "simulator": SIMULATOR_NAME,
        },
    }


def simulate_independent_events(
    n_events: int,
    seed: int,
    energy_range_gev: tuple[float, float] = (1e3, 1e7),
    zenith_range: tuple[float, float] = (0.0, math.pi),
    noise_rate_hz: float = 500.0,
    *,
    starting_fraction: float = 0.5,
    min_length_m: float = 300.0,
    run_id: int | None = None,
    first_event: int = 0,
    max_tracked: int = MAX_TRACKED,
) -> list[dict[str, Any]]:
    """``n_events`` events (module docstring); event ``i`` uses ``default_rng((seed, i))`` so it does
    not depend on ``n_events``; ``first_event`` skips the first ones (for parallel runs)."""
    if n_events < 0 or seed < 0 or not 0.0 <= starting_fraction <= 1.0:
        raise ValueError("n_events and seed must be >= 0, starting_fraction in [0, 1]")
    e_lo, e_hi = (float(x) for x in energy_range_gev)
    z_lo, z_hi = (float(x) for x in zenith_range)
    if not 0 < e_lo <= e_hi:
        raise ValueError(f"bad energy_range_gev {energy_range_gev}")
    if not 0.0 <= z_lo <= z_hi <= math.pi:
        raise ValueError(f"bad zenith_range {zenith_range}")
    run = seed % 1_000_000 if run_id is None else run_id
    events = []
    for i in range(first_event, first_event + n_events):
        rng = np.random.default_rng((seed, i))
        energy = math.exp(rng.uniform(math.log(e_lo), math.log(e_hi)))
        cos_zenith = rng.uniform(math.cos(z_hi), math.cos(z_lo))
        zenith = math.acos(min(1.0, max(-1.0, cos_zenith)))
        azimuth = rng.uniform(0.0, 2.0 * math.pi)
        mjd = rng.uniform(*_MJD_RANGE)
        starting = bool(rng.random() < starting_fraction)
        sim = simulate_one(
            rng,
            energy_gev=energy,
            zenith=zenith,
            azimuth=azimuth,
            starting=starting,
            run_id=run,
            event_id=i + 1,
            mjd=mjd,
            min_length_m=min_length_m,
            noise_rate_hz=noise_rate_hz,
            max_tracked=max_tracked,
        )
        events.append(sim.event)
    return events
