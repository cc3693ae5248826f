"""Faults on the one-node cluster, each during a running `dummy` scan: the scan Job's pod (scanner server +
client manager) deleted → the Job starts a new pod, whose scanner server resumes from the partial result
SkyDriver holds, and the scan completes with every pixel exactly once; a worker pod deleted in the middle of
a pixel (its broker channel holds an unacknowledged pixel) → the worker Job replaces it and the pixel is
redelivered, nothing lost or doubled; SkyDriver's pod
deleted → the Deployment replaces it, the new SkyDriver re-attaches and the scan carries on; the Job quota
full → the scan waits in the backlog and starts when room frees.

Run by `make k8s-e2e`; deselected in `make test`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from kubernetes import client as k8s

from client_manager.backends.k8s_objects import worker_selector
from skydriver.launch.k8s_objects import SERVER_CONTAINER, job_name
from skyscan_contract.queues import scan_vhost
from tests.helpers import check_pixel_selection, scan_body, wait_for

from .cluster import kubectl
from .deployment import (
    NAMESPACE,
    api_client,
    broker_admin,
    issue_token,
    require_deployment,
    service_url,
)

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(1800)]

NSIDES = "1:0 2:12 4:12"
TIMEOUT_S = 900


@pytest.fixture(scope="module")
def kube() -> Iterator[k8s.ApiClient]:
    require_deployment()
    with api_client() as api:
        yield api


@pytest.fixture
async def rest(kube: k8s.ApiClient) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=service_url("skydriver", "http"),
        headers={"Authorization": f"Bearer {issue_token('user')}"},
        timeout=60,
    ) as client:
        yield client


async def submit(rest: httpx.AsyncClient, **env: Any) -> str:
    body = scan_body(
        nsides={"1": 0, "2": 12, "4": 12},
        request_clusters={"local": 2},
        worker_memory="512M",
        scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.5, **env},
    )
    resp = await rest.post("/scan", json=body)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["scan_id"])


async def has_partial_result(rest: httpx.AsyncClient, scan_id: str) -> bool:
    """Results for the first nside, and not yet the final result."""
    result = (await rest.get(f"/scan/{scan_id}/result")).json()
    return bool(result.get("skyscan_result", {}).get("nside-1")) and not result["is_final"]


async def final_result(rest: httpx.AsyncClient, scan_id: str) -> dict[str, Any]:
    async def final() -> bool:
        status = (await rest.get(f"/scan/{scan_id}/status")).json()
        return status["scan_state"] == "SCAN_HAS_FINAL_RESULT"

    await wait_for(final, TIMEOUT_S, f"scan {scan_id} to have its final result", interval_s=2)
    result: dict[str, Any] = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
    return result


async def pods(kube: k8s.ApiClient, selector: str) -> list[k8s.V1Pod]:
    listed = await asyncio.to_thread(
        k8s.CoreV1Api(kube).list_namespaced_pod, NAMESPACE, label_selector=selector
    )
    return [p for p in listed.items if p.metadata.deletion_timestamp is None]


def delete_pod(name: str) -> None:
    """Deleted at once, as a crashed node would lose it (no grace period)."""
    kubectl("-n", NAMESPACE, "delete", "pod", name, "--grace-period=0", "--force", "--wait=false")


def logs(pod: str, container: str) -> str:
    return kubectl("-n", NAMESPACE, "logs", pod, "-c", container, check=False)


async def test_scan_pod_deleted_mid_scan_resumes(
    rest: httpx.AsyncClient, kube: k8s.ApiClient
) -> None:
    scan_id = await submit(rest)
    selector = f"job-name={job_name(scan_id)}"
    await wait_for(lambda: has_partial_result(rest, scan_id), TIMEOUT_S, "a partial result", 1)
    (first,) = await pods(kube, selector)
    delete_pod(first.metadata.name)

    async def resumed_in_a_new_pod() -> bool:
        for pod in await pods(kube, selector):
            if pod.metadata.name != first.metadata.name:
                return "resuming scan" in logs(pod.metadata.name, SERVER_CONTAINER)
        return False

    await wait_for(resumed_in_a_new_pod, TIMEOUT_S, "a new scan pod that resumes the scan", 2)
    check_pixel_selection(await final_result(rest, scan_id), NSIDES)


async def worker_holding_a_pixel(kube: k8s.ApiClient, scan_id: str) -> str | None:
    """A worker pod whose broker channel holds an unacknowledged pixel (taken, not yet answered): RabbitMQ's
    channels in the scan's vhost, matched to the worker pods by the connection's peer address."""
    by_ip = {
        p.status.pod_ip: p.metadata.name
        for p in await pods(kube, worker_selector(scan_id))
        if p.status.phase == "Running"
    }
    async with broker_admin() as broker:
        resp = await broker.get(f"/api/vhosts/{quote(scan_vhost(scan_id), safe='')}/channels")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
    for channel in resp.json():
        ip = channel.get("connection_details", {}).get("peer_host")
        if ip in by_ip and channel.get("messages_unacknowledged", 0) > 0:
            return by_ip[ip]
    return None


async def test_worker_pod_deleted_mid_pixel_loses_nothing(
    rest: httpx.AsyncClient, kube: k8s.ApiClient
) -> None:
    scan_id = await submit(rest)
    selector = worker_selector(scan_id)
    await wait_for(lambda: has_partial_result(rest, scan_id), TIMEOUT_S, "a partial result", 1)
    victim = await wait_for(
        lambda: worker_holding_a_pixel(kube, scan_id),
        TIMEOUT_S,
        "a worker holding an unacknowledged pixel",
        0.5,
    )
    delete_pod(victim)

    async def replaced() -> bool:
        names = {p.metadata.name for p in await pods(kube, selector)}
        return victim not in names and len(names) == 2

    await wait_for(replaced, TIMEOUT_S, "the worker Job to replace the deleted pod", 1)
    check_pixel_selection(await final_result(rest, scan_id), NSIDES)


async def test_skydriver_pod_deleted_scan_carries_on(
    rest: httpx.AsyncClient, kube: k8s.ApiClient
) -> None:
    scan_id = await submit(
        rest, SKYSCAN_DUMMY_SLEEP_S=2
    )  # long enough to outlast SkyDriver's restart
    await wait_for(lambda: has_partial_result(rest, scan_id), TIMEOUT_S, "a partial result", 1)
    scan_pods = await pods(kube, f"job-name={job_name(scan_id)}")
    (old,) = await pods(kube, "app.kubernetes.io/name=skydriver")
    delete_pod(old.metadata.name)

    async def replaced_and_ready() -> bool:
        for pod in await pods(kube, "app.kubernetes.io/name=skydriver"):
            ready = {c.type: c.status for c in pod.status.conditions or []}.get("Ready")
            if pod.metadata.name != old.metadata.name and ready == "True":
                return True
        return False

    await wait_for(replaced_and_ready, TIMEOUT_S, "the Deployment's new SkyDriver pod", 1)
    # the scan goes on in its own pod: SkyDriver's restart neither stopped nor replaced it
    still = await pods(kube, f"job-name={job_name(scan_id)}")
    assert [p.metadata.uid for p in still] == [p.metadata.uid for p in scan_pods]
    check_pixel_selection(await final_result(rest, scan_id), NSIDES)


FILLER = "quota-filler"


@pytest.fixture
def quota_full(kube: k8s.ApiClient) -> Iterator[list[str]]:
    """Suspended Jobs (no pods) until the namespace's count/jobs.batch quota is used up."""
    quota = k8s.CoreV1Api(kube).read_namespaced_resource_quota("skydriver-job-quota", NAMESPACE)
    hard = int(quota.spec.hard["count/jobs.batch"])
    used = int((quota.status.used or {}).get("count/jobs.batch", "0"))
    names = [f"{FILLER}-{i}" for i in range(hard - used)]
    batch = k8s.BatchV1Api(kube)
    for name in names:
        batch.create_namespaced_job(
            NAMESPACE,
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/name": FILLER}},
                "spec": {
                    "suspend": True,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {"name": "idle", "image": "localhost/skydriver-k8s/busybox:1.35"}
                            ],
                        }
                    },
                },
            },
        )
    try:
        yield names
    finally:
        kubectl(
            "-n", NAMESPACE, "delete", "job", "-l", f"app.kubernetes.io/name={FILLER}",
            "--wait=false", check=False,
        )  # fmt: skip


async def test_a_full_job_quota_keeps_the_scan_in_the_backlog(
    rest: httpx.AsyncClient, kube: k8s.ApiClient, quota_full: list[str]
) -> None:
    scan_id = await submit(rest, SKYSCAN_DUMMY_SLEEP_S=0.05)

    async def refused_for_quota() -> bool:
        instance = (await rest.get(f"/scan/{scan_id}/status")).json()["instance"]
        return instance.get("state") == "start-failed" and "quota" in instance.get("reason", "")

    await wait_for(refused_for_quota, 300, "SkyDriver to report the quota refusal", 0.5)
    batch = k8s.BatchV1Api(kube)
    jobs = await asyncio.to_thread(batch.list_namespaced_job, NAMESPACE)
    assert job_name(scan_id) not in {j.metadata.name for j in jobs.items}
    status = (await rest.get(f"/scan/{scan_id}/status")).json()
    assert status["scan_state"] != "SCAN_HAS_FINAL_RESULT"

    for name in quota_full[:3]:  # room for the scan Job and its worker Job
        await asyncio.to_thread(
            batch.delete_namespaced_job, name, NAMESPACE, propagation_policy="Background"
        )
    check_pixel_selection(await final_result(rest, scan_id), NSIDES)
