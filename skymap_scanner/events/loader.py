"""Parse and validate events: ``pulse-event/1`` JSON and (metadata only) IceCube i3live JSON.

Validation is done by hand, vectorised with numpy, and follows ``pulse_event.schema.json``; every
rejection is an :class:`~skymap_scanner.events.errors.InvalidEvent` whose message names the field
and the first offending row.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from .errors import InvalidEvent
from .geometry import DEFAULT_DETECTOR, KNOWN_DETECTORS, Geometry, load_geometry
from .model import FORMAT_PULSE_EVENT_1, EventMetadata, I3LiveEvent, PulseEvent, Truth

__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_PULSES",
    "REAL_RUN_ID_MAX",
    "REAL_RUN_ID_MIN",
    "event_metadata",
    "is_i3live_event",
    "load_event_file",
    "mjd_from_eventtime",
    "parse_event",
]

#: Values of ``"format"`` this version understands.
ACCEPTED_FORMATS: Final[tuple[str, ...]] = (FORMAT_PULSE_EVENT_1,)
#: Upper limit on the number of pulse rows of one event.
MAX_PULSES: Final = 100_000
#: Real events need ``REAL_RUN_ID_MIN <= run_id < REAL_RUN_ID_MAX`` (skyreader refuses others).
REAL_RUN_ID_MIN: Final = 100_000
REAL_RUN_ID_MAX: Final = 1_000_000

_REQUIRED_FIELDS: Final = ("run_id", "event_id", "mjd", "is_real_event", "pulses")
_PULSE_COLUMNS: Final = ("string", "om", "time", "charge")
_GEOMETRY_KEY = re.compile(r"^([1-9][0-9]{0,8})-([1-9][0-9]{0,8})$")
_EVENTTIME = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2}(?:\.\d*)?)\s*(?:Z|UTC)?\s*$"
)
_MJD_EPOCH_ORDINAL: Final = dt.date(1858, 11, 17).toordinal()
# i3live alert-message keys -> event type (the original scanner's order)
_I3LIVE_TYPE_KEYS: Final = (
    ("hese", "HESE"),
    ("ehe", "EHE"),
    ("neutrino", "neutrino"),
    ("estres", "ESTRES"),
)
_I3LIVE_LEGACY_TYPE_KEYS: Final = (
    ("HESE_llhratio", "HESE"),
    ("Estres_p_miss", "ESTRES"),
    ("PoleEHEOphelia_ImpLF", "EHE"),
)
_CODE_SHIFT: Final = np.int64(1 << 31)

EventInput = Mapping[str, Any] | str | bytes | bytearray


# --------------------------------------------------------------------------------------------------
# small helpers


def _describe(value: Any) -> str:
    """Short description of a JSON value for messages: ``bool True``, ``str '5'``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return f"list of length {len(value)}"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _is_int_type(t: type) -> bool:
    return issubclass(t, int | np.integer) and not issubclass(t, bool | np.bool_)


def _is_number_type(t: type) -> bool:
    return _is_int_type(t) or issubclass(t, float | np.floating)


def _is_int(value: Any) -> bool:
    return _is_int_type(type(value))


def _is_number(value: Any) -> bool:
    return _is_number_type(type(value))


def _get_int(obj: Mapping[str, Any], key: str, path: str) -> int:
    value = obj[key]
    if not _is_int(value):
        raise InvalidEvent(path, f"must be an integer, got {_describe(value)}")
    if value < 0:
        raise InvalidEvent(path, f"must be >= 0, got {value}")
    return int(value)


def _get_finite(obj: Mapping[str, Any], key: str, path: str) -> float:
    value = obj[key]
    if not _is_number(value):
        raise InvalidEvent(path, f"must be a number, got {_describe(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise InvalidEvent(path, f"must be finite, got {value}") from None
    if not math.isfinite(out):
        raise InvalidEvent(path, f"must be finite, got {value}")
    return out


def _check_real_run_id(run_id: int, path: str) -> None:
    if not REAL_RUN_ID_MIN <= run_id < REAL_RUN_ID_MAX:
        raise InvalidEvent(
            path,
            f"real events need {REAL_RUN_ID_MIN} <= run_id < {REAL_RUN_ID_MAX}, got {run_id}",
        )


def _as_object(obj: EventInput) -> Mapping[str, Any]:
    if isinstance(obj, str | bytes | bytearray):
        try:
            obj = json.loads(obj)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidEvent("event", f"not valid JSON ({exc})") from None
    if not isinstance(obj, Mapping):
        raise InvalidEvent("event", f"must be a JSON object, got {_describe(obj)}")
    return obj


def is_i3live_event(obj: Mapping[str, Any]) -> bool:
    """True for an IceCube realtime (i3live) event: an object with a ``"value"`` field."""
    return "value" in obj


def mjd_from_eventtime(eventtime: str) -> float:
    """MJD (UTC) of an i3live ``eventtime`` ``"YYYY-MM-DD HH:MM:SS.ffffff"``.

    MJD = MJD(date) + seconds_of_day / 86400 (leap seconds ignored, as IceCube's astro module).

    Raises:
        ValueError: the text is not such a time.
    """
    m = _EVENTTIME.match(eventtime)
    if m is None:
        raise ValueError(f"expected 'YYYY-MM-DD HH:MM:SS.ffffff', got {eventtime!r}")
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = float(m.group(6))
    if hour > 23 or minute > 59 or second >= 61.0:
        raise ValueError(f"time of day out of range in {eventtime!r}")
    date = dt.date(year, month, day)
    return (date.toordinal() - _MJD_EPOCH_ORDINAL) + (hour * 3600 + minute * 60 + second) / 86400.0


# --------------------------------------------------------------------------------------------------
# pulse-event/1: metadata


def _check_format(obj: Mapping[str, Any]) -> None:
    accepted = ", ".join(repr(f) for f in ACCEPTED_FORMATS)
    if "format" not in obj:
        raise InvalidEvent("format", f"missing required field (accepted: {accepted})")
    fmt = obj["format"]
    if fmt not in ACCEPTED_FORMATS or not isinstance(fmt, str):
        shown = repr(fmt) if isinstance(fmt, str) else _describe(fmt)
        raise InvalidEvent("format", f"{shown} is not supported (accepted: {accepted})")


def _pulse_event_metadata(obj: Mapping[str, Any]) -> EventMetadata:
    _check_format(obj)
    for key in _REQUIRED_FIELDS:
        if key not in obj:
            raise InvalidEvent(key, "missing required field")
    run_id = _get_int(obj, "run_id", "run_id")
    event_id = _get_int(obj, "event_id", "event_id")
    mjd = _get_finite(obj, "mjd", "mjd")
    event_type = obj.get("event_type", "")
    if not isinstance(event_type, str):
        raise InvalidEvent("event_type", f"must be a string, got {_describe(event_type)}")
    is_real = obj["is_real_event"]
    if not isinstance(is_real, bool):
        raise InvalidEvent("is_real_event", f"must be true or false, got {_describe(is_real)}")
    if is_real:
        _check_real_run_id(run_id, "run_id")
    return EventMetadata(run_id, event_id, event_type, mjd, is_real)


def _detector(obj: Mapping[str, Any]) -> Geometry:
    name = obj.get("detector", DEFAULT_DETECTOR)
    if not isinstance(name, str):
        raise InvalidEvent("detector", f"must be a string, got {_describe(name)}")
    if name not in KNOWN_DETECTORS:
        known = ", ".join(repr(k) for k in KNOWN_DETECTORS)
        raise InvalidEvent("detector", f"unknown detector {name!r} (known: {known})")
    return load_geometry(name)


def _truth(obj: Mapping[str, Any]) -> Truth | None:
    raw = obj.get("truth")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidEvent("truth", f"must be an object or null, got {_describe(raw)}")
    for key in ("zenith", "azimuth", "energy_gev"):
        if key not in raw:
            raise InvalidEvent(f"truth.{key}", "missing required field")
    zenith = _get_finite(raw, "zenith", "truth.zenith")
    azimuth = _get_finite(raw, "azimuth", "truth.azimuth")
    energy = _get_finite(raw, "energy_gev", "truth.energy_gev")
    if not 0.0 <= zenith <= math.pi:
        raise InvalidEvent("truth.zenith", f"must be in [0, pi] radians, got {zenith!r}")
    if energy <= 0.0:
        raise InvalidEvent("truth.energy_gev", f"must be > 0, got {energy!r}")
    return Truth(zenith, azimuth, energy)


# --------------------------------------------------------------------------------------------------
# pulse-event/1: geometry overrides and pulses


def _geometry_overrides(
    obj: Mapping[str, Any],
) -> tuple[NDArray[np.int64], NDArray[np.float64]] | None:
    """Override DOM codes (string * 2**31 + om), sorted, and their positions; None if absent."""
    raw = obj.get("geometry")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidEvent(
            "geometry", f"must be an object {{'<string>-<om>': [x, y, z]}}, got {_describe(raw)}"
        )
    codes: list[int] = []
    positions: list[list[float]] = []
    for key, value in raw.items():
        path = f"geometry[{key!r}]"
        m = _GEOMETRY_KEY.match(key) if isinstance(key, str) else None
        if m is None:
            raise InvalidEvent(
                path, "bad key, expected '<string>-<om>' with positive integers, e.g. '87-1'"
            )
        if (
            not isinstance(value, list | tuple)
            or len(value) != 3
            or not all(_is_number(v) for v in value)
        ):
            raise InvalidEvent(
                path, f"must be a list of 3 numbers [x_m, y_m, z_m], got {_describe(value)}"
            )
        xyz = [float(v) for v in value]
        if not all(math.isfinite(v) for v in xyz):
            raise InvalidEvent(path, f"coordinates must be finite, got {value!r}")
        codes.append(int(m.group(1)) * int(_CODE_SHIFT) + int(m.group(2)))
        positions.append(xyz)
    if not codes:
        return None
    code_arr = np.asarray(codes, dtype=np.int64)
    pos_arr = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    order = np.argsort(code_arr, kind="stable")
    return code_arr[order], pos_arr[order]


def _first_index(mask: NDArray[np.bool_]) -> int:
    return int(np.argmax(mask))


def _pulse_columns(
    pulses: Any,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    if not isinstance(pulses, list | tuple):
        raise InvalidEvent(
            "pulses",
            f"must be a list of [string, om, time_ns, charge_pe] rows, got {_describe(pulses)}",
        )
    n = len(pulses)
    if n == 0:
        raise InvalidEvent("pulses", "at least one pulse is required, got 0")
    if n > MAX_PULSES:
        raise InvalidEvent("pulses", f"at most {MAX_PULSES} pulses are allowed, got {n}")

    # row structure: each row a list of 4
    row_types = set(map(type, pulses))
    lengths = set(map(len, pulses)) if row_types <= {list, tuple} else set()
    if not row_types <= {list, tuple} or lengths != {4}:
        for i, row in enumerate(pulses):
            if not isinstance(row, list | tuple) or len(row) != 4:
                raise InvalidEvent(
                    f"pulses[{i}]",
                    "must be a list of 4 numbers [string, om, time_ns, charge_pe], "
                    f"got {_describe(row)}",
                )

    columns = list(zip(*pulses, strict=True))
    # types: string and om integers, time and charge numbers (bool is not a number)
    first_bad: tuple[int, int] | None = None
    for c, col in enumerate(columns):
        check_type = _is_int_type if c < 2 else _is_number_type
        if all(check_type(t) for t in set(map(type, col))):
            continue
        check = _is_int if c < 2 else _is_number
        i = next(i for i, v in enumerate(col) if not check(v))
        if first_bad is None or i < first_bad[0]:
            first_bad = (i, c)
    if first_bad is not None:
        i, c = first_bad
        kind = "an integer" if c < 2 else "a number"
        raise InvalidEvent(
            f"pulses[{i}][{c}]",
            f"{_PULSE_COLUMNS[c]} must be {kind}, got {_describe(columns[c][i])}",
        )

    out: list[NDArray[Any]] = []
    for c, col in enumerate(columns):
        dtype = np.int64 if c < 2 else np.float64
        try:
            out.append(np.array(col, dtype=dtype))
        except OverflowError:
            limit = 2**63 if c < 2 else 2**1024  # int64 range; float64 range (max ~1.8e308)
            i = next(i for i, v in enumerate(col) if not -limit <= v < limit)
            raise InvalidEvent(
                f"pulses[{i}][{c}]", f"{_PULSE_COLUMNS[c]} is out of range, got {_describe(col[i])}"
            ) from None
    return out[0], out[1], out[2], out[3]


def _pulse_values_problem(
    columns: Sequence[NDArray[Any]], unknown: NDArray[np.bool_]
) -> tuple[int, int | None] | None:
    """First (row, column) with a bad value; column None for an unknown DOM position."""
    string, om, time, charge = columns
    masks: list[NDArray[np.bool_]] = [
        string < 1,
        om < 1,
        ~np.isfinite(time),
        ~np.isfinite(charge) | ~(charge > 0),
    ]
    any_bad = masks[0] | masks[1] | masks[2] | masks[3] | unknown
    if not any_bad.any():
        return None
    i = _first_index(any_bad)
    for c, mask in enumerate(masks):
        if mask[i]:
            return i, c
    return i, None


def _parse_pulse_event(obj: Mapping[str, Any]) -> PulseEvent:
    metadata = _pulse_event_metadata(obj)
    geo = _detector(obj)
    overrides = _geometry_overrides(obj)
    truth = _truth(obj)
    string, om, time, charge = _pulse_columns(obj["pulses"])

    # positions: the detector's table, then the event's own "geometry" on top
    idx = geo.index(string, om)
    known = idx >= 0
    position = np.full((string.shape[0], 3), np.nan, dtype=np.float64)
    position[known] = geo.position[idx[known]]
    efficiency = np.ones(string.shape[0], dtype=np.float64)
    efficiency[known] = geo.efficiency[idx[known]]
    if overrides is not None:
        ocodes, opos = overrides
        codable = (string >= 1) & (string < _CODE_SHIFT) & (om >= 1) & (om < _CODE_SHIFT)
        codes = np.where(codable, string * _CODE_SHIFT + om, -1)
        j = np.clip(np.searchsorted(ocodes, codes), 0, ocodes.shape[0] - 1)
        hit = codable & (ocodes[j] == codes)
        position[hit] = opos[j[hit]]
        known = known | hit

    problem = _pulse_values_problem((string, om, time, charge), ~known)
    if problem is not None:
        i, c = problem
        pulses = obj["pulses"]
        if c is None:
            raise InvalidEvent(
                f"pulses[{i}]",
                f"no position known for DOM {string[i]}-{om[i]} (string 1-{geo.max_string}, "
                f"om 1-{geo.max_om}; add it under 'geometry')",
            )
        value = pulses[i][c]
        if c < 2:
            problem_text = f"{_PULSE_COLUMNS[c]} must be >= 1, got {value}"
        elif not math.isfinite(float(value)):
            problem_text = f"{_PULSE_COLUMNS[c]} must be finite, got {value}"
        else:
            problem_text = f"{_PULSE_COLUMNS[c]} must be > 0, got {value}"
        raise InvalidEvent(f"pulses[{i}][{c}]", problem_text)

    for a in (string, om, time, charge, position, efficiency):
        a.setflags(write=False)
    return PulseEvent(
        metadata=metadata,
        string=string,
        om=om,
        time=time,
        charge=charge,
        position=position,
        dom_efficiency=efficiency,
        truth=truth,
        detector=geo.name,
    )


# --------------------------------------------------------------------------------------------------
# i3live


def _i3live_type(data: Mapping[str, Any]) -> str:
    for key, name in _I3LIVE_TYPE_KEYS:
        if key in data:
            return name
    for key, name in _I3LIVE_LEGACY_TYPE_KEYS:
        if key in data:
            return name
    return ""


def _i3live_parse(
    obj: Mapping[str, Any], provided: Mapping[str, Any] | None
) -> tuple[EventMetadata, str]:
    value = obj["value"]
    if not isinstance(value, Mapping):
        raise InvalidEvent("value", f"must be an object, got {_describe(value)}")
    version = value.get("version", "")
    if not isinstance(version, str):
        raise InvalidEvent("value.version", f"must be a string, got {_describe(version)}")
    data = value.get("data")
    provided = dict(provided or {})
    unknown_keys = set(provided) - {"run_id", "event_id", "mjd", "event_type", "is_real_event"}
    if unknown_keys:
        raise ValueError(f"i3live_metadata: unknown keys {sorted(unknown_keys)}")

    fields: dict[str, Any] = {}
    if isinstance(data, Mapping):
        for key in ("run_id", "event_id"):
            if key in data:
                fields[key] = _get_int(data, key, f"value.data.{key}")
        if "eventtime" in data:
            eventtime = data["eventtime"]
            if not isinstance(eventtime, str):
                raise InvalidEvent(
                    "value.data.eventtime", f"must be a string, got {_describe(eventtime)}"
                )
            try:
                fields["mjd"] = mjd_from_eventtime(eventtime)
            except ValueError as exc:
                raise InvalidEvent("value.data.eventtime", str(exc)) from None
        fields["event_type"] = _i3live_type(data)
    elif data is not None and not isinstance(data, list):
        raise InvalidEvent(
            "value.data", f"must be an object or a list of frames, got {_describe(data)}"
        )

    for key in ("run_id", "event_id"):
        if key in provided:
            fields[key] = _get_int(provided, key, f"i3live_metadata.{key}")
    if "mjd" in provided:
        fields["mjd"] = _get_finite(provided, "mjd", "i3live_metadata.mjd")
    if "event_type" in provided:
        if not isinstance(provided["event_type"], str):
            raise InvalidEvent(
                "i3live_metadata.event_type",
                f"must be a string, got {_describe(provided['event_type'])}",
            )
        fields["event_type"] = provided["event_type"]
    is_real = provided.get("is_real_event", True)
    if not isinstance(is_real, bool):
        raise InvalidEvent(
            "i3live_metadata.is_real_event", f"must be true or false, got {_describe(is_real)}"
        )

    missing = [k for k in ("run_id", "event_id", "mjd") if k not in fields]
    if missing:
        if isinstance(data, Mapping):
            where = "value.data." + ("eventtime" if missing[0] == "mjd" else missing[0])
            raise InvalidEvent(
                where,
                "missing required field: the i3live event's metadata could not be read "
                f"(missing {', '.join(missing)})",
            )
        raise InvalidEvent(
            "value.data",
            "the i3live event's metadata could not be read: this (old, HESE-style) event has no "
            "alert fields, its run, event and time are only inside IceTray frames, which cannot be "
            "decoded here; provide run_id, event_id and mjd, or convert the event to "
            f"{FORMAT_PULSE_EVENT_1!r}",
        )
    if is_real:
        _check_real_run_id(fields["run_id"], "run_id")
    metadata = EventMetadata(
        run_id=fields["run_id"],
        event_id=fields["event_id"],
        event_type=fields.get("event_type", ""),
        mjd=fields["mjd"],
        is_real_event=is_real,
    )
    return metadata, version


# --------------------------------------------------------------------------------------------------
# public API


def parse_event(
    obj: EventInput, *, i3live_metadata: Mapping[str, Any] | None = None
) -> PulseEvent | I3LiveEvent:
    """Validate an event and return it.

    Args:
        obj: the event as a dict, or its JSON text (str or bytes).  An object with a ``"value"``
            field is an i3live event; anything else must be ``pulse-event/1``.
        i3live_metadata: for i3live events only: values for ``run_id``, ``event_id``, ``mjd``,
            ``event_type``, ``is_real_event`` that supply (or override) what the alert fields give;
            needed for old HESE-style events whose ``value.data`` is a bare frame list.  i3live
            events are real events unless ``is_real_event`` is given here.

    Raises:
        InvalidEvent: the event is not valid; the message names the field and first offending row.
    """
    event = _as_object(obj)
    if is_i3live_event(event):
        metadata, version = _i3live_parse(event, i3live_metadata)
        return I3LiveEvent(metadata=metadata, realtime_format_version=version)
    return _parse_pulse_event(event)


def event_metadata(
    obj: EventInput | PulseEvent | I3LiveEvent,
    *,
    i3live_metadata: Mapping[str, Any] | None = None,
) -> EventMetadata:
    """The metadata of an event of either kind, without validating its pulses (cheap).

    Raises:
        InvalidEvent: the metadata fields are missing or invalid.
    """
    if isinstance(obj, PulseEvent | I3LiveEvent):
        return obj.metadata
    event = _as_object(obj)
    if is_i3live_event(event):
        return _i3live_parse(event, i3live_metadata)[0]
    return _pulse_event_metadata(event)


def load_event_file(
    path: str | PathLike[str], *, i3live_metadata: Mapping[str, Any] | None = None
) -> PulseEvent | I3LiveEvent:
    """Read a JSON event file (``pulse-event/1`` or i3live) and :func:`parse_event` it."""
    data = Path(path).read_bytes()
    return parse_event(data, i3live_metadata=i3live_metadata)


def check_event_for_reco(obj: EventInput, reco_algo: str, *, needs_pulses: bool) -> EventMetadata:
    """The event's metadata, once the event is known to be readable for the reconstruction: a physics
    reconstruction (`needs_pulses`) needs a valid ``pulse-event/1`` event; the dummies also take an
    i3live event, of which they read only the metadata. A ``pulse-event/1`` event is validated whole for every
    reconstruction, so that a dummy scan refuses what a physics scan would. SkyDriver checks this at submit, the scanner server again at start (one message for both).

    Raises:
        InvalidEvent: the event cannot be read for `reco_algo`.
    """
    event = _as_object(obj)
    if not needs_pulses and is_i3live_event(event):
        return event_metadata(event)
    parsed = parse_event(
        event
    )  # a pulse event is checked whole whatever the reco: no surprises later
    if isinstance(parsed, I3LiveEvent):
        raise InvalidEvent(
            "event",
            f"reco_algo {reco_algo!r} needs a pulse-event/1 event: an i3live event's pulses are "
            "IceTray binaries that cannot be read here; use dummy/crash_dummy or send a pulse-event/1 "
            "event (see the event format in the README)",
        )
    return parsed.metadata
