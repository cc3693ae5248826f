"""Simulated ``pulse-event/1`` events.

* :mod:`.independent` (the default of ``skymap-scanner simulate`` and ``bench/accuracy.py``): muons with
  stochastic energy losses and starting tracks, photons carried through the layered SPICE ice, IceCube's
  DOM acceptance, timing and noise; it shares no light model with the reconstruction.
* :mod:`.muon`: the old fast toy model of through-going muons with the fit's own Pandel pdf (a
  self-consistency check of the fit, NOT IceCube's photon propagation).
"""

from .command import add_simulate_arguments, run_simulate
from .independent import SimulatedEvent, simulate_independent_events, simulate_one
from .muon import (
    EVENT_TYPE_SIMULATED,
    SimulatedTrack,
    direction_from_vector,
    dumps_event,
    event_filename,
    simulate_event,
    simulate_event_detailed,
    simulate_events,
    write_events,
)

__all__ = [
    "EVENT_TYPE_SIMULATED",
    "SimulatedEvent",
    "SimulatedTrack",
    "add_simulate_arguments",
    "direction_from_vector",
    "dumps_event",
    "event_filename",
    "run_simulate",
    "simulate_event",
    "simulate_event_detailed",
    "simulate_events",
    "simulate_independent_events",
    "simulate_one",
    "write_events",
]
