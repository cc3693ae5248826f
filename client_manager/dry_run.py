"""`client-manager --dry-run`: print what this client manager would create for its workers, from the same
settings (its environment) and the same builders its backend uses, without creating anything.

`skydriver dry-run` runs this program with exactly the argv and environment the scan Job gives the
client manager (secrets replaced by placeholders), so the printed worker objects cannot drift from what a
real scan creates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from skyscan_contract.settings import ManagerSettings

STARTUP_PLACEHOLDER = '{"note": "startup.json, written by the scanner server at run time"}'


def _yaml(obj: Any) -> str:
    from kubernetes.client import ApiClient

    data = ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    text: str = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return text


def render(
    backend: str, scan_id: str, n_workers: int, startup_json: Path, settings: ManagerSettings
) -> str:
    """The worker objects of `backend` as text (YAML documents for k8s, a submit description for
    condor)."""
    replacements = settings.max_replacements_per_worker
    if backend == "k8s":
        from skyscan_contract.settings import K8sWorkerSettings

        from .backends.k8s import worker_objects

        configmap, job = worker_objects(
            K8sWorkerSettings(), scan_id, STARTUP_PLACEHOLDER, n_workers, replacements
        )
        return "\n".join(
            [
                "# ConfigMap and worker Job the client manager creates (k8s backend)",
                "---",
                _yaml(configmap),
                "---",
                _yaml(job),
            ]
        )
    if backend == "condor":
        from skyscan_contract.settings import CondorWorkerSettings

        from .backends.condor import default_work_dir, submit_description

        submit = submit_description(
            CondorWorkerSettings(),
            scan_id,
            startup_json,
            default_work_dir(startup_json, scan_id),
            replacements,
        )
        return "\n".join(
            [f"# HTCondor submit description (condor backend): {n_workers} procs of", str(submit)]
        ).rstrip()
    return (
        f"# local backend: {n_workers} processes of "
        f"`python -m skymap_scanner worker --client-startup-json {startup_json}`"
    )
