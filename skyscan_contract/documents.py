"""The documents SkyDriver stores (one model per collection), the instance record inside a manifest, and
the scan and instance state enums.

Field names and order are the original's (reference: the REST API's manifest, scan request and result), so
that `model_dump()` is what the API answers. How a document is encoded for the database (FerretDB cannot
hold nested arrays or keys with '.': those fields travel as JSON text) is the store's business, not the
model's."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .messages import EventMetadataBody, ProgressBody, WorkforcePutBody
from .nsides import NSidesField

#: `ewms_workflow_id` of a scan whose instance has not been started yet (the original's value)
NOT_YET_REQUESTED = "not-yet-requested"


class InstanceState(StrEnum):
    """Where a scan's instance is: recorded by the backlog runner and the instance watcher."""

    STARTING = "starting"  # the launch was decided; the launcher is starting it
    START_FAILED = "start-failed"  # a start attempt failed; the backlog retries it
    RUNNING = "running"  # started; the watcher polls it
    ENDED = "ended"  # its processes (or Job) ended; `exit_code` says how
    FAILED = "failed"  # it never started (start attempts used up)


class Deactivation(StrEnum):
    """The original's `ewms_deactivated`: why a scan's workforce was stopped."""

    ABORTED = "ABORTED"
    FINISHED = "FINISHED"


class ScanPhase(StrEnum):
    """The base of a scan state (the original's v2 states, before a deactivation prefix)."""

    PRESTARTUP = "PENDING__PRESTARTUP"
    WAITING_ON_SCANNER_SERVER_STARTUP = "PENDING__WAITING_ON_SCANNER_SERVER_STARTUP"
    WAITING_ON_FIRST_PIXEL_RECO = "IN_PROGRESS__WAITING_ON_FIRST_PIXEL_RECO"
    PARTIAL_RESULT_GENERATED = "IN_PROGRESS__PARTIAL_RESULT_GENERATED"
    HAS_FINAL_RESULT = "SCAN_HAS_FINAL_RESULT"

    @property
    def suffix(self) -> str:
        """`PRESTARTUP` of `PENDING__PRESTARTUP`."""
        return self.value.split("__", 1)[-1]


def scan_state_text(phase: ScanPhase, deactivated: Deactivation | None) -> str:
    """`/status`'s `scan_state`: the phase, or `<ABORTED|FINISHED>__<suffix>` once deactivated (a final
    result always wins)."""
    if phase is ScanPhase.HAS_FINAL_RESULT or deactivated is None:
        return phase.value
    return f"{deactivated.value}__{phase.suffix}"


class _Document(BaseModel):
    # stored documents keep fields added by newer versions (and read ones older versions wrote)
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class InstanceRecord(_Document):
    """`manifest.instance`: what the launcher started for the scan, and how it ended."""

    state: InstanceState
    reason: str | None = None
    exit_code: int | None = None
    clusters: list[str] = Field(default_factory=list)
    launcher: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    #: the launcher's own few facts to find the instance again after a restart (its get_state())
    launcher_state: dict[str, Any] = Field(default_factory=dict)


class WorkerRequest(_Document):
    """A request for more workers (`actions/add-workers`); the scan's client manager honours it once."""

    id: str
    cluster: str
    n_workers: int
    at: float


class Manifest(_Document):
    """The `Manifests` document of one scan (the original's fields, plus `instance`, `workforce` and
    `worker_requests` of our launcher and client manager)."""

    scan_id: str
    timestamp: float
    is_deleted: bool = False
    scanner_server_args: str = ""
    ewms_workflow_id: str = NOT_YET_REQUESTED
    ewms_address: str | None = None
    ewms_task: str = "use 'ewms_workflow_id'"
    priority: int = 0
    classifiers: dict[str, Any] = Field(default_factory=dict)
    i3_event_id: str = ""
    event_i3live_json_dict: Any = "use 'i3_event_id'"
    event_i3live_json_dict__hash: str | None = None
    event_metadata: EventMetadataBody | None = None
    scan_metadata: dict[str, Any] | None = None
    progress: ProgressBody | None = None
    replaced_by_scan_id: str | None = None
    instance: InstanceRecord | None = None
    workforce: WorkforcePutBody | None = None
    last_updated: float = 0.0
    #: ours: who created and who deleted the scan (the token's subject)
    created_by: str | None = None
    deleted_by: str | None = None
    worker_requests: list[WorkerRequest] = Field(default_factory=list)

    #: ours, not for users: the worker requests (the client manager reads them from /workforce) and
    #: where the launcher's processes are (pids, paths)
    INTERNAL_FIELDS: ClassVar[dict[str, Any]] = {
        "worker_requests": True,
        "instance": {"launcher_state"},
    }

    @property
    def instance_state(self) -> InstanceState | None:
        return None if self.instance is None else self.instance.state

    def api_dict(self) -> dict[str, Any]:
        """The manifest as the REST API answers it."""
        return self.model_dump(mode="json", exclude=self.INTERNAL_FIELDS)


class ClusterRequest(BaseModel):
    """One entry of `request_clusters`: workers wanted on a cluster."""

    cluster: str
    n_workers: int


class ScanRequestDoc(_Document):
    """The `ScanRequests` document: the normalised `POST /scan` request, kept for rescans."""

    scan_id: str
    rescan_ids: list[str] = Field(default_factory=list)
    i3_event_id: str = ""
    docker_tag: str
    scanner_server_memory_bytes: int
    reco_algo: str
    nsides: NSidesField
    real_or_simulated_event: str
    predictive_scanning_threshold: float
    classifiers: dict[str, Any] = Field(default_factory=dict)
    request_clusters: list[ClusterRequest]
    worker_memory_bytes: int
    worker_disk_bytes: int
    max_pixel_reco_time: int
    priority: int = 0
    debug_mode: list[str] = Field(default_factory=list)
    scanner_server_env_from_user: dict[str, Any] = Field(default_factory=dict)

    @field_validator("request_clusters", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        """Also read the API's form, `[[name, n], ...]`."""
        if isinstance(value, list):
            return [
                {"cluster": v[0], "n_workers": v[1]} if isinstance(v, list | tuple) else v
                for v in value
            ]
        return value

    @property
    def is_real_event(self) -> bool:
        return self.real_or_simulated_event.startswith("real")

    @property
    def cluster_names(self) -> list[str]:
        return sorted({c.cluster for c in self.request_clusters})

    @property
    def n_workers(self) -> int:
        return sum(c.n_workers for c in self.request_clusters)

    def api_dict(self) -> dict[str, Any]:
        """The request as `GET /scan-request` answers it (clusters as `[name, n]` pairs, as posted)."""
        doc = self.model_dump(mode="json")
        doc["request_clusters"] = [[c.cluster, c.n_workers] for c in self.request_clusters]
        return doc


class ResultDoc(BaseModel):
    """The `Results` document, and `GET /scan/{id}/result`'s answer: the scanner's skyreader
    `SkyScanResult` JSON and whether it is final."""

    scan_id: str
    skyscan_result: dict[str, Any]
    is_final: bool


class BacklogEntry(_Document):
    """A scan waiting for its instance: claimed atomically by the backlog runner."""

    scan_id: str
    timestamp: float
    priority: int = 0
    #: when a runner last claimed it (0 = never); a claim older than the revive TTL is taken over
    pending_timestamp: float = 0.0
    next_attempt: int = 0
    clusters: list[str] = Field(default_factory=list)

    def api_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"clusters"})


class StoredEvent(BaseModel):
    """An `I3Events` document: an event, shared by a scan and its rescans."""

    i3_event_id: str
    event: dict[str, Any]


class ScanEventType(StrEnum):
    """What happened to a scan (the `event:` of `GET /scan/{id}/events` and of webhook deliveries)."""

    QUEUED = "queued"
    STARTED = "started"
    NSIDE_FINISHED = "nside_finished"
    PARTIAL_RESULT = "partial_result"
    FINAL_RESULT = "final_result"
    FAILED = "failed"
    DELETED = "deleted"

    @property
    def is_last(self) -> bool:
        """Nothing follows it: the stream of the scan ends."""
        return self in (ScanEventType.FINAL_RESULT, ScanEventType.FAILED, ScanEventType.DELETED)


class ScanEvent(BaseModel):
    """One event, numbered by a sequence shared by every scan (so one `Last-Event-ID` resumes any
    stream, of one scan or of all)."""

    seq: int
    scan_id: str
    type: ScanEventType
    at: float
    data: dict[str, Any] = Field(default_factory=dict)


class WebhookSubscription(_Document):
    """Where to POST a scan's events (`scan_id`), or every scan's (None)."""

    id: str
    url: str
    scan_id: str | None = None
    created_by: str
    created_at: float
    #: the HMAC key of the `X-SkyDriver-Signature` header (shown once, at registration)
    secret: str

    def api_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"secret"})


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(_Document):
    """One event for one subscription: delivered at least once, in order per subscription."""

    subscription_id: str
    seq: int
    scan_id: str
    type: ScanEventType
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    delivered_at: float | None = None
