"""`--dry-run`: print exactly what would be created for a scan, without creating anything.

`render_dry_run()` builds the objects with the same pure functions the launcher and the backends use:
the scan instance's Kubernetes Job (`k8s_objects.scan_job_from_settings`), the worker ConfigMap and Job
the client manager's k8s backend creates (`client_manager.backends.k8s_objects`), and the HTCondor
submit description of the condor backend (`client_manager.backends.condor_submit.make_submit`).
Kubernetes objects are printed as YAML of their API form (`ApiClient().sanitize_for_serialization`);
no secret value is in any of them (tokens are Secret references or a file path)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from client_manager.backends.condor_submit import TOKEN_FILE_NAME, make_submit
from client_manager.backends.k8s import K8sBackendSettings
from client_manager.backends.k8s_objects import (
    make_startup_configmap,
    make_worker_job,
    owner_reference,
)

from ..settings import Settings
from .base import InstanceSpec
from .k8s_objects import STARTUP_JSON, ScanResources, scan_job_from_settings, to_dict
from .k8s_settings import K8sLauncherSettings

STARTUP_PLACEHOLDER = '{"note": "startup.json, written by the scanner server at run time"}'
PARTS = ("scan-job", "k8s-workers", "condor")


def _worker_default(name: str) -> Any:
    """A default of the k8s backend's settings (the client manager's values, not read here)."""
    return K8sBackendSettings.model_fields[name].default


def _yaml(obj: Any) -> str:
    text: str = yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=False)
    return text


def render_dry_run(
    spec: InstanceSpec,
    settings: Settings,
    *,
    k8s_settings: K8sLauncherSettings | None = None,
    resources: ScanResources | None = None,
    replacements_per_worker: int = 3,
    condor_work_dir: Path | None = None,
    parts: Sequence[str] = PARTS,
) -> str:
    """The objects for `spec`, as text: YAML documents (`---`) for Kubernetes, then the HTCondor
    submit description. `parts` picks among "scan-job", "k8s-workers" and "condor"."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown dry-run parts {sorted(unknown)}; choose from {list(PARTS)}")
    cfg = k8s_settings if k8s_settings is not None else K8sLauncherSettings()
    res = resources or ScanResources.from_request(dataclasses.asdict(spec), cfg)
    image = f"{cfg.image_repository}:{res.docker_tag}"
    out: list[str] = []
    job = scan_job_from_settings(spec, settings, cfg, res)
    assert job.metadata is not None and job.metadata.name is not None
    if "scan-job" in parts:
        out += ["# Kubernetes Job of the scan instance (k8s launcher)", "---", _yaml(job)]
    if "k8s-workers" in parts:
        # the owner uid is known only once the scan Job exists
        owner = owner_reference(job.metadata.name, "<uid of the scan Job>")
        configmap = make_startup_configmap(spec.scan_id, cfg.namespace, STARTUP_PLACEHOLDER, owner)
        workers = make_worker_job(
            spec.scan_id,
            namespace=cfg.namespace,
            image=image,
            n_workers=spec.n_workers,
            memory_bytes=res.worker_memory_bytes,
            disk_bytes=res.worker_disk_bytes,
            cpu=_worker_default("worker_cpu"),
            broker_type=settings.broker_type,
            broker_address=settings.broker_address,
            secret_name=cfg.secret_name,
            broker_auth_secret_key=cfg.broker_auth_secret_key,
            pixel_timeout_s=spec.max_pixel_reco_time,
            replacements_per_worker=replacements_per_worker,
            ttl_seconds_after_finished=cfg.ttl_seconds_after_finished,
            active_deadline_seconds=_worker_default("worker_max_runtime_s"),
            image_pull_policy=cfg.image_pull_policy,
            owner=owner,
        )
        out += [
            "# ConfigMap and worker Job the client manager creates (k8s backend)",
            "---",
            _yaml(configmap),
            "---",
            _yaml(workers),
        ]
    if "condor" in parts:
        work_dir = condor_work_dir or Path(STARTUP_JSON).parent / f"condor-{spec.scan_id}"
        submit = make_submit(
            spec.scan_id,
            image=image,
            startup_json=Path(STARTUP_JSON),
            token_file=work_dir / TOKEN_FILE_NAME
            if settings.broker_auth.get_secret_value()
            else None,
            memory_bytes=res.worker_memory_bytes,
            disk_bytes=res.worker_disk_bytes,
            priority=spec.priority,
            broker_type=settings.broker_type,
            broker_address=settings.broker_address,
            pixel_timeout_s=spec.max_pixel_reco_time,
            log_dir=work_dir,
            max_retries=replacements_per_worker,
        )
        out += [
            f"# HTCondor submit description (condor backend): {spec.n_workers} procs of",
            str(submit).rstrip(),
        ]
    return "\n".join(out) + "\n"
