"""What every remote worker backend (k8s, condor) needs to know about its workers; the k8s launcher sets
these in the scan Job. The broker's type and address, and the pixel timeout, are the scanner's own
`SKYSCAN_*` variables."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RemoteWorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLIENT_MANAGER_", extra="ignore", populate_by_name=True
    )

    worker_image: str = Field(min_length=1, description="image of the workers (client image)")
    worker_memory_bytes: int = Field(8_000_000_000, gt=0, description="memory per worker")
    worker_disk_bytes: int = Field(1_000_000_000, gt=0, description="disk per worker (bytes)")
    worker_priority: int = Field(0, description="the scan's priority (HTCondor job priority)")
    worker_max_runtime_s: int = Field(
        86400, gt=0, description="a worker running longer is stopped (or held, on HTCondor)"
    )
    pixel_timeout_s: float = Field(
        1800.0,
        gt=0,
        validation_alias=AliasChoices("SKYSCAN_PIXEL_TIMEOUT_S", "pixel_timeout_s"),
        description="SKYSCAN_PIXEL_TIMEOUT_S given to workers",
    )
    broker_type: str = Field(
        "rabbitmq", validation_alias=AliasChoices("SKYSCAN_BROKER_TYPE", "broker_type")
    )
    broker_address: str = Field(
        "localhost", validation_alias=AliasChoices("SKYSCAN_BROKER_ADDRESS", "broker_address")
    )
