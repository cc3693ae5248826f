"""Request bodies of the REST API that users send (pydantic; the OpenAPI document is generated from these).
The bodies the scan instances send (progress, result, workforce) are the contract's messages
(`skyscan_contract.messages`)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from .datasize import parse_data_size

Scalar = str | bool | int | float | None
#: keys stored as document fields: no '.', no leading '$', no NUL (MongoDB/FerretDB refuse them)
StoredKey = Annotated[str, Field(min_length=1, pattern=r"^[^.$\x00][^.\x00]*$")]
EnvName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


def _data_size(value: Any) -> int:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return parse_data_size(value)
    raise ValueError(f"invalid size: {value!r}")


DataSize = Annotated[int, BeforeValidator(_data_size)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ScanPostBody(StrictModel):
    """POST /scan."""

    docker_tag: str = Field(min_length=1)
    reco_algo: str = Field(min_length=1)
    nsides: dict[str, int]
    real_or_simulated_event: Literal["real", "real_event", "sim", "simulated", "simulated_event"]
    max_pixel_reco_time: int = Field(ge=1)
    request_clusters: (
        dict[str, Annotated[int, Field(ge=1)]] | list[tuple[str, Annotated[int, Field(ge=1)]]]
    ) = Field(validation_alias=AliasChoices("request_clusters", "cluster"))
    event_i3live_json: dict[str, Any] | str = Field(default_factory=dict)
    i3_event_id: str = ""
    predictive_scanning_threshold: float = Field(1.0, ge=0.0, le=1.0)
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)
    classifiers: dict[Annotated[StoredKey, Field(max_length=25)], Scalar] = Field(
        default_factory=dict, max_length=25
    )
    debug_mode: Literal["client-logs"] | list[Literal["client-logs"]] = Field(default_factory=list)
    scanner_server_memory_bytes: DataSize = Field(
        1024000000,
        validation_alias=AliasChoices("scanner_server_memory_bytes", "scanner_server_memory"),
    )
    worker_memory_bytes: DataSize = Field(
        8000000000, validation_alias=AliasChoices("worker_memory_bytes", "worker_memory")
    )
    worker_disk_bytes: DataSize = Field(
        1000000000, validation_alias=AliasChoices("worker_disk_bytes", "worker_disk")
    )
    scanner_server_env_from_user: dict[EnvName, Scalar] = Field(
        default_factory=dict,
        max_length=25,
        validation_alias=AliasChoices("scanner_server_env_from_user", "scanner_server_env"),
    )
    manifest_projection: Literal["*"] | list[Annotated[str, Field(min_length=1)]] = "*"
    memory: Any = None

    @field_validator("memory")
    @classmethod
    def _deprecated_memory(cls, v: Any) -> Any:
        if v:
            raise ValueError("argument 'memory' is deprecated -- use 'worker_memory_bytes'")
        return v

    @field_validator("classifiers")
    @classmethod
    def _reserved_classifiers(cls, v: dict[str, Scalar]) -> dict[str, Scalar]:
        for key in ("rescan", "origin_scan_id"):
            if key in v:
                raise ValueError(f"classifier cannot contain '{key}' sub-field")
        for key, value in v.items():
            if isinstance(value, str) and len(value) > 25:
                raise ValueError(f"classifier {key!r}: value longer than 25 characters")
        return v

    @field_validator("event_i3live_json")
    @classmethod
    def _event_json(cls, v: dict[str, Any] | str) -> dict[str, Any]:
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError as e:
                raise ValueError(f"event_i3live_json is not valid JSON: {e}") from e
            if not isinstance(v, dict):
                raise ValueError("event_i3live_json is not valid JSON: must be a JSON object")
        return v

    @model_validator(mode="after")
    def _event_xor_id(self) -> ScanPostBody:
        if bool(self.event_i3live_json) == bool(self.i3_event_id):
            raise ValueError("Must provide either 'event_i3live_json' or 'i3_event_id' (xor)")
        return self

    @property
    def clusters(self) -> list[tuple[str, int]]:
        if isinstance(self.request_clusters, dict):
            return list(self.request_clusters.items())
        return [(name, n) for name, n in self.request_clusters]

    @property
    def is_real_event(self) -> bool:
        return self.real_or_simulated_event.startswith("real")


Projection = Literal["*"] | list[Annotated[str, Field(min_length=1)]]


class DeleteBody(StrictModel):
    """DELETE /scan/{id} (query string or JSON body)."""

    delete_completed_scan: bool = False
    manifest_projection: Projection = "*"
    no_redirect: bool = False


class RescanBody(StrictModel):
    """POST /scan/{id}/actions/rescan."""

    abort_first: bool = False
    replace_scan: bool = False
    manifest_projection: Projection = "*"
    no_redirect: bool = False


class AddWorkersBody(StrictModel):
    """POST /scan/{id}/actions/add-workers."""

    n_workers: int = Field(ge=1)
    cluster_location: str = Field(min_length=1, pattern=r"\S")
    no_redirect: bool = False


class FindBody(StrictModel):
    """POST /scans/find: a MongoDB query on manifests."""

    filter: dict[str, Any]
    include_deleted: bool = False
    manifest_projection: Projection = "*"
