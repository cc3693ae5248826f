"""The one-node cluster of `make k8s-up` works: a Job completes and `kubectl logs` reads it, cluster DNS
resolves the API server's and a Service's names, pods reach the API server and another pod through
Services, pods have no route out of the cluster, and the client image runs the scanner.

Run by `make k8s-smoke` (pytest -m k8s tests/k8s) on a running cluster; deselected in `make test`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from .cluster import (
    BUSYBOX_IMAGE,
    CLIENT_IMAGE_REPO,
    apply,
    get,
    kubectl,
    project_version,
    run_pod,
    wait_for,
)

pytestmark = pytest.mark.k8s


def client_image() -> str:
    """skyscan-client from Dockerfile.client, built and imported by `make k8s-up`."""
    return f"{CLIENT_IMAGE_REPO}:{project_version()}"


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    name = f"k8s-smoke-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    # the default ServiceAccount is made by the controller manager shortly after the namespace
    wait_for("serviceaccount/default", "jsonpath={.metadata.name}=default", name, timeout_s=60)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_node_is_ready() -> None:
    node = get("node", "localhost", "default")
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.34.0"


def test_a_job_completes_and_kubectl_logs_reads_it(namespace: str) -> None:
    kubectl(
        "-n", namespace, "create", "job", "hello", f"--image={BUSYBOX_IMAGE}",
        "--", "sh", "-c", "echo hello from a Job; sleep 1",
    )  # fmt: skip
    wait_for("job/hello", "condition=Complete", namespace)
    assert "hello from a Job" in kubectl("-n", namespace, "logs", "job/hello")


@pytest.fixture(scope="module")
def web_service(namespace: str) -> str:
    """A busybox httpd pod behind the Service `web` (port 80 -> 8080)."""
    labels = {"app": "web"}
    apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": namespace, "labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": "httpd",
                        "image": BUSYBOX_IMAGE,
                        "imagePullPolicy": "Never",
                        "command": [
                            "sh",
                            "-c",
                            "mkdir -p /tmp/www && echo served-by-web > /tmp/www/index.html"
                            " && exec httpd -f -p 8080 -h /tmp/www",
                        ],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                    }
                ]
            },
        }
    )
    apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    wait_for("pod/web", "condition=Ready", namespace)
    return "web"


def test_cluster_dns_resolves_the_api_server_and_a_service(
    namespace: str, web_service: str
) -> None:
    web_ip = get("service", web_service, namespace)["spec"]["clusterIP"]
    # full names, asked of the cluster DNS Service directly (busybox nslookup)
    script = (
        "nslookup kubernetes.default.svc.cluster.local"
        f" && nslookup {web_service}.{namespace}.svc.cluster.local"
    )
    phase, logs = run_pod("dns", namespace, BUSYBOX_IMAGE, ["sh", "-c", script])
    assert phase == "Succeeded", logs
    assert "Address: 10.96.0.1\n" in logs  # the `kubernetes` Service
    assert f"Address: {web_ip}" in logs
    # short names through the pod's search path, with the C library's resolver (Python in the client image)
    lookup = (
        "import socket\n"
        f"for name in ('{web_service}', 'kubernetes.default', 'kubernetes.default.svc'):\n"
        "    print(name, socket.gethostbyname(name))\n"
    )
    phase, logs = run_pod("dns-short", namespace, client_image(), ["python", "-c", lookup])
    assert phase == "Succeeded", logs
    assert f"{web_service} {web_ip}" in logs
    assert "kubernetes.default 10.96.0.1" in logs and "kubernetes.default.svc 10.96.0.1" in logs


def test_a_pod_reaches_another_pod_through_a_service(namespace: str, web_service: str) -> None:
    fetch = (
        "import urllib.request\n"
        f"print(urllib.request.urlopen('http://{web_service}/', timeout=10).read().decode())\n"
    )
    phase, logs = run_pod("fetch", namespace, client_image(), ["python", "-c", fetch])
    assert phase == "Succeeded", logs
    assert "served-by-web" in logs


def test_a_pod_reaches_the_api_server_with_its_service_account(namespace: str) -> None:
    # the client image has Python; the default ServiceAccount may read /version and /api
    script = (
        "import json, os, ssl, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "token = open(sa + '/token').read()\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "for url in ('https://kubernetes.default.svc/version',"
        " 'https://%s:%s/api' % (os.environ['KUBERNETES_SERVICE_HOST'], os.environ['KUBERNETES_SERVICE_PORT'])):\n"
        "    req = urllib.request.Request(url, headers={'Authorization': 'Bearer ' + token})\n"
        "    print(url, json.load(urllib.request.urlopen(req, context=ctx, timeout=10)))\n"
    )
    phase, logs = run_pod("api", namespace, client_image(), ["python", "-c", script])
    assert phase == "Succeeded", logs
    assert "'gitVersion': 'v1.34.0'" in logs
    assert "'kind': 'APIVersions'" in logs


def test_pods_have_no_route_out_of_the_cluster(namespace: str) -> None:
    phase, logs = run_pod("routes", namespace, BUSYBOX_IMAGE, ["ip", "route"])
    assert phase == "Succeeded", logs
    routes = logs.strip().splitlines()
    assert not [r for r in routes if r.startswith("default")], routes
    assert any(r.startswith("10.96.0.0/24 via 10.244.0.1") for r in routes), routes


def test_the_client_image_runs_the_scanner(namespace: str) -> None:
    phase, logs = run_pod(
        "scanner-help", namespace, client_image(), ["python", "-m", "skymap_scanner", "--help"]
    )
    assert phase == "Succeeded", logs
    assert "usage" in logs.lower()
