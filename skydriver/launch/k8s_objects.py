"""Pure builders of the Kubernetes objects of a scan instance (no API calls, no cluster needed).

`make_scan_job()` returns the one `V1Job` per scan that the `k8s` launcher creates and that
`skydriver.launch.dry_run` prints. It follows the original's v2 Job (reference/skydriver-api.md §4.3)
without the EWMS init container and S3 sidecar: the pod runs two containers from the client image
(Dockerfile.client) that share an `emptyDir` at `/common-space`:

- `skyscan-server`: `python -m skymap_scanner server ...`; it writes `/common-space/startup.json`;
- `client-manager`: `python -m client_manager ...`; it waits for that file and hands it to its workers
  (k8s backend: a ConfigMap; condor backend: a transferred input file), since remote workers cannot see
  the pod's `emptyDir`.

Tokens reach the containers only as `valueFrom.secretKeyRef` (the Secret named in the settings); no
function here ever receives a secret value. Only the objects are built and serialised in tests: no
Kubernetes cluster exists on the build machines."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client import (
    ApiClient,
    V1Capabilities,
    V1Container,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1EnvVarSource,
    V1Job,
    V1JobSpec,
    V1ObjectFieldSelector,
    V1ObjectMeta,
    V1PodSecurityContext,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecretKeySelector,
    V1SecurityContext,
    V1Volume,
    V1VolumeMount,
)

from ..settings import Settings
from .base import InstanceSpec
from .k8s_settings import K8sLauncherSettings

COMMON_SPACE = "/common-space"
COMMON_SPACE_VOLUME = "common-space-volume"
STARTUP_JSON = f"{COMMON_SPACE}/startup.json"
LABEL_SCAN_ID = "skydriver/scan-id"
ANNOTATION_SCAN_ID = "skydriver/scan-id"
SERVER_CONTAINER = "skyscan-server"
CLIENT_MANAGER_CONTAINER = "client-manager"
MAX_NAME_LEN = 63  # a Job name is also the value of its pods' `job-name` label
# labels the Job controller puts on its pods (Kubernetes >= 1.27): read through the downward API so
# the client manager can make its worker Job and ConfigMap dependents of the scan Job
POD_LABEL_JOB_NAME = "batch.kubernetes.io/job-name"
POD_LABEL_JOB_UID = "batch.kubernetes.io/controller-uid"

_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _digest(value: str, n: int = 8) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:n]


def dns_name(prefix: str, value: str, max_len: int = MAX_NAME_LEN) -> str:
    """`<prefix><value>` as a DNS-1123 label of at most `max_len` characters.

    Kept as is when already valid; otherwise lower-cased, invalid runs replaced by '-', cut, and given a
    hash suffix of the original value so that two different values never share a name."""
    raw = f"{prefix}{value}"
    if (
        len(raw) <= max_len
        and _NOT_DNS.sub("", raw) == raw
        and raw[0].isalnum()
        and raw[-1].isalnum()
    ):
        return raw
    slug = _NOT_DNS.sub("-", raw.lower()).strip("-")
    suffix = _digest(value)
    head = slug[: max_len - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}" if head else f"x-{suffix}"


def label_value(value: str) -> str:
    """`value` if it is a valid label value, else a valid one derived from it (with a hash suffix)."""
    if _LABEL_VALUE.match(value):
        return value
    return dns_name("", value)


def job_name(scan_id: str) -> str:
    """Name of the scan's Job: `skyscan-<scan_id>` as the original, made DNS-safe and at most 63
    characters (hash suffix if needed). Fixed per scan, so a retried create finds its own Job."""
    return dns_name("skyscan-", scan_id)


def cpu_quantity(cores: float) -> str:
    """0.1 -> '100m', 1.0 -> '1'."""
    millis = round(cores * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def env(name: str, value: str) -> V1EnvVar:
    return V1EnvVar(name=name, value=value)


def secret_env(name: str, secret_name: str, key: str) -> V1EnvVar:
    """An env var taken from a Secret by reference (the value never appears in the object)."""
    return V1EnvVar(
        name=name,
        value_from=V1EnvVarSource(
            secret_key_ref=V1SecretKeySelector(name=secret_name, key=key, optional=False)
        ),
    )


def field_env(name: str, field_path: str) -> V1EnvVar:
    """An env var from the pod's own metadata (downward API)."""
    return V1EnvVar(
        name=name,
        value_from=V1EnvVarSource(field_ref=V1ObjectFieldSelector(field_path=field_path)),
    )


def restricted_container_security() -> V1SecurityContext:
    return V1SecurityContext(
        allow_privilege_escalation=False,
        capabilities=V1Capabilities(drop=["ALL"]),
        run_as_non_root=True,
    )


def restricted_pod_security() -> V1PodSecurityContext:
    return V1PodSecurityContext(
        run_as_non_root=True, seccomp_profile=V1SeccompProfile(type="RuntimeDefault")
    )


def resources(
    *, cpu_request: float, cpu_limit: float, memory_bytes: int, storage_bytes: int | None = None
) -> V1ResourceRequirements:
    """Memory and ephemeral storage with request = limit (no overcommit); CPU request <= limit."""
    requests = {"cpu": cpu_quantity(cpu_request), "memory": str(memory_bytes)}
    limits = {"cpu": cpu_quantity(cpu_limit), "memory": str(memory_bytes)}
    if storage_bytes is not None:
        requests["ephemeral-storage"] = str(storage_bytes)
        limits["ephemeral-storage"] = str(storage_bytes)
    return V1ResourceRequirements(requests=requests, limits=limits)


@dataclass(frozen=True)
class ScanResources:
    """The parts of a scan request that size its instance and its workers (InstanceSpec has none)."""

    docker_tag: str
    scanner_server_memory_bytes: int
    worker_memory_bytes: int = 8_000_000_000
    worker_disk_bytes: int = 1_000_000_000

    @classmethod
    def defaults(cls, cfg: K8sLauncherSettings) -> ScanResources:
        return cls(cfg.default_image_tag, cfg.scanner_memory_default_bytes)

    @classmethod
    def from_request(cls, request: Mapping[str, Any], cfg: K8sLauncherSettings) -> ScanResources:
        """From the stored scan request (`docker_tag`, `scanner_server_memory_bytes`,
        `worker_memory_bytes`, `worker_disk_bytes`); missing values take the defaults."""
        base = cls.defaults(cfg)
        return cls(
            docker_tag=str(request.get("docker_tag") or base.docker_tag),
            scanner_server_memory_bytes=int(
                request.get("scanner_server_memory_bytes") or base.scanner_server_memory_bytes
            ),
            worker_memory_bytes=int(request.get("worker_memory_bytes") or base.worker_memory_bytes),
            worker_disk_bytes=int(request.get("worker_disk_bytes") or base.worker_disk_bytes),
        )


def _merge_user_env(ours: list[V1EnvVar], user: Mapping[str, str]) -> list[V1EnvVar]:
    """Ours first, then the user's; a user variable never replaces one of ours (dropped)."""
    taken = {e.name for e in ours}
    return [*ours, *(env(k, v) for k, v in user.items() if k not in taken)]


def make_scan_job(
    spec: InstanceSpec,
    cfg: K8sLauncherSettings,
    *,
    image: str,
    skydriver_url: str,
    server_memory_bytes: int,
    worker_memory_bytes: int,
    worker_disk_bytes: int,
    broker_type: str,
    broker_address: str,
    client_manager_poll_interval_s: float,
    kill_switch_check_interval_s: float,
    scanner_env: Mapping[str, str] | None = None,
) -> V1Job:
    """The scan's Job: scanner server + client manager sharing `/common-space` (see module doc).

    `image` is `<repository>:<docker_tag>`; memory values are bytes. `scanner_env` holds extra server
    settings (e.g. SKYSCAN_PROGRESS_INTERVAL_SEC); then come the user's `spec.scanner_server_env`,
    which may not replace any variable set here."""
    name = job_name(spec.scan_id)
    scan_label = label_value(spec.scan_id)
    secret = cfg.secret_name
    common = [
        env("SKYSCAN_SKYDRIVER_ADDRESS", skydriver_url),
        env("SKYSCAN_SKYDRIVER_SCAN_ID", spec.scan_id),
        secret_env("SKYSCAN_SKYDRIVER_AUTH", secret, cfg.skydriver_auth_secret_key),
        env("SKYSCAN_BROKER_TYPE", broker_type),
        env("SKYSCAN_BROKER_ADDRESS", broker_address),
        secret_env("SKYSCAN_BROKER_AUTH", secret, cfg.broker_auth_secret_key),
        env("SKYSCAN_PIXEL_TIMEOUT_S", str(spec.max_pixel_reco_time)),
    ]
    server_env = [
        *common,
        env("SKYSCAN_KILL_SWITCH_CHECK_INTERVAL", f"{kill_switch_check_interval_s:g}"),
        *(env(k, v) for k, v in (scanner_env or {}).items()),
    ]
    manager_env = [
        *common,
        env("CLIENT_MANAGER_WORKER_IMAGE", image),
        env("CLIENT_MANAGER_WORKER_MEMORY_BYTES", str(worker_memory_bytes)),
        env("CLIENT_MANAGER_WORKER_DISK_BYTES", str(worker_disk_bytes)),
        env("CLIENT_MANAGER_WORKER_PRIORITY", str(spec.priority)),
        env("CLIENT_MANAGER_K8S_IMAGE_PULL_POLICY", cfg.image_pull_policy),
        field_env("CLIENT_MANAGER_K8S_NAMESPACE", "metadata.namespace"),
        env("CLIENT_MANAGER_K8S_SECRET_NAME", secret),
        env("CLIENT_MANAGER_K8S_BROKER_AUTH_SECRET_KEY", cfg.broker_auth_secret_key),
        field_env("CLIENT_MANAGER_K8S_OWNER_JOB_NAME", f"metadata.labels['{POD_LABEL_JOB_NAME}']"),
        field_env("CLIENT_MANAGER_K8S_OWNER_JOB_UID", f"metadata.labels['{POD_LABEL_JOB_UID}']"),
    ]
    mount = V1VolumeMount(name=COMMON_SPACE_VOLUME, mount_path=COMMON_SPACE)
    server = V1Container(
        name=SERVER_CONTAINER,
        image=image,
        image_pull_policy=cfg.image_pull_policy,
        command=[
            "python",
            "-m",
            "skymap_scanner",
            "server",
            *spec.server_args(),
            "--cache-dir",
            COMMON_SPACE,
            "--client-startup-json",
            STARTUP_JSON,
        ],
        env=_merge_user_env(server_env, spec.scanner_server_env),
        resources=resources(
            cpu_request=cfg.scanner_cpu_request,
            cpu_limit=cfg.scanner_cpu_limit,
            memory_bytes=server_memory_bytes,
            storage_bytes=cfg.scanner_ephemeral_storage_bytes,
        ),
        volume_mounts=[mount],
        security_context=restricted_container_security(),
    )
    manager = V1Container(
        name=CLIENT_MANAGER_CONTAINER,
        image=image,
        image_pull_policy=cfg.image_pull_policy,
        command=[
            "python",
            "-m",
            "client_manager",
            "--scan-id",
            spec.scan_id,
            "--backend",
            cfg.worker_backend,
            "--n-workers",
            str(spec.n_workers),
            "--client-startup-json",
            STARTUP_JSON,
            "--poll-interval",
            f"{client_manager_poll_interval_s:g}",
        ],
        env=manager_env,
        resources=resources(
            cpu_request=cfg.client_manager_cpu_request,
            cpu_limit=cfg.client_manager_cpu_limit,
            memory_bytes=cfg.client_manager_memory_bytes,
        ),
        volume_mounts=[mount],
        security_context=restricted_container_security(),
    )
    labels = {"app.kubernetes.io/instance": cfg.application_name, LABEL_SCAN_ID: scan_label}
    return V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=V1ObjectMeta(
            name=name,
            namespace=cfg.namespace,
            labels={
                **labels,
                "app.kubernetes.io/name": "skyscan",
                "app.kubernetes.io/component": "scan-instance",
                "app.kubernetes.io/managed-by": "skydriver",
            },
            annotations={
                "argocd.argoproj.io/sync-options": "Prune=false",
                # the original's exact format (its group reads "apps", not "batch")
                "argocd.argoproj.io/tracking-id": (
                    f"{cfg.application_name}:apps/Job:{cfg.namespace}/{name}"
                ),
                ANNOTATION_SCAN_ID: spec.scan_id,
            },
        ),
        spec=V1JobSpec(
            ttl_seconds_after_finished=cfg.ttl_seconds_after_finished,
            active_deadline_seconds=cfg.active_deadline_seconds,
            backoff_limit=0,
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels={**labels, "app": "scanner-instance"}),
                spec=V1PodSpec(
                    service_account_name=cfg.scan_service_account,
                    restart_policy="Never",
                    enable_service_links=False,
                    security_context=restricted_pod_security(),
                    containers=[server, manager],
                    volumes=[
                        V1Volume(name=COMMON_SPACE_VOLUME, empty_dir=V1EmptyDirVolumeSource())
                    ],
                ),
            ),
        ),
    )


def scan_job_from_settings(
    spec: InstanceSpec,
    settings: Settings,
    cfg: K8sLauncherSettings,
    scan_resources: ScanResources | None = None,
) -> V1Job:
    """`make_scan_job` with the values SkyDriver's settings provide (what the launcher creates and
    what the dry run prints). The broker token in `settings` is NOT used: pods read it from the
    Secret."""
    res = scan_resources or ScanResources.defaults(cfg)
    scanner_env: dict[str, str] = {}
    if settings.scanner_progress_interval_s is not None:
        scanner_env["SKYSCAN_PROGRESS_INTERVAL_SEC"] = f"{settings.scanner_progress_interval_s:g}"
    if settings.scanner_result_interval_s is not None:
        scanner_env["SKYSCAN_RESULT_INTERVAL_SEC"] = f"{settings.scanner_result_interval_s:g}"
    return make_scan_job(
        spec,
        cfg,
        image=f"{cfg.image_repository}:{res.docker_tag}",
        skydriver_url=settings.url,
        server_memory_bytes=res.scanner_server_memory_bytes,
        worker_memory_bytes=res.worker_memory_bytes,
        worker_disk_bytes=res.worker_disk_bytes,
        broker_type=settings.broker_type,
        broker_address=settings.broker_address,
        client_manager_poll_interval_s=settings.client_manager_poll_interval_s,
        kill_switch_check_interval_s=settings.scanner_kill_switch_check_interval_s,
        scanner_env=scanner_env,
    )


def job_exit_code(job: V1Job) -> int | None:
    """None while the Job runs (or has not started a pod), 0 once it succeeded, 1 once it failed.
    The Complete/Failed conditions decide first; then the pod counters (backoffLimit is 0)."""
    status = job.status
    if status is None:
        return None
    for cond in status.conditions or []:
        if cond.status == "True" and cond.type == "Complete":
            return 0
        if cond.status == "True" and cond.type == "Failed":
            return 1
    if status.active:
        return None
    if status.failed:
        return 1
    if status.succeeded:
        return 0
    return None


def to_dict(obj: Any) -> Any:
    """The JSON form the API server receives (camelCase keys, no None fields)."""
    return ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
