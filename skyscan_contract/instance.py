"""The scan-instance launch contract: ONE function, `build_instance()`, turns a scan (its stored request)
and a deployment (SkyDriver's settings and its launcher's) into the argv and environment of the scanner
server and of the client manager; `worker_env()` gives the environment of every worker.

Every launcher (local processes, the k8s scan Job) and every worker backend (local, k8s, HTCondor) uses these,
so adding a setting or renaming one is an edit here and in `settings`. Variable names come from the settings
classes (`settings.env_name`), and every literal value is checked by its setting's own type, so a bad value
fails here, at launch, with the variable's name — not in a crash loop of the instance.

Values SkyDriver must not see or write into an object are references: `SecretRef` (a key of a Kubernetes
Secret) and `FieldRef` (a field of the pod's own metadata). A launcher that cannot resolve references (local
processes) gets literal strings instead."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic_settings import BaseSettings

from .documents import ScanRequestDoc
from .nsides import NSidesField
from .settings import (
    CondorWorkerSettings,
    K8sWorkerSettings,
    ServerSettings,
    WorkerSettings,
    check_value,
    env_name,
    env_text,
)

SERVER_MODULE = "skymap_scanner"
CLIENT_MANAGER_MODULE = "client_manager"


@dataclass(frozen=True)
class SecretRef:
    """A value kept in a Kubernetes Secret, given to the container by reference."""

    secret: str
    key: str


@dataclass(frozen=True)
class FieldRef:
    """A field of the pod's own metadata (downward API), e.g. `metadata.namespace`."""

    path: str


EnvValue = str | SecretRef | FieldRef


@dataclass(frozen=True)
class Process:
    """One program of the instance: its argv (argv[0] is the python to run) and environment."""

    argv: tuple[str, ...]
    env: dict[str, EnvValue]

    def literal_env(self) -> dict[str, str]:
        """The environment as plain strings (local processes); a reference here is a programming error."""
        refs = [k for k, v in self.env.items() if not isinstance(v, str)]
        if refs:
            raise ValueError(f"{refs} are references; a local process needs their values")
        return {k: v for k, v in self.env.items() if isinstance(v, str)}


@dataclass(frozen=True)
class InstanceLaunch:
    server: Process
    client_manager: Process


class InstanceSpec(BaseModel):
    """What one scan asks of its instance: the scanner server's arguments and the workforce."""

    model_config = ConfigDict(frozen=True)

    scan_id: str
    reco_algo: str
    nsides: NSidesField
    real_event: bool
    predictive_scanning_threshold: float
    n_workers: int
    max_pixel_reco_time: int
    priority: int = 0
    #: the user's `scanner_server_env`, as environment strings (applied before ours: ours always win)
    scanner_server_env: dict[str, str] = {}
    docker_tag: str = ""
    scanner_server_memory_bytes: int = 0
    worker_memory_bytes: int = 0
    worker_disk_bytes: int = 0

    @classmethod
    def from_request(cls, request: ScanRequestDoc, scan_id: str | None = None) -> InstanceSpec:
        """The spec of `scan_id` (a rescan shares its origin's request) from its stored request."""
        return cls(
            scan_id=scan_id or request.scan_id,
            reco_algo=request.reco_algo,
            nsides=request.nsides,
            real_event=request.is_real_event,
            predictive_scanning_threshold=request.predictive_scanning_threshold,
            n_workers=request.n_workers,
            max_pixel_reco_time=request.max_pixel_reco_time,
            priority=request.priority,
            scanner_server_env={
                k: env_text(v) for k, v in request.scanner_server_env_from_user.items()
            },
            docker_tag=request.docker_tag,
            scanner_server_memory_bytes=request.scanner_server_memory_bytes,
            worker_memory_bytes=request.worker_memory_bytes,
            worker_disk_bytes=request.worker_disk_bytes,
        )

    def server_args(self) -> list[str]:
        """The scanner server's scan arguments (also the manifest's informational
        `scanner_server_args`)."""
        return [
            "--reco-algo",
            self.reco_algo,
            "--nsides",
            *self.nsides.argv(),
            "--real-event" if self.real_event else "--simulated-event",
            "--predictive-scanning-threshold",
            env_text(self.predictive_scanning_threshold),
        ]


# -- where the workers run ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalWorkers:
    """Worker processes beside the client manager (they inherit its environment)."""

    backend: str = "local"


@dataclass(frozen=True)
class K8sWorkers:
    """One worker Job in the scan's namespace; the broker token by Secret reference."""

    image: str
    image_pull_policy: str
    secret_name: str
    broker_auth_secret_key: str
    namespace: EnvValue = FieldRef("metadata.namespace")
    #: the scan Job as owner of the worker objects (the Job controller labels its pods with these)
    owner_job_name: EnvValue = FieldRef("metadata.labels['batch.kubernetes.io/job-name']")
    owner_job_uid: EnvValue = FieldRef("metadata.labels['batch.kubernetes.io/controller-uid']")
    backend: str = "k8s"


@dataclass(frozen=True)
class CondorWorkers:
    """HTCondor jobs submitted by the client manager (the schedd from its own HTCondor config)."""

    image: str
    backend: str = "condor"


WorkerPlacement = LocalWorkers | K8sWorkers | CondorWorkers


@dataclass(frozen=True)
class Deployment:
    """How this deployment runs a scan instance: from SkyDriver's settings and its launcher's."""

    skydriver_url: str
    skydriver_token: str | SecretRef
    broker_type: str
    broker_address: str
    broker_auth: str | SecretRef
    kill_switch_check_interval_s: float
    client_manager_poll_interval_s: float
    #: where the server writes the workers' startup data and the client manager reads it
    startup_json: str
    progress_interval_s: float | None = None
    result_interval_s: float | None = None
    #: the python that runs the programs (`python` in the images, `sys.executable` locally)
    python: str = "python"
    cache_dir: str | None = None
    workers: WorkerPlacement = field(default_factory=LocalWorkers)
    #: the operator's settings for every instance (`SKYDRIVER_INSTANCE_ENV`; checked by SkyDriver)
    operator_env: Mapping[str, str] = field(default_factory=dict)
    #: where the server writes its exit code (a supervisor without the exit status: local processes
    #: after a SkyDriver restart); a missing file after the server is gone means it was killed
    server_exit_code_file: str | None = None


def _render(settings_cls: type[BaseSettings], values: Mapping[str, Any]) -> dict[str, EnvValue]:
    """{env name: value} for settings fields; literal values checked by the field's type (None = unset)."""
    env: dict[str, EnvValue] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, SecretRef | FieldRef):
            env[env_name(settings_cls, name)] = value
            continue
        check_value(settings_cls, name, value)
        env[env_name(settings_cls, name)] = env_text(value)
    return env


def worker_env(
    *,
    broker_type: str,
    broker_address: str,
    broker_auth: str | SecretRef | None,
    pixel_timeout_s: float,
) -> dict[str, EnvValue]:
    """What every worker of a scan is given, whatever runs it (None auth: the backend passes the token
    another way, e.g. HTCondor's transferred file)."""
    return _render(
        WorkerSettings,
        {
            "broker_type": broker_type,
            "broker_address": broker_address,
            "broker_auth": broker_auth,
            "pixel_timeout_s": pixel_timeout_s,
        },
    )


def _remote_workers_env(
    spec: InstanceSpec, placement: K8sWorkers | CondorWorkers
) -> dict[str, EnvValue]:
    sizes: dict[str, Any] = {
        "worker_image": placement.image,
        "worker_memory_bytes": spec.worker_memory_bytes or None,
        "worker_disk_bytes": spec.worker_disk_bytes or None,
        "worker_priority": spec.priority,
    }
    if isinstance(placement, CondorWorkers):
        return _render(CondorWorkerSettings, sizes)
    return _render(
        K8sWorkerSettings,
        sizes
        | {
            "k8s_image_pull_policy": placement.image_pull_policy,
            "k8s_namespace": placement.namespace,
            "k8s_secret_name": placement.secret_name,
            "k8s_broker_auth_secret_key": placement.broker_auth_secret_key,
            "k8s_owner_job_name": placement.owner_job_name,
            "k8s_owner_job_uid": placement.owner_job_uid,
        },
    )


def build_instance(spec: InstanceSpec, deployment: Deployment) -> InstanceLaunch:
    """The scanner server and the client manager of one scan, as `Process`es."""
    d = deployment
    server_argv = [d.python, "-m", SERVER_MODULE, "server", *spec.server_args()]
    if d.cache_dir:
        server_argv += ["--cache-dir", d.cache_dir]
    server_argv += ["--client-startup-json", d.startup_json]
    if d.server_exit_code_file:
        server_argv += ["--exit-code-file", d.server_exit_code_file]
    # both programs run side by side with the same identity and broker (the client manager reads
    # SkyDriver's address and token under the server's names, and hands broker and timeout to workers)
    common = _render(
        ServerSettings,
        {
            "skydriver_address": d.skydriver_url,
            "skydriver_scan_id": spec.scan_id,
            "skydriver_auth": d.skydriver_token,
        },
    ) | worker_env(
        broker_type=d.broker_type,
        broker_address=d.broker_address,
        broker_auth=d.broker_auth,
        pixel_timeout_s=spec.max_pixel_reco_time,
    )
    ours = common | _render(
        ServerSettings,
        {
            "kill_switch_check_interval": d.kill_switch_check_interval_s,
            "progress_interval_sec": d.progress_interval_s,
            "result_interval_sec": d.result_interval_s,
        },
    )
    # the user's settings (checked at submit), then the operator's, then SkyDriver's own: ours win
    server_env: dict[str, EnvValue] = {**spec.scanner_server_env, **d.operator_env, **ours}

    manager_argv = [
        d.python,
        "-m",
        CLIENT_MANAGER_MODULE,
        "--scan-id",
        spec.scan_id,
        "--backend",
        d.workers.backend,
        "--n-workers",
        str(spec.n_workers),
        "--client-startup-json",
        d.startup_json,
        "--poll-interval",
        env_text(d.client_manager_poll_interval_s),
    ]
    # the user's log levels also reach the workers (local workers inherit the manager's environment)
    worker_logs = {
        name: value
        for name, value in spec.scanner_server_env.items()
        if name in (env_name(WorkerSettings, "log"), env_name(WorkerSettings, "log_third_party"))
    }
    manager_env: dict[str, EnvValue] = {**worker_logs, **d.operator_env, **common}
    if isinstance(d.workers, K8sWorkers | CondorWorkers):
        manager_env |= _remote_workers_env(spec, d.workers)
    return InstanceLaunch(
        server=Process(tuple(server_argv), server_env),
        client_manager=Process(tuple(manager_argv), manager_env),
    )
