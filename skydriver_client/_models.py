"""The client's models: the launch request, and what the service answers (manifest, status, progress).

Answers allow unknown fields (kept in `model_extra`), so a newer server does not break an older client."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from skyscan_contract.errors import InvalidEvent, InvalidRequest
from skyscan_contract.nsides import DEFAULT_NSIDES, NSideProgression

from ._types import ClustersInput, EventInput, NSidesInput

_PAIR = re.compile(r"^\s*([^:\s]+)\s*:\s*(-?\d+)\s*$")
_TIMEDELTA = re.compile(r"^(?:(-?\d+) days?, )?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


def _pairs(text: str, what: str, example: str) -> list[tuple[str, int]]:
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    out: list[tuple[str, int]] = []
    for token in tokens:
        match = _PAIR.match(token)
        if not match:
            raise ValueError(f"{what}: {token!r} is not NAME:NUMBER (example: {example!r})")
        out.append((match.group(1), int(match.group(2))))
    if not out:
        raise ValueError(f"{what}: empty (example: {example!r})")
    return out


def parse_nsides(value: NSidesInput) -> dict[str, int]:
    """`"8:0 64:12"` or `{8: 0, 64: 12}` → `{"8": 0, "64": 12}`, checked by the service's own rules
    (`ValueError` names the problem)."""
    return NSideProgression.parse(value).to_json_dict()


def parse_clusters(value: ClustersInput) -> list[tuple[str, int]]:
    """`"local:2"`, `"osg:100,local:2"`, `{"local": 2}` or `[("local", 2)]` → `[("local", 2)]`."""
    if isinstance(value, str):
        return _pairs(value, "cluster", "local:2")
    if isinstance(value, Mapping):
        return [(str(k), int(v)) for k, v in value.items()]
    return [(str(k), int(v)) for k, v in value]


def load_event(event: EventInput) -> dict[str, Any]:
    """The event as a JSON object, from a mapping, JSON text or a file path (OSError if unreadable)."""
    if isinstance(event, Mapping):
        return dict(event)
    if isinstance(event, str) and event.lstrip().startswith("{"):
        text, origin = event, "event JSON text"
    else:
        path = Path(event)
        text, origin = path.read_text(), f"event file {str(path)!r}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidEvent(f"{origin} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise InvalidEvent(f"{origin} must hold a JSON object, not {type(data).__name__}")
    return data


class ScanRequest(BaseModel):
    """What to scan and how: the body of `POST /scan`. `Client.launch()` builds one from its arguments; build
    one with `ScanRequest.build(...)` to keep it and `Client.submit()` it later. Unknown keyword arguments
    (`worker_memory_bytes="8G"`, `debug_mode=...`) are passed through for the server to validate."""

    model_config = ConfigDict(extra="allow")

    event_i3live_json: dict[str, Any] = Field(default_factory=dict)
    i3_event_id: str = ""
    reco_algo: str = Field(min_length=1)
    nsides: dict[str, int]
    request_clusters: list[tuple[str, int]]
    docker_tag: str = "latest"
    max_pixel_reco_time: int = 3600
    real_or_simulated_event: Literal["real", "simulated"]
    predictive_scanning_threshold: float = 1.0
    priority: int = 0
    classifiers: dict[str, Any] = Field(default_factory=dict)
    scanner_server_env: dict[str, Any] = Field(default_factory=dict)

    @field_validator("nsides", mode="before")
    @classmethod
    def _nsides(cls, value: Any) -> Any:
        return parse_nsides(value) if isinstance(value, str | Mapping) else value

    @field_validator("request_clusters", mode="before")
    @classmethod
    def _clusters(cls, value: Any) -> Any:
        return parse_clusters(value) if isinstance(value, str | Mapping | list | tuple) else value

    @classmethod
    def build(
        cls,
        event: EventInput | None = None,
        *,
        real_event: bool,
        i3_event_id: str = "",
        reco_algo: str,
        nsides: NSidesInput = str(DEFAULT_NSIDES),
        cluster: ClustersInput = "local:2",
        docker_tag: str = "latest",
        max_pixel_reco_time: int = 3600,
        predictive_scanning_threshold: float = 1.0,
        priority: int = 0,
        classifiers: Mapping[str, Any] | None = None,
        scanner_server_env: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> ScanRequest:
        """A request from friendly arguments; InvalidRequest names the bad one, InvalidEvent the bad event."""
        if (event is None) == (not i3_event_id):
            raise InvalidRequest(
                "give either an event or an i3_event_id (of an already stored event)"
            )
        try:
            return cls.model_validate(
                {
                    **extra,
                    "event_i3live_json": load_event(event) if event is not None else {},
                    "i3_event_id": i3_event_id,
                    "reco_algo": reco_algo,
                    "nsides": nsides,
                    "request_clusters": cluster,
                    "docker_tag": docker_tag,
                    "max_pixel_reco_time": max_pixel_reco_time,
                    "real_or_simulated_event": "real" if real_event else "simulated",
                    "predictive_scanning_threshold": predictive_scanning_threshold,
                    "priority": priority,
                    "classifiers": dict(classifiers or {}),
                    "scanner_server_env": dict(scanner_server_env or {}),
                }
            )
        except ValidationError as e:
            raise InvalidRequest(_validation_message(e)) from e

    def body(self) -> dict[str, Any]:
        """The JSON body: only one of the event and its id is sent."""
        body = self.model_dump(mode="json")
        if body["event_i3live_json"]:
            del body["i3_event_id"]
        else:
            del body["event_i3live_json"]
        return body


def _validation_message(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"])
        msg = str(e["ctx"]["error"]) if e["type"] == "value_error" and "ctx" in e else e["msg"]
        parts.append(f"{field}: {msg}" if field and not msg.startswith(f"{field}:") else msg)
    return "; ".join(parts)


class Manifest(BaseModel):
    """A scan's manifest: what the service knows about the scan. Fields a projection left out keep their
    defaults; every other field the server sends is in `model_extra`."""

    model_config = ConfigDict(extra="allow")

    scan_id: str = ""
    timestamp: float | None = None
    last_updated: float | None = None
    is_deleted: bool = False
    priority: int = 0
    classifiers: dict[str, Any] = Field(default_factory=dict)
    i3_event_id: str = ""
    event_metadata: dict[str, Any] | None = None
    scan_metadata: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None
    replaced_by_scan_id: str | None = None
    ewms_workflow_id: str | None = None


class Workforce(BaseModel):
    """The workers of a scan, as the client manager reports them."""

    model_config = ConfigDict(extra="allow")

    workflow_id: str | None = None
    statuses: dict[str, Any] = Field(default_factory=dict)
    n_running: int = 0
    top_errors: dict[str, int] = Field(default_factory=dict)


_ENDED = ("ABORTED__", "FINISHED__", "STOPPED__")


class ScanStatus(BaseModel):
    """`GET /scan/{id}/status`. `scan_state` is one of `PENDING__*`, `IN_PROGRESS__*`,
    `SCAN_HAS_FINAL_RESULT`, or `ABORTED__*`/`FINISHED__*`/`STOPPED__*` for a scan that stopped."""

    model_config = ConfigDict(extra="allow")

    scan_state: str
    is_deleted: bool = False
    ewms_deactivated: str | None = None
    scan_complete: bool = False
    scanner_server_logs: dict[str, Any] = Field(default_factory=dict)
    ewms_workforce: Workforce = Field(default_factory=Workforce)

    @property
    def has_ended(self) -> bool:
        """The scan will not change any more: it has its final result, or it stopped."""
        return (
            self.scan_complete
            or self.is_deleted
            or self.ewms_deactivated is not None
            or self.scan_state.startswith(_ENDED)
        )

    @property
    def failed(self) -> bool:
        """The scan stopped without a final result."""
        return self.has_ended and not self.scan_complete


class NSideProgress(BaseModel):
    """Pixels (and reconstructions: pixels × position variations) of one nside, done and sent so far."""

    nside: int
    pixels_done: int
    pixels_generated: int
    recos_done: int
    recos_generated: int


class ScanProgress(BaseModel):
    """A scan's progress, read from its manifest's `progress` (the scanner's last report). `started` is false
    until the scanner's first report; rate and ETA are None until the scanner can estimate them.
    `eta_range_s` is the honest one: (low, high) seconds from the rate measured over recent results, None while
    there are too few to measure; `eta_s` is the original's single figure. `recos_expected` is the scanner's
    estimate of the scan's total reconstructions, refinements included (at least `recos_generated`)."""

    scan_id: str
    scan_state: str | None = None
    started: bool = False
    finished: bool = False
    summary: str = ""
    nsides: list[NSideProgress] = Field(default_factory=list)
    pixels_done: int = 0
    pixels_generated: int = 0
    recos_done: int = 0
    recos_generated: int = 0
    elapsed_s: float | None = None
    recos_per_s: float | None = None
    eta_s: float | None = None
    eta_range_s: tuple[float, float] | None = None
    recos_expected: int = 0
    last_updated: str | None = None

    def __str__(self) -> str:
        """One line: pixels per nside, rate, ETA range (so that `on_progress=print` reads well)."""
        from ._display import progress_summary

        return f"{self.scan_state or 'scan'}: {progress_summary(self)}"

    @classmethod
    def from_manifest(cls, manifest: Manifest, scan_state: str | None = None) -> ScanProgress:
        report = manifest.progress
        if not report:
            return cls(scan_id=manifest.scan_id, scan_state=scan_state)
        tallies = _dict(report.get("tallies"))
        stats = _dict(report.get("processing_stats"))
        nsides = [
            NSideProgress(
                nside=int(nside),
                pixels_done=_count(block, "pixels", "done"),
                pixels_generated=_count(block, "pixels", "generated"),
                recos_done=_count(block, "recos", "done"),
                recos_generated=_count(block, "recos", "generated"),
            )
            for nside, block in sorted(
                _dict(tallies.get("nsides")).items(), key=lambda kv: _int_or(kv[0])
            )
            if _int_or(nside) > 0
        ]
        finished = bool(stats.get("finished"))
        elapsed = _seconds(_get(stats, "runtime", "elapsed"))
        recos_done = sum(n.recos_done for n in nsides)
        mean_reco = _seconds(_get(stats, "rate", "all recos", "wall time", "mean reco"))
        if mean_reco:
            rate: float | None = 1.0 / mean_reco
        elif elapsed and recos_done:
            rate = recos_done / elapsed
        else:
            rate = None
        eta = 0.0 if finished else _seconds(_get(stats, "predictions", "time left"))
        low = _seconds(_get(stats, "predictions", "time left range", "low"))
        high = _seconds(_get(stats, "predictions", "time left range", "high"))
        eta_range = (
            (0.0, 0.0)
            if finished
            else (low, high)
            if low is not None and high is not None
            else None
        )
        recos_generated = sum(n.recos_generated for n in nsides)
        estimates = (
            _count(_dict(tallies.get("overall")), "recos", "initial approximation total"),
            _int_or(_get(stats, "predictions", "total # of reconstructions")),
        )
        return cls(
            scan_id=manifest.scan_id,
            scan_state=scan_state,
            started=True,
            finished=finished,
            summary=str(report.get("summary", "")),
            nsides=nsides,
            pixels_done=sum(n.pixels_done for n in nsides),
            pixels_generated=sum(n.pixels_generated for n in nsides),
            recos_done=recos_done,
            recos_generated=recos_generated,
            elapsed_s=elapsed,
            recos_per_s=rate,
            eta_s=eta,
            eta_range_s=eta_range,
            recos_expected=recos_generated if finished else max(recos_generated, *estimates),
            last_updated=str(report["last_updated"]) if report.get("last_updated") else None,
        )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        value = _dict(value).get(key)
    return value


def _int_or(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _count(block: Any, kind: str, key: str) -> int:
    value = _get(block, kind, key)
    return round(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _seconds(value: Any) -> float | None:
    """Seconds in a `str(datetime.timedelta)` ("1 day, 2:03:04.5"), or None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _TIMEDELTA.match(value.strip()) if isinstance(value, str) else None
    if not match:
        return None
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
