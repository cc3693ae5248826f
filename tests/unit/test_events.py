"""Tests of skymap_scanner.events: pulse-event/1 validation, i3live metadata, geometry."""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skymap_scanner.events import (
    MAX_PULSES,
    REAL_RUN_ID_MIN,
    EventMetadata,
    I3LiveEvent,
    InvalidEvent,
    PulseEvent,
    event_metadata,
    load_event_file,
    load_geometry,
    load_schema,
    mjd_from_eventtime,
    parse_event,
)


def _event(**changes: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "format": "pulse-event/1",
        "run_id": 138632,
        "event_id": 31747601,
        "mjd": 60280.71416774572,
        "event_type": "neutrino",
        "is_real_event": True,
        "detector": "IceCube-86",
        "pulses": [[36, 30, 10000.0, 1.5], [36, 30, 10012.5, 0.7], [35, 31, 10100.0, 2.25]],
    }
    ev.update(changes)
    return ev


def _pulses(n: int) -> list[list[Any]]:
    return [[1 + i % 86, 1 + i % 60, float(i), 1.0] for i in range(n)]


def _reject(ev: Any, message: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(ev)
    assert str(info.value) == message


# ------------------------------------------------------------------------------------------------
# valid events


def test_valid_event() -> None:
    ev = parse_event(_event(truth={"zenith": 1.571, "azimuth": 4.877, "energy_gev": 34000.0}))
    assert isinstance(ev, PulseEvent)
    assert ev.metadata == EventMetadata(138632, 31747601, "neutrino", 60280.71416774572, True)
    assert list(ev.metadata.to_dict()) == [
        "run_id",
        "event_id",
        "event_type",
        "mjd",
        "is_real_event",
    ]
    assert str(ev.metadata) == "run00138632.evt000031747601.neutrino"
    assert ev.n_pulses == 3 and ev.n_doms == 2
    assert ev.string.dtype == np.int64 and ev.om.dtype == np.int64
    assert ev.time.dtype == np.float64 and ev.charge.dtype == np.float64
    assert ev.position.shape == (3, 3) and ev.dom_efficiency.shape == (3,)
    geo = load_geometry()
    i = int(geo.index_table[36, 30])
    np.testing.assert_array_equal(ev.position[0], geo.position[i])
    assert ev.truth is not None and ev.truth.energy_gev == 34000.0
    assert ev.detector == "IceCube-86"
    assert not ev.time.flags.writeable


def test_valid_minimal_defaults_and_json_text() -> None:
    ev = _event(is_real_event=False, run_id=5)
    del ev["event_type"], ev["detector"]
    for obj in (ev, json.dumps(ev), json.dumps(ev).encode()):
        parsed = parse_event(obj)
        assert isinstance(parsed, PulseEvent)
        assert parsed.metadata.event_type == ""
        assert parsed.detector == "IceCube-86"
        assert parsed.truth is None


def test_dom_summary_and_efficiency() -> None:
    # one pulse per DOM, including a high-QE DeepCore DOM (string 81)
    geo = load_geometry()
    hqe = np.flatnonzero(geo.efficiency > 1.0)[0]
    s, o = int(geo.string[hqe]), int(geo.om[hqe])
    ev = parse_event(_event(pulses=[[1, 1, 0.0, 3.0], [s, o, 5.0, 1.0]]))
    assert isinstance(ev, PulseEvent)
    assert ev.dom_efficiency.tolist() == [1.0, 1.35]


def test_geometry_adds_and_replaces() -> None:
    ev = parse_event(
        _event(
            pulses=[[87, 1, 0.0, 1.0], [1, 1, 3.0, 2.0]],
            geometry={"87-1": [1.0, 2.0, 3.0], "1-1": [0, 0, 0]},
        )
    )
    assert isinstance(ev, PulseEvent)
    assert ev.position.tolist() == [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]
    assert ev.dom_efficiency.tolist() == [1.0, 1.0]
    again = parse_event(ev.to_dict())
    assert isinstance(again, PulseEvent)
    np.testing.assert_array_equal(again.position, ev.position)


def test_load_event_file(tmp_path: Path) -> None:
    path = tmp_path / "ev.json"
    path.write_text(json.dumps(_event()))
    ev = load_event_file(path)
    assert isinstance(ev, PulseEvent) and ev.metadata.run_id == 138632


def test_100k_pulses() -> None:
    ev = _event(pulses=_pulses(MAX_PULSES))
    text = json.dumps(ev)
    t = time.perf_counter()
    parsed = parse_event(text)
    elapsed = time.perf_counter() - t
    assert isinstance(parsed, PulseEvent) and parsed.n_pulses == MAX_PULSES
    print(f"parse of {MAX_PULSES} pulses from JSON text: {elapsed:.3f} s")


# ------------------------------------------------------------------------------------------------
# invalid events: one test per kind, with the exact message


def test_reject_unsupported_format() -> None:
    _reject(
        _event(format="pulse-event/2"),
        "format: 'pulse-event/2' is not supported (accepted: 'pulse-event/1')",
    )


def test_reject_missing_format() -> None:
    ev = _event()
    del ev["format"]
    _reject(ev, "format: missing required field (accepted: 'pulse-event/1')")


@pytest.mark.parametrize("field", ["run_id", "event_id", "mjd", "is_real_event", "pulses"])
def test_reject_missing_required_field(field: str) -> None:
    ev = _event()
    del ev[field]
    _reject(ev, f"{field}: missing required field")


def test_reject_real_run_id_out_of_range() -> None:
    _reject(_event(run_id=5), "run_id: real events need 100000 <= run_id < 1000000, got 5")
    _reject(
        _event(run_id=1000000),
        "run_id: real events need 100000 <= run_id < 1000000, got 1000000",
    )


def test_reject_negative_ids() -> None:
    _reject(_event(event_id=-1), "event_id: must be >= 0, got -1")


def test_reject_bool_is_not_int() -> None:
    _reject(_event(run_id=True), "run_id: must be an integer, got bool True")
    _reject(
        _event(pulses=[[1, True, 0.0, 1.0]]), "pulses[0][1]: om must be an integer, got bool True"
    )
    _reject(
        _event(pulses=[[1, 1, 0.0, False]]), "pulses[0][3]: charge must be a number, got bool False"
    )


def test_reject_wrong_types() -> None:
    _reject(_event(mjd="60280"), "mjd: must be a number, got str '60280'")
    _reject(_event(is_real_event=1), "is_real_event: must be true or false, got int 1")
    _reject(_event(event_type=3), "event_type: must be a string, got int 3")
    _reject(
        _event(pulses=[[1, 1, 0.0, 1.0], [1, 2.0, 0.0, 1.0]]),
        "pulses[1][1]: om must be an integer, got float 2.0",
    )
    _reject(
        _event(pulses=[[1, 1, 0.0, 1.0], [1, 2, "5", 1.0]]),
        "pulses[1][2]: time must be a number, got str '5'",
    )
    _reject(
        _event(pulses="none"),
        "pulses: must be a list of [string, om, time_ns, charge_pe] rows, got str 'none'",
    )


def test_reject_first_offending_row_over_columns() -> None:
    pulses = _pulses(20)
    pulses[12][2] = "x"
    pulses[9][0] = 1.5
    _reject(_event(pulses=pulses), "pulses[9][0]: string must be an integer, got float 1.5")


def test_reject_bad_row_shape() -> None:
    _reject(
        _event(pulses=[[1, 1, 0.0, 1.0], [1, 1, 0.0]]),
        "pulses[1]: must be a list of 4 numbers [string, om, time_ns, charge_pe], "
        "got list of length 3",
    )


def test_reject_negative_charge() -> None:
    pulses = _pulses(20)
    pulses[17][3] = -1.0
    _reject(_event(pulses=pulses), "pulses[17][3]: charge must be > 0, got -1.0")


def test_reject_zero_charge() -> None:
    _reject(_event(pulses=[[1, 1, 0.0, 0]]), "pulses[0][3]: charge must be > 0, got 0")


def test_reject_nan_and_inf() -> None:
    _reject(_event(pulses=[[1, 1, math.nan, 1.0]]), "pulses[0][2]: time must be finite, got nan")
    _reject(_event(pulses=[[1, 1, 0.0, math.inf]]), "pulses[0][3]: charge must be finite, got inf")
    _reject(_event(mjd=math.nan), "mjd: must be finite, got nan")
    # NaN written in JSON text (Python's json accepts it) is rejected too
    text = json.dumps(_event(pulses=[[1, 1, 0.0, 1.0], [2, 2, -math.inf, 1.0]]))
    _reject(text, "pulses[1][2]: time must be finite, got -inf")


def test_reject_unknown_dom_position() -> None:
    pulses = [*_pulses(3), [87, 1, 0.0, 1.0]]
    _reject(
        _event(pulses=pulses),
        "pulses[3]: no position known for DOM 87-1 (string 1-86, om 1-60; add it under 'geometry')",
    )
    _reject(
        _event(pulses=[[5, 61, 0.0, 1.0]]),
        "pulses[0]: no position known for DOM 5-61 (string 1-86, om 1-60; add it under 'geometry')",
    )


def test_reject_string_or_om_below_one() -> None:
    _reject(_event(pulses=[[0, 1, 0.0, 1.0]]), "pulses[0][0]: string must be >= 1, got 0")


def test_reject_empty_pulses() -> None:
    _reject(_event(pulses=[]), "pulses: at least one pulse is required, got 0")


def test_reject_too_many_pulses() -> None:
    _reject(
        _event(pulses=_pulses(MAX_PULSES + 1)),
        "pulses: at most 100000 pulses are allowed, got 100001",
    )


def test_reject_bad_geometry_key() -> None:
    _reject(
        _event(geometry={"87_1": [0.0, 0.0, 0.0]}),
        "geometry['87_1']: bad key, expected '<string>-<om>' with positive integers, e.g. '87-1'",
    )


def test_reject_bad_geometry_value() -> None:
    _reject(
        _event(geometry={"87-1": [0.0, 0.0]}),
        "geometry['87-1']: must be a list of 3 numbers [x_m, y_m, z_m], got list of length 2",
    )
    _reject(
        _event(geometry={"87-1": [0.0, math.nan, 0.0]}),
        "geometry['87-1']: coordinates must be finite, got [0.0, nan, 0.0]",
    )


def test_reject_unknown_detector() -> None:
    _reject(
        _event(detector="IceCube-79"),
        "detector: unknown detector 'IceCube-79' (known: 'IceCube-86')",
    )


def test_reject_bad_truth() -> None:
    _reject(
        _event(truth={"zenith": 4.0, "azimuth": 0.0, "energy_gev": 1.0}),
        "truth.zenith: must be in [0, pi] radians, got 4.0",
    )
    _reject(
        _event(truth={"zenith": 1.0, "azimuth": 0.0}), "truth.energy_gev: missing required field"
    )


def test_reject_not_an_object_or_not_json() -> None:
    _reject([1, 2], "event: must be a JSON object, got list of length 2")
    with pytest.raises(InvalidEvent, match=r"^event: not valid JSON"):
        parse_event("{not json")


def test_invalid_event_is_value_error_and_picklable() -> None:
    import pickle

    err = InvalidEvent("pulses[3][3]", "charge must be > 0, got -1.0")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.field == "pulses[3][3]"


# ------------------------------------------------------------------------------------------------
# i3live


def _i3live_new(**data_changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "unique_id": "abc",
        "eventtime": "2023-12-02 17:08:24.093230",
        "run_id": 138632,
        "event_id": 31747601,
        "nch": 200,
        "neutrino": {"bdt_up": 0.1, "bdt_down": 0.2},
        "frames": [["G", "eJwDAAAAAAE="]],
    }
    data.update(data_changes)
    return {
        "_id": "x",
        "service": "PFOnlineWriter",
        "varname": "realtimeEventData",
        "value": {"version": "2023a", "streams": ["neutrino"], "data": data},
        "prio": 1,
    }


def test_i3live_new_format_metadata() -> None:
    ev = parse_event(_i3live_new())
    assert isinstance(ev, I3LiveEvent)
    assert ev.realtime_format_version == "2023a"
    md = ev.metadata
    assert (md.run_id, md.event_id, md.event_type, md.is_real_event) == (
        138632,
        31747601,
        "neutrino",
        True,
    )
    assert md.mjd == pytest.approx(60280.71416774572, abs=1e-10)
    assert event_metadata(_i3live_new()) == md
    assert event_metadata(json.dumps(_i3live_new())) == md
    assert event_metadata(ev) == md


@pytest.mark.parametrize(
    ("key", "expected"), [("hese", "HESE"), ("ehe", "EHE"), ("estres", "ESTRES"), (None, "")]
)
def test_i3live_event_type(key: str | None, expected: str) -> None:
    obj = _i3live_new()
    del obj["value"]["data"]["neutrino"]
    if key is not None:
        obj["value"]["data"][key] = {}
    assert event_metadata(obj).event_type == expected


def test_i3live_old_format_needs_metadata() -> None:
    obj = {"value": {"data": [["G", "eJw="], ["P", "eJw="]]}}
    with pytest.raises(InvalidEvent, match=r"^value\.data: the i3live event's metadata could not"):
        parse_event(obj)
    provided = {
        "run_id": 127907,
        "event_id": 20178442,
        "mjd": 57517.64354153215,
        "event_type": "HESE",
    }
    ev = parse_event(obj, i3live_metadata=provided)
    assert isinstance(ev, I3LiveEvent)
    assert ev.realtime_format_version == ""
    assert ev.metadata == EventMetadata(127907, 20178442, "HESE", 57517.64354153215, True)


def test_i3live_bad_fields() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(_i3live_new(eventtime="yesterday"))
    assert str(info.value).startswith("value.data.eventtime: expected 'YYYY-MM-DD HH:MM:SS.ffffff'")
    with pytest.raises(InvalidEvent) as info:
        parse_event(_i3live_new(run_id=5))
    assert str(info.value) == "run_id: real events need 100000 <= run_id < 1000000, got 5"
    obj = _i3live_new()
    del obj["value"]["data"]["event_id"]
    with pytest.raises(InvalidEvent, match=r"^value\.data\.event_id: missing required field"):
        parse_event(obj)


def test_mjd_from_eventtime_reference_values() -> None:
    # reference MJDs of the original scanner's test events (skymap-scanner.md section 6)
    assert mjd_from_eventtime("2022-05-24 07:41:32.185352") == pytest.approx(
        59723.32051140454, abs=1e-10
    )
    assert mjd_from_eventtime("2022-06-24 16:13:16.405259") == pytest.approx(
        59754.67588432013, abs=1e-10
    )
    assert mjd_from_eventtime("2023-12-02 17:08:24") == pytest.approx(60280.714166666, abs=1e-8)


def test_event_metadata_does_not_parse_pulses() -> None:
    ev = _event(pulses=[[999, 1, 0.0, -5.0]])
    assert event_metadata(ev).run_id == 138632
    with pytest.raises(InvalidEvent, match=r"^run_id: real events need"):
        event_metadata(_event(run_id=99999))


# ------------------------------------------------------------------------------------------------
# geometry and schema


def test_geometry_icecube86() -> None:
    geo = load_geometry()
    assert load_geometry("IceCube-86") is geo
    assert geo.n_doms == 5160 and int(geo.live.sum()) == 5083
    assert int((geo.efficiency == 1.35).sum()) == 399
    assert geo.position[geo.index_table[1, 1]].tolist() == [-256.14, -521.08, 496.03]
    pos, known = geo.lookup(np.array([1, 87]), np.array([1, 1]))
    assert known.tolist() == [True, False] and np.isnan(pos[1]).all()
    with pytest.raises(ValueError, match="unknown detector"):
        load_geometry("IceCube-79")


def test_schema_document() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == {
        "format",
        "run_id",
        "event_id",
        "mjd",
        "is_real_event",
        "pulses",
    }
    assert schema["properties"]["format"]["const"] == "pulse-event/1"
    assert schema["properties"]["pulses"]["maxItems"] == MAX_PULSES
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(_event())
    bad = copy.deepcopy(_event())
    bad["pulses"][0][3] = -1.0
    assert not validator.is_valid(bad)
    assert not validator.is_valid(_event(run_id=5))


# -- out of range and which bad value is named (survivors of a mutmut run, tests/mutants/MUTMUT.md) --------


@pytest.mark.parametrize(
    ("column", "value", "name"),
    [
        (0, -(2**63) - 1, "string"),
        (1, 2**63, "om"),
        (2, -(2**1024), "time"),  # was a StopIteration (a 500) before the range was asked of numpy
        (2, 2**1024 - 2**969, "time"),  # below 2**1024, yet it rounds to infinity
        (3, 2**1024, "charge"),
    ],
)
def test_reject_numbers_out_of_their_columns_range(column: int, value: int, name: str) -> None:
    pulses = _pulses(5)
    pulses[2][column] = value
    with pytest.raises(InvalidEvent) as info:
        parse_event(_event(pulses=pulses))
    assert str(info.value).startswith(f"pulses[2][{column}]: {name} is out of range, got int ")


def test_the_edges_of_the_ranges_are_not_out_of_range() -> None:
    pulses = _pulses(5)
    pulses[2][0] = -(2**63)  # the smallest int64: in range, then refused as a string number
    _reject(_event(pulses=pulses), "pulses[2][0]: string must be >= 1, got -9223372036854775808")


def test_the_first_bad_value_is_named_by_row_then_column() -> None:
    pulses = _pulses(6)
    pulses[5][0], pulses[3][2] = "x", "y"
    _reject(_event(pulses=pulses), "pulses[3][2]: time must be a number, got str 'y'")
    pulses = _pulses(6)
    pulses[3][0], pulses[3][2] = "x", "y"
    _reject(_event(pulses=pulses), "pulses[3][0]: string must be an integer, got str 'x'")


def test_the_messages_of_format_finiteness_and_row_shape() -> None:
    _reject(_event(format=5), "format: int 5 is not supported (accepted: 'pulse-event/1')")
    _reject(_event(mjd=math.inf), "mjd: must be finite, got inf")
    with pytest.raises(InvalidEvent) as info:  # an integer beyond float64
        parse_event(_event(mjd=10**400))
    assert str(info.value) == f"mjd: must be finite, got {10**400}"
    pulses: list[Any] = _pulses(3)
    pulses[1] = 5  # a row that has no length
    _reject(
        _event(pulses=pulses),
        "pulses[1]: must be a list of 4 numbers [string, om, time_ns, charge_pe], got int 5",
    )


def test_the_smallest_ids_are_accepted() -> None:
    assert parse_event(_event(event_id=0)).metadata.event_id == 0
    assert parse_event(_event(run_id=REAL_RUN_ID_MIN)).metadata.run_id == REAL_RUN_ID_MIN
