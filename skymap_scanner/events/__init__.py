"""Events: the open ``pulse-event/1`` format, i3live metadata, and detector geometry.

Public API::

    parse_event(obj) -> PulseEvent | I3LiveEvent     # dict, JSON str or bytes
    load_event_file(path) -> PulseEvent | I3LiveEvent
    event_metadata(obj) -> EventMetadata             # cheap, either kind
    check_event_for_reco(obj, algo, needs_pulses=)   # readable for that reconstruction?
    load_geometry(name="IceCube-86") -> Geometry     # cached
    InvalidEvent                                     # ValueError naming the field and first bad row
"""

from importlib import resources as _resources
from typing import Any as _Any

from .errors import InvalidEvent
from .geometry import DEFAULT_DETECTOR, KNOWN_DETECTORS, Geometry, load_geometry
from .loader import (
    ACCEPTED_FORMATS,
    MAX_PULSES,
    REAL_RUN_ID_MAX,
    REAL_RUN_ID_MIN,
    check_event_for_reco,
    event_metadata,
    is_i3live_event,
    load_event_file,
    mjd_from_eventtime,
    parse_event,
)
from .model import FORMAT_PULSE_EVENT_1, EventMetadata, I3LiveEvent, PulseEvent, Truth

__all__ = [
    "ACCEPTED_FORMATS",
    "DEFAULT_DETECTOR",
    "FORMAT_PULSE_EVENT_1",
    "KNOWN_DETECTORS",
    "MAX_PULSES",
    "REAL_RUN_ID_MAX",
    "REAL_RUN_ID_MIN",
    "SCHEMA_FILENAME",
    "EventMetadata",
    "Geometry",
    "I3LiveEvent",
    "InvalidEvent",
    "PulseEvent",
    "Truth",
    "check_event_for_reco",
    "event_metadata",
    "is_i3live_event",
    "load_event_file",
    "load_geometry",
    "load_schema",
    "mjd_from_eventtime",
    "parse_event",
]

#: File name (inside this package) of the JSON Schema (draft 2020-12) of ``pulse-event/1``.
SCHEMA_FILENAME = "pulse_event.schema.json"


def load_schema() -> dict[str, _Any]:
    """The JSON Schema document of ``pulse-event/1`` (for publishing, e.g. ``GET /schema``)."""
    import json

    text = _resources.files(__name__).joinpath(SCHEMA_FILENAME).read_text(encoding="utf-8")
    schema: dict[str, _Any] = json.loads(text)
    return schema
