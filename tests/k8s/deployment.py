"""The SkyDriver deployment of `make k8s-deploy` (k8s/overlays/one-node) as the tests in tests/k8s see it:
its REST API through the Service (the host routes the Service range to the cluster's bridge), a user
token signed by the deployment itself, RabbitMQ's management API as its administrator, and the official
`kubernetes` client with the admin kubeconfig for reading what SkyDriver created."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from .cluster import KUBECONFIG, ROOT, get, kubectl

NAMESPACE = "skydriver"
SKYDRIVER_SA = "skydriver"
SCAN_SA = "skyscan-instance"
SECRETS_ENV = ROOT / "k8s" / "overlays" / "one-node" / "secrets.env"


def require_deployment() -> None:
    """Fails (not skips) with what to run when SkyDriver is not deployed and available."""
    deployment = json.loads(
        kubectl("-n", NAMESPACE, "get", "deployment", "skydriver", "-o", "json", check=False)
        or "{}"
    )
    available = {c["type"]: c["status"] for c in deployment.get("status", {}).get("conditions", [])}
    if available.get("Available") != "True":
        pytest.fail("SkyDriver is not deployed and available: run `make k8s-deploy`", pytrace=False)


def service_url(name: str, port_name: str) -> str:
    """`http://<ClusterIP>:<port>` of a Service in SkyDriver's namespace."""
    svc = get("service", name, NAMESPACE)
    port = next(p["port"] for p in svc["spec"]["ports"] if p.get("name", port_name) == port_name)
    return f"http://{svc['spec']['clusterIP']}:{port}"


def issue_token(role: str = "user", scan_id: str | None = None) -> str:
    """A token from the running SkyDriver pod (`skydriver token issue`, its own signing key)."""
    args = ["--role", role] + (["--scan-id", scan_id] if scan_id else [])
    out = kubectl(
        "-n", NAMESPACE, "exec", "deployment/skydriver", "-c", "skydriver", "--",
        "skydriver", "token", "issue", *args,
    )  # fmt: skip
    return out.strip()


def one_node_secret(key: str) -> str:
    """A value of the one-node overlay's generated secrets.env (scripts/k8s/one-node-secrets.sh)."""
    for line in SECRETS_ENV.read_text().splitlines():
        name, _, value = line.partition("=")
        if name == key:
            return value
    raise AssertionError(f"{key} not in {SECRETS_ENV}")


def broker_admin() -> httpx.AsyncClient:
    """RabbitMQ's management API in the cluster, as the administrator SkyDriver uses."""
    return httpx.AsyncClient(
        base_url=service_url("rabbitmq", "management"),
        auth=("skydriver", one_node_secret("broker-admin-password")),
        timeout=30,
    )


def api_client() -> k8s.ApiClient:
    return k8s_config.new_client_from_config(config_file=str(KUBECONFIG))


def env_of(container: Any) -> dict[str, Any]:
    """A container's environment by name: the plain value, or the V1EnvVarSource."""
    return {e.name: e.value if e.value_from is None else e.value_from for e in container.env or []}


def can_i(
    service_account: str, verb: str, resource: str, namespace: str | None = NAMESPACE
) -> bool:
    """`kubectl auth can-i` as a ServiceAccount of SkyDriver's namespace (through impersonation); namespace
    None asks for all namespaces."""
    where = ["-n", namespace] if namespace else ["--all-namespaces"]
    out = kubectl(
        "auth", "can-i", verb, resource, *where,
        f"--as=system:serviceaccount:{NAMESPACE}:{service_account}",
        check=False,
    )  # fmt: skip
    answer = out.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i answered {answer!r}"
    return answer == "yes"
