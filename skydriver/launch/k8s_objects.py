"""Pure builder of the Kubernetes Job of a scan instance (no API calls, no cluster needed).

`make_scan_job()` returns the one `V1Job` per scan that the `k8s` launcher creates and that
`skydriver.launch.dry_run` prints. It follows the original's v2 Job (without the EWMS init container and
S3 sidecar): the pod runs two containers from the client image (Dockerfile.client) that share an
`emptyDir` at `/common-space`:

- `skyscan-server`: the scanner server; it writes `/common-space/startup.json`;
- `client-manager`: it waits for that file and hands it to its workers (k8s backend: a ConfigMap; condor
  backend: a transferred input file), since remote workers cannot see the pod's `emptyDir`.

What the containers run (argv and environment) comes from `skyscan_contract.instance.build_instance`; this
module only wraps it into a Job. Tokens reach the containers only as `valueFrom.secretKeyRef`; no function
here ever receives a secret value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes.client import (
    ApiClient,
    V1ConfigMapProjection,
    V1Container,
    V1DownwardAPIProjection,
    V1DownwardAPIVolumeFile,
    V1EmptyDirVolumeSource,
    V1Job,
    V1JobSpec,
    V1KeyToPath,
    V1ObjectFieldSelector,
    V1ObjectMeta,
    V1OwnerReference,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ProjectedVolumeSource,
    V1Secret,
    V1ServiceAccountTokenProjection,
    V1Volume,
    V1VolumeMount,
    V1VolumeProjection,
)

from skyscan_contract.instance import (
    CondorWorkers,
    InstanceLaunch,
    InstanceSpec,
    K8sWorkers,
    SecretRef,
    WorkerPlacement,
    build_instance,
)
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

from ..settings import Settings
from .base import deployment
from .k8s_settings import K8sLauncherSettings

#: keys of the scan's own Secret
SECRET_TOKEN_KEY = "skydriver-auth"
SECRET_BROKER_KEY = "broker-auth"
#: where Kubernetes clients look for the pod's service-account token (mounted in the client manager only)
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SERVICE_ACCOUNT_VOLUME = "client-manager-api-access"
SERVICE_ACCOUNT_TOKEN_S = 3607  # what the kubelet refreshes, as for an automounted token
COMMON_SPACE = "/common-space"
COMMON_SPACE_VOLUME = "common-space-volume"
STARTUP_JSON = f"{COMMON_SPACE}/startup.json"
SERVER_CONTAINER = "skyscan-server"
CLIENT_MANAGER_CONTAINER = "client-manager"


def job_name(scan_id: str) -> str:
    """Name of the scan's Job: `skyscan-<scan_id>` as the original, made DNS-safe and at most 63
    characters (hash suffix if needed). Fixed per scan, so a retried create finds its own Job."""
    return dns_name("skyscan-", scan_id)


def secret_name(scan_id: str) -> str:
    """The scan's own Secret (same name as its Job: they live and die together)."""
    return job_name(scan_id)


def make_scan_secret(
    scan_id: str, namespace: str, *, skydriver_token: str, broker_password: str, job_uid: str
) -> V1Secret:
    """The scan's SkyDriver token and broker password, owned by the scan's Job (garbage-collected with
    it)."""
    return V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=V1ObjectMeta(
            name=secret_name(scan_id),
            namespace=namespace,
            labels={
                LABEL_SCAN_ID: label_value(scan_id),
                "app.kubernetes.io/managed-by": "skydriver",
            },
            annotations={ANNOTATION_SCAN_ID: scan_id},
            owner_references=[
                V1OwnerReference(
                    api_version="batch/v1", kind="Job", name=job_name(scan_id), uid=job_uid
                )
            ],
        ),
        type="Opaque",
        string_data={SECRET_TOKEN_KEY: skydriver_token, SECRET_BROKER_KEY: broker_password},
    )


def _api_access_volume() -> V1Volume:
    """The service-account token, CA and namespace a Kubernetes client reads: what the kubelet would
    mount in every container, here mounted in the client manager's only."""
    return V1Volume(
        name=SERVICE_ACCOUNT_VOLUME,
        projected=V1ProjectedVolumeSource(
            sources=[
                V1VolumeProjection(
                    service_account_token=V1ServiceAccountTokenProjection(
                        path="token", expiration_seconds=SERVICE_ACCOUNT_TOKEN_S
                    )
                ),
                V1VolumeProjection(
                    config_map=V1ConfigMapProjection(
                        name="kube-root-ca.crt", items=[V1KeyToPath(key="ca.crt", path="ca.crt")]
                    )
                ),
                V1VolumeProjection(
                    downward_api=V1DownwardAPIProjection(
                        items=[
                            V1DownwardAPIVolumeFile(
                                path="namespace",
                                field_ref=V1ObjectFieldSelector(field_path="metadata.namespace"),
                            )
                        ]
                    )
                ),
            ]
        ),
    )


@dataclass(frozen=True)
class ScanResources:
    """The image tag and sizes of a scan's instance and workers: the request's, or the settings'
    defaults where the request has none (0 or empty)."""

    docker_tag: str
    scanner_server_memory_bytes: int
    worker_memory_bytes: int = 8_000_000_000
    worker_disk_bytes: int = 1_000_000_000

    @classmethod
    def defaults(cls, cfg: K8sLauncherSettings) -> ScanResources:
        return cls(cfg.default_image_tag, cfg.scanner_memory_default_bytes)

    @classmethod
    def of(cls, spec: InstanceSpec, cfg: K8sLauncherSettings) -> ScanResources:
        base = cls.defaults(cfg)
        return cls(
            docker_tag=spec.docker_tag or base.docker_tag,
            scanner_server_memory_bytes=spec.scanner_server_memory_bytes
            or base.scanner_server_memory_bytes,
            worker_memory_bytes=spec.worker_memory_bytes or base.worker_memory_bytes,
            worker_disk_bytes=spec.worker_disk_bytes or base.worker_disk_bytes,
        )


def worker_placement(
    cfg: K8sLauncherSettings, image: str, scan_id: str, backend: str | None = None
) -> WorkerPlacement:
    """Where the scan's client manager starts its workers (`cfg.worker_backend` unless `backend`); k8s
    workers read the broker password from the scan's own Secret."""
    if (backend or cfg.worker_backend) == "condor":
        return CondorWorkers(image=image)
    return K8sWorkers(
        image=image,
        image_pull_policy=cfg.image_pull_policy,
        secret_name=secret_name(scan_id),
        broker_auth_secret_key=SECRET_BROKER_KEY,
    )


def scan_instance(
    spec: InstanceSpec,
    settings: Settings,
    cfg: K8sLauncherSettings,
    res: ScanResources,
    *,
    broker_address: str,
    backend: str | None = None,
) -> InstanceLaunch:
    """The instance's two programs as the scan Job runs them (credentials by reference to the scan's
    own Secret)."""
    image = f"{cfg.image_repository}:{res.docker_tag}"
    sized = spec.model_copy(
        update={
            "docker_tag": res.docker_tag,
            "worker_memory_bytes": res.worker_memory_bytes,
            "worker_disk_bytes": res.worker_disk_bytes,
        }
    )
    return build_instance(
        sized,
        deployment(
            settings,
            skydriver_token=SecretRef(secret_name(spec.scan_id), SECRET_TOKEN_KEY),
            broker_address=broker_address,
            broker_auth=SecretRef(secret_name(spec.scan_id), SECRET_BROKER_KEY),
            startup_json=STARTUP_JSON,
            cache_dir=COMMON_SPACE,
            workers=worker_placement(cfg, image, spec.scan_id, backend),
        ),
    )


def make_scan_job(
    spec: InstanceSpec, launch: InstanceLaunch, cfg: K8sLauncherSettings, res: ScanResources
) -> V1Job:
    """The scan's Job: scanner server + client manager sharing `/common-space` (see module doc)."""
    name = job_name(spec.scan_id)
    scan_label = label_value(spec.scan_id)
    image = f"{cfg.image_repository}:{res.docker_tag}"
    mount = V1VolumeMount(name=COMMON_SPACE_VOLUME, mount_path=COMMON_SPACE)
    server = V1Container(
        name=SERVER_CONTAINER,
        image=image,
        image_pull_policy=cfg.image_pull_policy,
        command=list(launch.server.argv),
        env=env_vars(launch.server.env),
        resources=resources(
            cpu_request=cfg.scanner_cpu_request,
            cpu_limit=cfg.scanner_cpu_limit,
            memory_bytes=res.scanner_server_memory_bytes,
            storage_bytes=cfg.scanner_ephemeral_storage_bytes,
        ),
        volume_mounts=[mount],
        security_context=restricted_container_security(),
    )
    manager = V1Container(
        name=CLIENT_MANAGER_CONTAINER,
        image=image,
        image_pull_policy=cfg.image_pull_policy,
        command=list(launch.client_manager.argv),
        env=env_vars(launch.client_manager.env),
        resources=resources(
            cpu_request=cfg.client_manager_cpu_request,
            cpu_limit=cfg.client_manager_cpu_limit,
            memory_bytes=cfg.client_manager_memory_bytes,
        ),
        volume_mounts=[
            mount,
            V1VolumeMount(
                name=SERVICE_ACCOUNT_VOLUME, mount_path=SERVICE_ACCOUNT_DIR, read_only=True
            ),
        ],
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
            backoff_limit=cfg.job_backoff_limit,
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels={**labels, "app": "scanner-instance"}),
                spec=V1PodSpec(
                    service_account_name=cfg.scan_service_account,
                    automount_service_account_token=False,  # mounted in the client manager only
                    restart_policy="OnFailure",
                    enable_service_links=False,
                    security_context=restricted_pod_security(),
                    containers=[server, manager],
                    volumes=[
                        V1Volume(name=COMMON_SPACE_VOLUME, empty_dir=V1EmptyDirVolumeSource()),
                        _api_access_volume(),
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
    *,
    broker_address: str,
) -> V1Job:
    """`make_scan_job` of the instance SkyDriver's settings describe (what the launcher creates and what
    the dry run prints). No secret value is used: pods read them from the scan's Secret."""
    res = scan_resources or ScanResources.of(spec, cfg)
    launch = scan_instance(spec, settings, cfg, res, broker_address=broker_address)
    return make_scan_job(spec, launch, cfg, res)


def job_exit_code(job: V1Job) -> int | None:
    """None while the Job runs (restarts of its pod included), 0 once it succeeded, 1 once it failed
    for good: only the Job's Complete/Failed conditions decide (a failed pod is replaced, up to the
    backoff limit)."""
    status = job.status
    if status is None:
        return None
    for cond in status.conditions or []:
        if cond.status == "True" and cond.type == "Complete":
            return 0
        if cond.status == "True" and cond.type == "Failed":
            return 1
    return None


def to_dict(obj: Any) -> Any:
    """The JSON form the API server receives (camelCase keys, no None fields)."""
    return ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
