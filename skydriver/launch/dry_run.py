"""`skydriver dry-run`: print exactly what would be created for a scan, without creating anything.

- the scan instance's Kubernetes Job: the k8s launcher's own builder (`k8s_objects.scan_job_from_settings`);
- the worker ConfigMap and Job (k8s backend) and the HTCondor submit description (condor backend): the
  client manager itself prints them (`client-manager --dry-run`), run with exactly the argv and environment
  the scan Job gives it — Secret references replaced by placeholders, pod fields by what the cluster would
  fill in — so its own settings and builders make them, and the dry run cannot drift from a real scan.

Kubernetes objects are printed as YAML of their API form; no secret value is in any of them (tokens are
Secret references or a file path)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

import yaml  # type: ignore[import-untyped, unused-ignore]

from skyscan_contract.instance import EnvValue, FieldRef, InstanceSpec, Process, SecretRef
from skyscan_contract.settings import ManagerSettings, ServerSettings

from ..broker import planned_address
from ..settings import Settings
from .k8s_objects import ScanResources, job_name, scan_instance, scan_job_from_settings, to_dict
from .k8s_settings import K8sLauncherSettings

PARTS = ("scan-job", "k8s-workers", "condor")
#: what the kubelet would put in the pod's downward-API fields that the scan Job uses
OWNER_UID_PLACEHOLDER = "<uid of the scan Job>"
#: instance settings of the caller's own environment never leak into the printed objects
INSTANCE_ENV_PREFIXES = tuple(
    str(cls.model_config.get("env_prefix", "")) for cls in (ServerSettings, ManagerSettings)
)


def _resolve(env: Mapping[str, EnvValue], fields: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in env.items():
        if isinstance(value, SecretRef):
            out[name] = f"<Secret {value.secret}/{value.key}>"
        elif isinstance(value, FieldRef):
            out[name] = fields.get(value.path, f"<{value.path}>")
        else:
            out[name] = value
    return out


def client_manager_dry_run(process: Process, fields: Mapping[str, str]) -> str:
    """Run the client manager of `process` with `--dry-run`: what its backend would create."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(INSTANCE_ENV_PREFIXES)}
    env.setdefault("CONDOR_CONFIG", "/dev/null")  # the bindings load without a pool's config
    env |= _resolve(process.env, fields)
    argv = [sys.executable, *process.argv[1:], "--dry-run"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"client-manager --dry-run failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        )
    return done.stdout.rstrip()


def render_dry_run(
    spec: InstanceSpec,
    settings: Settings,
    *,
    k8s_settings: K8sLauncherSettings | None = None,
    resources: ScanResources | None = None,
    parts: Sequence[str] = PARTS,
) -> str:
    """The objects for `spec`, as text: YAML documents (`---`) for Kubernetes, then the HTCondor
    submit description. `parts` picks among "scan-job", "k8s-workers" and "condor"."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown dry-run parts {sorted(unknown)}; choose from {list(PARTS)}")
    cfg = k8s_settings if k8s_settings is not None else K8sLauncherSettings()
    res = resources or ScanResources.of(spec, cfg)
    fields = {
        "metadata.namespace": cfg.namespace,
        "metadata.labels['batch.kubernetes.io/job-name']": job_name(spec.scan_id),
        "metadata.labels['batch.kubernetes.io/controller-uid']": OWNER_UID_PLACEHOLDER,
    }
    address = planned_address(settings, spec.scan_id)
    out: list[str] = []
    if "scan-job" in parts:
        job = scan_job_from_settings(spec, settings, cfg, res, broker_address=address)
        text: str = yaml.safe_dump(to_dict(job), sort_keys=False, default_flow_style=False)
        out += ["# Kubernetes Job of the scan instance (k8s launcher)", "---", text]
    for part, backend in (("k8s-workers", "k8s"), ("condor", "condor")):
        if part in parts:
            launch = scan_instance(
                spec, settings, cfg, res, broker_address=address, backend=backend
            )
            out.append(client_manager_dry_run(launch.client_manager, fields))
    return "\n".join(out) + "\n"
