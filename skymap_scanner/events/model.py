"""Data model of an event: metadata, pulses and (simulation only) truth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FORMAT_PULSE_EVENT_1",
    "EventMetadata",
    "I3LiveEvent",
    "PulseEvent",
    "Truth",
]

#: The only accepted value of an event's ``"format"`` field.
FORMAT_PULSE_EVENT_1 = "pulse-event/1"


@dataclass(frozen=True)
class EventMetadata:
    """What identifies an event (the original scanner's ``EventMetadata``, without ``version``)."""

    run_id: int
    event_id: int
    event_type: str
    mjd: float
    is_real_event: bool

    def to_dict(self) -> dict[str, Any]:
        """The five fields, in the order ``run_id, event_id, event_type, mjd, is_real_event``."""
        return {
            "run_id": self.run_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "mjd": self.mjd,
            "is_real_event": self.is_real_event,
        }

    def __str__(self) -> str:
        # same as the original scanner's cache-directory name: run%08d.evt%012d.<event_type>
        return f"run{self.run_id:08d}.evt{self.event_id:012d}.{self.event_type}"


@dataclass(frozen=True)
class Truth:
    """Simulation truth: the direction the particle came FROM (radians, IceCube convention)."""

    zenith: float
    azimuth: float
    energy_gev: float

    def to_dict(self) -> dict[str, float]:
        return {"zenith": self.zenith, "azimuth": self.azimuth, "energy_gev": self.energy_gev}


@dataclass(frozen=True, eq=False)
class PulseEvent:
    """A validated ``pulse-event/1`` event.

    All arrays have one row per pulse, in the order of the input, and are read-only.

    Attributes:
        metadata: run, event, type, MJD and whether it is a real event.
        string: IceCube string number per pulse (int64).
        om: optical-module number on the string per pulse (int64).
        time: pulse time in ns (float64; any common offset).
        charge: pulse charge in photo-electrons (float64, > 0).
        position: DOM position per pulse, shape (n_pulses, 3), metres, IceCube coordinates.
        dom_efficiency: relative DOM efficiency per pulse (1.0 standard, 1.35 high-QE DeepCore).
        truth: simulation truth, or None.
        detector: name of the geometry the positions were taken from (e.g. "IceCube-86").
    """

    metadata: EventMetadata
    string: NDArray[np.int64]
    om: NDArray[np.int64]
    time: NDArray[np.float64]
    charge: NDArray[np.float64]
    position: NDArray[np.float64]
    dom_efficiency: NDArray[np.float64]
    truth: Truth | None
    detector: str

    @property
    def n_pulses(self) -> int:
        return int(self.time.shape[0])

    @property
    def n_doms(self) -> int:
        """Number of distinct hit DOMs."""
        return int(np.unique(np.stack([self.string, self.om], axis=1), axis=0).shape[0])

    def to_dict(self, *, include_geometry: bool = True) -> dict[str, Any]:
        """The event as a ``pulse-event/1`` dict (JSON-serialisable).

        With ``include_geometry`` the positions of all DOMs whose position differs from (or is
        absent from) the named detector's geometry are written under ``"geometry"``, so that parsing
        the result gives the same positions.
        """
        out: dict[str, Any] = {
            "format": FORMAT_PULSE_EVENT_1,
            "run_id": self.metadata.run_id,
            "event_id": self.metadata.event_id,
            "mjd": self.metadata.mjd,
            "event_type": self.metadata.event_type,
            "is_real_event": self.metadata.is_real_event,
            "detector": self.detector,
            "pulses": [
                [int(s), int(o), float(t), float(q)]
                for s, o, t, q in zip(
                    self.string.tolist(),
                    self.om.tolist(),
                    self.time.tolist(),
                    self.charge.tolist(),
                    strict=True,
                )
            ],
        }
        if include_geometry:
            from .geometry import load_geometry  # local import: avoid a cycle at import time

            geo = load_geometry(self.detector)
            base, known = geo.lookup(self.string, self.om)
            differs = ~known | np.any(base != self.position, axis=1)
            extra: dict[str, list[float]] = {}
            for i in np.flatnonzero(differs).tolist():
                extra[f"{int(self.string[i])}-{int(self.om[i])}"] = [
                    float(v) for v in self.position[i]
                ]
            if extra:
                out["geometry"] = extra
        if self.truth is not None:
            out["truth"] = self.truth.to_dict()
        return out


@dataclass(frozen=True)
class I3LiveEvent:
    """An IceCube realtime (i3live) event: only its metadata is readable without IceTray.

    Such an event can be scanned with the ``dummy`` and ``crash_dummy`` reconstructions only.
    """

    metadata: EventMetadata
    realtime_format_version: str
