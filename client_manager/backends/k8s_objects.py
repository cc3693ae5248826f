"""Pure builders of a scan's worker objects on Kubernetes, and pure readers of their pods.

- ONE worker Job per scan, `completionMode: Indexed` with parallelism = completions = N: each index is a
  worker; `backoffLimitPerIndex` bounds how often one worker is replaced (Kubernetes >= 1.29), and
  `add_workers` raises parallelism and completions together (elastic Indexed Job, Kubernetes >= 1.27).
- The scanner server's `startup.json` lives in the scan pod's `emptyDir`, which workers cannot see: the
  client manager copies it into a ConfigMap (`startup.json` key, at most ~1 MB), mounted read-only in
  every worker at `/skyscan-startup/startup.json`.
- The broker token comes from the Secret by reference (`secretKeyRef`); it is never in an object.
- When the scan Job's name and uid are known (downward API), the worker Job and the ConfigMap get it as
  owner: deleting the scan Job (TTL, stop) garbage-collects them even if the client manager died.

Built and serialised in tests only: no Kubernetes cluster exists on the build machines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from kubernetes.client import (
    V1ConfigMap,
    V1ConfigMapVolumeSource,
    V1Container,
    V1Job,
    V1JobSpec,
    V1JobStatus,
    V1ObjectMeta,
    V1OwnerReference,
    V1Pod,
    V1PodSpec,
    V1PodTemplateSpec,
    V1Volume,
    V1VolumeMount,
)

from skyscan_contract.instance import SecretRef, worker_env
from skyscan_contract.k8s_objects import (
    ANNOTATION_SCAN_ID,
    LABEL_SCAN_ID,
    dns_name,
    env_vars,
    label_value,
    resources,
    restricted_container_security,
    restricted_pod_security,
)

from .base import WorkerStatus

STARTUP_KEY = "startup.json"
STARTUP_DIR = "/skyscan-startup"
STARTUP_VOLUME = "skyscan-startup"
WORKER_CONTAINER = "worker"
LABEL_WORKERS_OF = "skydriver/workers-of"
# a ConfigMap holds at most 1 MiB in total; keep room for its metadata
MAX_STARTUP_BYTES = 1_000_000

PHASE_STATUS: dict[str, WorkerStatus] = {
    "Pending": WorkerStatus.PENDING,
    "Running": WorkerStatus.RUNNING,
    "Succeeded": WorkerStatus.GONE,
    "Failed": WorkerStatus.FAILED,
    "Unknown": WorkerStatus.UNKNOWN,
}
# waiting reasons that mean a worker cannot start (reported; the pod stays Pending)
BAD_WAITING_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


def worker_job_name(scan_id: str) -> str:
    return dns_name("skyscan-workers-", scan_id)


def startup_configmap_name(scan_id: str) -> str:
    return dns_name("skyscan-startup-", scan_id)


def worker_selector(scan_id: str) -> str:
    """Label selector of the scan's worker pods."""
    return f"{LABEL_WORKERS_OF}={label_value(scan_id)}"


def owner_reference(job_name: str, job_uid: str) -> V1OwnerReference:
    """The scan Job as owner (no blockOwnerDeletion: that would need rights on jobs/finalizers)."""
    return V1OwnerReference(api_version="batch/v1", kind="Job", name=job_name, uid=job_uid)


def _metadata(
    name: str, namespace: str, scan_id: str, owner: V1OwnerReference | None
) -> V1ObjectMeta:
    return V1ObjectMeta(
        name=name,
        namespace=namespace,
        labels={
            LABEL_SCAN_ID: label_value(scan_id),
            "app.kubernetes.io/name": "skyscan",
            "app.kubernetes.io/component": "workers",
            "app.kubernetes.io/managed-by": "client-manager",
        },
        annotations={ANNOTATION_SCAN_ID: scan_id},
        owner_references=[owner] if owner is not None else None,
    )


def make_startup_configmap(
    scan_id: str, namespace: str, startup_json: str, owner: V1OwnerReference | None = None
) -> V1ConfigMap:
    """The scan's startup data for its workers. Raises ValueError if it does not fit a ConfigMap."""
    size = len(startup_json.encode())
    if size > MAX_STARTUP_BYTES:
        raise ValueError(
            f"startup.json of scan {scan_id} is {size} bytes; a ConfigMap holds at most "
            f"{MAX_STARTUP_BYTES}: use the condor backend or a smaller event"
        )
    return V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=_metadata(startup_configmap_name(scan_id), namespace, scan_id, owner),
        data={STARTUP_KEY: startup_json},
        immutable=True,
    )


def make_worker_job(
    scan_id: str,
    *,
    namespace: str,
    image: str,
    n_workers: int,
    memory_bytes: int,
    disk_bytes: int,
    cpu: float,
    broker_type: str,
    broker_address: str,
    secret_name: str,
    broker_auth_secret_key: str,
    pixel_timeout_s: float,
    replacements_per_worker: int,
    ttl_seconds_after_finished: int,
    active_deadline_seconds: int,
    image_pull_policy: str = "IfNotPresent",
    owner: V1OwnerReference | None = None,
) -> V1Job:
    """N workers `python -m skymap_scanner worker --client-startup-json <ConfigMap file>`.

    Memory and ephemeral storage are request = limit (bytes); CPU request = limit = `cpu`. Pods have
    no API token (workers only talk to the broker) and restartPolicy Never (a failed worker is a new
    pod, counted per index against `replacements_per_worker`)."""
    if n_workers < 1:
        raise ValueError(f"n_workers: {n_workers} must be at least 1")
    labels = {LABEL_SCAN_ID: label_value(scan_id), LABEL_WORKERS_OF: label_value(scan_id)}
    container = V1Container(
        name=WORKER_CONTAINER,
        image=image,
        image_pull_policy=image_pull_policy,
        command=[
            "python",
            "-m",
            "skymap_scanner",
            "worker",
            "--client-startup-json",
            f"{STARTUP_DIR}/{STARTUP_KEY}",
        ],
        env=env_vars(
            worker_env(
                broker_type=broker_type,
                broker_address=broker_address,
                broker_auth=SecretRef(secret_name, broker_auth_secret_key),
                pixel_timeout_s=pixel_timeout_s,
            )
        ),
        resources=resources(
            cpu_request=cpu, cpu_limit=cpu, memory_bytes=memory_bytes, storage_bytes=disk_bytes
        ),
        volume_mounts=[V1VolumeMount(name=STARTUP_VOLUME, mount_path=STARTUP_DIR, read_only=True)],
        security_context=restricted_container_security(),
    )
    return V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=_metadata(worker_job_name(scan_id), namespace, scan_id, owner),
        spec=V1JobSpec(
            completion_mode="Indexed",
            completions=n_workers,
            parallelism=n_workers,
            backoff_limit_per_index=replacements_per_worker,
            ttl_seconds_after_finished=ttl_seconds_after_finished,
            active_deadline_seconds=active_deadline_seconds,
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels={**labels, "app": "skyscan-worker"}),
                spec=V1PodSpec(
                    restart_policy="Never",
                    automount_service_account_token=False,
                    enable_service_links=False,
                    security_context=restricted_pod_security(),
                    containers=[container],
                    volumes=[
                        V1Volume(
                            name=STARTUP_VOLUME,
                            config_map=V1ConfigMapVolumeSource(
                                name=startup_configmap_name(scan_id)
                            ),
                        )
                    ],
                ),
            ),
        ),
    )


def scale_patch(n_workers: int) -> dict[str, Any]:
    """Merge patch that sets the worker count (parallelism and completions move together)."""
    return {"spec": {"parallelism": n_workers, "completions": n_workers}}


def pod_errors(pod: V1Pod) -> list[str]:
    """Why a worker pod failed or cannot start: eviction and similar pod reasons, container
    terminations with a non-zero exit code (e.g. 'OOMKilled (exit 137)'), and bad waiting reasons."""
    status = pod.status
    if status is None:
        return []
    errors: list[str] = []
    if status.phase == "Failed" and status.reason:
        errors.append(status.reason)
    for cs in [*(status.init_container_statuses or []), *(status.container_statuses or [])]:
        state = cs.state
        if state is None:
            continue
        if state.terminated is not None and state.terminated.exit_code != 0:
            reason = state.terminated.reason or "Error"
            errors.append(f"{reason} (exit {state.terminated.exit_code})")
        if state.waiting is not None and state.waiting.reason in BAD_WAITING_REASONS:
            errors.append(state.waiting.reason)
    return errors


def count_pods(pods: Iterable[V1Pod]) -> tuple[Counter[str], Counter[str]]:
    """(WorkerStatus counts by pod phase, error counts) of a scan's worker pods."""
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for pod in pods:
        phase = pod.status.phase if pod.status is not None else None
        statuses[PHASE_STATUS.get(phase or "", WorkerStatus.UNKNOWN)] += 1
        errors.update(pod_errors(pod))
    return statuses, errors


def count_indexes(indexes: str | None) -> int:
    """How many indexes a Job status interval list names: '1,3-5' -> 4."""
    n = 0
    for part in (indexes or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        n += int(hi) - int(lo) + 1 if hi else 1
    return n


def job_finished(job: V1Job) -> bool:
    conditions = job.status.conditions if job.status is not None else None
    return any(c.status == "True" and c.type in ("Complete", "Failed") for c in conditions or [])


def workforce_counts(
    job: V1Job | None, pods: Iterable[V1Pod], n_requested: int
) -> tuple[Counter[str], Counter[str]]:
    """(statuses, errors) of the worker Job, for `Workforce`.

    RUNNING and UNKNOWN count pods by phase. GONE is the Job's succeeded workers and FAILED its failed
    pods (replaced ones included). PENDING is every requested worker not running, unknown, done or
    given up on (failed index), so pods the Job controller has not created yet count as pending;
    it is 0 once the Job finished or is gone (`job` None)."""
    by_phase, errors = count_pods(pods)
    statuses: Counter[str] = Counter()
    running = by_phase[WorkerStatus.RUNNING]
    unknown = by_phase[WorkerStatus.UNKNOWN]
    statuses[WorkerStatus.RUNNING] = running
    statuses[WorkerStatus.UNKNOWN] = unknown
    if job is None:
        statuses[WorkerStatus.GONE] = by_phase[WorkerStatus.GONE]
        statuses[WorkerStatus.FAILED] = by_phase[WorkerStatus.FAILED]
        return +statuses, errors
    status = job.status or V1JobStatus()
    succeeded = status.succeeded or 0
    statuses[WorkerStatus.GONE] = succeeded
    statuses[WorkerStatus.FAILED] = status.failed or 0
    if not job_finished(job):
        given_up = count_indexes(status.failed_indexes)
        statuses[WorkerStatus.PENDING] = max(
            0, n_requested - running - unknown - succeeded - given_up
        )
    return +statuses, errors
