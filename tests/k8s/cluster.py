"""Access to the one-node cluster of `make k8s-up` for the tests in tests/k8s: kubectl with the admin
kubeconfig, applying objects, waiting, and reading pod logs. Paths follow scripts/k8s/lib.sh."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("SKYDRIVER_K8S_STATE", ROOT / ".state" / "k8s"))
KUBECONFIG = STATE / "pki" / "admin.kubeconfig"
KUBECTL = STATE / "kubectl"
BRIDGE = Path("/sys/class/net/skd0")  # scripts/k8s/lib.sh: BRIDGE

# images built by scripts/k8s/images.sh (never pulled)
BUSYBOX_IMAGE = "localhost/skydriver-k8s/busybox:1.35"
CLIENT_IMAGE_REPO = "localhost/skydriver/skyscan-client"


def project_version() -> str:
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise AssertionError("no version in pyproject.toml")


class ClusterNotUp(AssertionError):
    """The cluster is not running: these tests need `make k8s-up` first."""


def kubectl(*args: str, stdin: str | None = None, timeout: float = 60, check: bool = True) -> str:
    # the API server listens on the bridge: without it, a connection would follow the default route
    if not BRIDGE.exists() or not KUBECTL.exists() or not KUBECONFIG.exists():
        raise ClusterNotUp(f"no bridge {BRIDGE.name} or no {KUBECTL}: run `make k8s-up` first")
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
        )
    return proc.stdout


def apply(obj: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def get(kind: str, name: str, namespace: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl("-n", namespace, "get", kind, name, "-o", "json"))
    return result


def wait_for(kind_name: str, condition: str, namespace: str, timeout_s: int = 120) -> None:
    kubectl(
        "-n", namespace, "wait", f"--for={condition}", kind_name, f"--timeout={timeout_s}s",
        timeout=timeout_s + 15,
    )  # fmt: skip


def pod_phase(name: str, namespace: str) -> str:
    return str(get("pod", name, namespace).get("status", {}).get("phase", ""))


def run_pod(
    name: str, namespace: str, image: str, command: list[str], timeout_s: int = 120
) -> tuple[str, str]:
    """Run a pod to completion (restartPolicy Never); its final phase and its log."""
    apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "restartPolicy": "Never",
                "enableServiceLinks": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "main",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "command": command,
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    }
                ],
            },
        }
    )
    deadline = time.monotonic() + timeout_s
    phase = ""
    while time.monotonic() < deadline:
        phase = pod_phase(name, namespace)
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(0.5)
    logs = kubectl("-n", namespace, "logs", f"pod/{name}", check=False)
    return phase, logs
