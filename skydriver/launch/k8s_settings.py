"""Settings of the `k8s` launcher (`SKYDRIVER_K8S_*`): where scan Jobs go and what they may use.

Read once in `main()` (like `skydriver.settings.Settings`) and passed to every `K8sLauncher`. Names follow the
original's `K8S_*` variables (reference/skydriver-api.md §5) with our prefix and units in the names."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class K8sLauncherSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SKYDRIVER_K8S_", extra="ignore")

    namespace: str = Field(
        "skydriver", description="namespace of the scan Jobs (the same as SkyDriver's, see k8s/)"
    )
    image_repository: str = Field(
        "skyscan-client",
        description="repository of the client image (Dockerfile.client); the tag is the scan's "
        "docker_tag, so the image is <repository>:<docker_tag>",
    )
    default_image_tag: str = Field(
        "latest", description="tag used when a scan names none (dry runs, old requests)"
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="pull policy of scan and worker containers"
    )
    scan_service_account: str = Field(
        "skyscan-instance",
        description="service account of scan pods (its Role lets the client manager create the "
        "worker Job and ConfigMap; original K8S_SKYSCAN_JOBS_SERVICE_ACCOUNT)",
    )
    application_name: str = Field(
        "skydriver",
        description="label app.kubernetes.io/instance and Argo CD tracking id of scan Jobs "
        "(original K8S_APPLICATION_NAME)",
    )
    worker_backend: Literal["k8s", "condor"] = Field(
        "k8s", description="backend the client manager in each scan Job starts workers on"
    )
    ttl_seconds_after_finished: int = Field(
        600, ge=0, description="a finished scan Job is garbage-collected after this many seconds"
    )
    active_deadline_seconds: int = Field(
        172800, gt=0, description="a scan Job running longer is killed (seconds; 2 days)"
    )
    job_backoff_limit: int = Field(
        3,
        ge=0,
        description="a scan Job whose pod failed (a crash, an eviction) runs it again this often; "
        "the scanner server resumes from its partial result",
    )
    scanner_cpu_limit: float = Field(1.0, gt=0, description="CPU limit of the scanner server")
    scanner_cpu_request: float = Field(0.10, gt=0, description="CPU request of the scanner server")
    scanner_memory_default_bytes: int = Field(
        1_024_000_000,
        gt=0,
        description="server memory (request = limit) when a scan names none (original 1024M)",
    )
    scanner_ephemeral_storage_bytes: int = Field(
        8_000_000_000, gt=0, description="ephemeral storage of the scanner server (request = limit)"
    )
    client_manager_cpu_limit: float = Field(
        0.5, gt=0, description="CPU limit of the client manager"
    )
    client_manager_cpu_request: float = Field(
        0.05, gt=0, description="CPU request of the client manager"
    )
    client_manager_memory_bytes: int = Field(
        268_435_456, gt=0, description="memory of the client manager (request = limit)"
    )
    quota_retry_delay_s: float = Field(
        300.0,
        gt=0,
        description="after a Job-quota refusal, wait this long before trying that scan again "
        "(original K8S_START_JOB_RETRY_FOR_JOB_QUOTA_DELAY); other scans are not blocked",
    )
    api_timeout_s: float = Field(
        30.0, gt=0, description="timeout of each Kubernetes API call (seconds)"
    )
    api_retries: int = Field(
        3, ge=0, description="retries of a transient API failure (429, 5xx, timeout, network)"
    )
    api_backoff_s: float = Field(
        1.0, ge=0, description="first retry delay; doubles each retry, with jitter"
    )
    api_backoff_max_s: float = Field(30.0, ge=0, description="cap of one retry delay")
    poll_min_interval_s: float = Field(
        10.0,
        ge=0,
        description="poll() reads the Job at most this often and answers from its last read "
        "in between (keeps 100s of scans from flooding the API server)",
    )

    @model_validator(mode="after")
    def _check(self) -> K8sLauncherSettings:
        if not _DNS_LABEL.match(self.namespace):
            raise ValueError(
                f"SKYDRIVER_K8S_NAMESPACE: {self.namespace!r} is not a DNS label "
                "(lower-case letters, digits and '-', at most 63)"
            )
        if self.scanner_cpu_request > self.scanner_cpu_limit:
            raise ValueError(
                "SKYDRIVER_K8S_SCANNER_CPU_REQUEST must not exceed SKYDRIVER_K8S_SCANNER_CPU_LIMIT "
                f"({self.scanner_cpu_request} > {self.scanner_cpu_limit})"
            )
        if self.client_manager_cpu_request > self.client_manager_cpu_limit:
            raise ValueError(
                "SKYDRIVER_K8S_CLIENT_MANAGER_CPU_REQUEST must not exceed "
                "SKYDRIVER_K8S_CLIENT_MANAGER_CPU_LIMIT"
            )
        return self
