"""RBAC as deployed by `make k8s-deploy`, asked of the API server with `kubectl auth can-i` as each
ServiceAccount: SkyDriver runs scan Jobs and writes each scan's Secret, and can read no Secret, touch no
pod and do nothing in another namespace or cluster-wide; a scan's client manager creates and scales its
worker Job and startup ConfigMap and watches pods, and can read no Secret and list no Job.

Kubernetes RBAC cannot limit `create` to object names, so "only its own worker Job" is bounded by the
namespace and the verbs (no list of Jobs, no Secrets); the client manager names its objects after its scan.
Run by `make k8s-e2e`; deselected in `make test`."""

from __future__ import annotations

import pytest

from .cluster import get
from .deployment import NAMESPACE, SCAN_SA, SKYDRIVER_SA, can_i, require_deployment

pytestmark = pytest.mark.k8s

OTHER_NAMESPACES = ("default", "kube-system")


@pytest.fixture(scope="module", autouse=True)
def deployed() -> None:
    require_deployment()


SKYDRIVER_ALLOWED = [
    ("create", "jobs.batch"),
    ("get", "jobs.batch"),
    ("list", "jobs.batch"),
    ("delete", "jobs.batch"),
    ("create", "secrets"),
    ("update", "secrets"),
]
SKYDRIVER_DENIED = [
    ("get", "secrets"),
    ("get", "secrets/skydriver-secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("delete", "secrets"),
    ("patch", "jobs.batch"),
    ("update", "jobs.batch"),
    ("create", "pods"),
    ("get", "pods"),
    ("create", "pods/exec"),
    ("create", "configmaps"),
    ("create", "deployments.apps"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("create", "serviceaccounts/token"),
    ("impersonate", "serviceaccounts"),
]
SCAN_ALLOWED = [
    ("create", "jobs.batch"),
    ("get", "jobs.batch"),
    ("patch", "jobs.batch"),
    ("delete", "jobs.batch"),
    ("create", "configmaps"),
    ("get", "configmaps"),
    ("delete", "configmaps"),
    ("get", "pods"),
    ("list", "pods"),
]
SCAN_DENIED = [
    ("list", "jobs.batch"),
    ("update", "jobs.batch"),
    ("get", "secrets"),
    ("list", "secrets"),
    ("create", "secrets"),
    ("create", "pods"),
    ("delete", "pods"),
    ("create", "pods/exec"),
    ("update", "configmaps"),
    ("list", "configmaps"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts"),
]


@pytest.mark.parametrize(("verb", "resource"), SKYDRIVER_ALLOWED)
def test_skydriver_may(verb: str, resource: str) -> None:
    assert can_i(SKYDRIVER_SA, verb, resource)


@pytest.mark.parametrize(("verb", "resource"), SKYDRIVER_DENIED)
def test_skydriver_may_not(verb: str, resource: str) -> None:
    assert not can_i(SKYDRIVER_SA, verb, resource)


@pytest.mark.parametrize(("verb", "resource"), SCAN_ALLOWED)
def test_scan_pods_may(verb: str, resource: str) -> None:
    assert can_i(SCAN_SA, verb, resource)


@pytest.mark.parametrize(("verb", "resource"), SCAN_DENIED)
def test_scan_pods_may_not(verb: str, resource: str) -> None:
    assert not can_i(SCAN_SA, verb, resource)


@pytest.mark.parametrize("namespace", OTHER_NAMESPACES)
@pytest.mark.parametrize("account", [SKYDRIVER_SA, SCAN_SA])
def test_nothing_in_other_namespaces(account: str, namespace: str) -> None:
    for verb, resource in [
        ("create", "jobs.batch"),
        ("list", "jobs.batch"),
        ("delete", "jobs.batch"),
        ("create", "secrets"),
        ("get", "secrets"),
        ("create", "configmaps"),
        ("list", "pods"),
    ]:
        assert not can_i(account, verb, resource, namespace), (account, verb, resource, namespace)


@pytest.mark.parametrize("account", [SKYDRIVER_SA, SCAN_SA])
def test_nothing_cluster_wide(account: str) -> None:
    for verb, resource in [
        ("list", "nodes"),
        ("list", "namespaces"),
        ("create", "namespaces"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ]:
        assert not can_i(account, verb, resource), (account, verb, resource)
    assert not can_i(account, "list", "jobs.batch", namespace=None)


def test_the_service_accounts_exist() -> None:
    """can-i answers for any name: the accounts asked about are the ones the pods run as."""
    deployment = get("deployment", "skydriver", NAMESPACE)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == SKYDRIVER_SA
    get("serviceaccount", SKYDRIVER_SA, NAMESPACE)
    get("serviceaccount", SCAN_SA, NAMESPACE)
