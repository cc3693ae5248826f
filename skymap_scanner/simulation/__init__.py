"""Fast toy simulation of through-going muon tracks as ``pulse-event/1`` events.

NOT IceCube's photon propagation; see :mod:`skymap_scanner.simulation.muon` for the model.
"""

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
    "SimulatedTrack",
    "direction_from_vector",
    "dumps_event",
    "event_filename",
    "simulate_event",
    "simulate_event_detailed",
    "simulate_events",
    "write_events",
]
