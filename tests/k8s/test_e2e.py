"""Scans on the one-node cluster, end to end: submitted through SkyDriver's Service, run as SkyDriver's scan
Job (scanner server + client manager), whose client manager creates the worker Job; the workers pull pixels
from the in-cluster RabbitMQ; the result loads with icecube-skyreader with every pixel exactly once; the
scan's pods get a token scoped to their scan and broker credentials of their own (by Secret reference
only), and the scan's Jobs, Secret, ConfigMap, broker vhost and user are gone afterwards.

Run by `make k8s-e2e` on the deployment of `make k8s-up && make k8s-deploy`; deselected in `make test`."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import numpy as np
import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from skyreader import SkyScanResult

from client_manager.backends.k8s_objects import startup_configmap_name, worker_job_name
from skydriver.auth.principal import SCAN_ID_CLAIM
from skydriver.launch.k8s_objects import (
    CLIENT_MANAGER_CONTAINER,
    SECRET_BROKER_KEY,
    SECRET_TOKEN_KEY,
    SERVER_CONTAINER,
    job_name,
)
from skymap_scanner.simulation import simulate_events
from skyscan_contract.queues import scan_user, scan_vhost
from tests.helpers import check_pixel_selection, scan_body, wait_for

from .deployment import (
    NAMESPACE,
    api_client,
    broker_admin,
    env_of,
    issue_token,
    require_deployment,
    service_url,
)

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(1800)]

#: SkyDriver launches, the client manager starts workers, the images start: minutes on this machine
SCAN_TIMEOUT_S = 900
CLEANUP_TIMEOUT_S = 300  # the one-node overlay's Job TTL is 30 s, then the garbage collector


@pytest.fixture(scope="module")
def kube() -> Iterator[k8s.ApiClient]:
    require_deployment()
    with api_client() as api:
        yield api


@pytest.fixture
async def rest(kube: k8s.ApiClient) -> AsyncIterator[httpx.AsyncClient]:
    token = issue_token("user")
    async with httpx.AsyncClient(
        base_url=service_url("skydriver", "http"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ) as client:
        yield client


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """The kubernetes client is synchronous: call it off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def read_or_none(fn: Any, *args: Any) -> Any:
    try:
        return await in_thread(fn, *args)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def secret_ref(source: Any) -> tuple[str, str] | None:
    ref = getattr(source, "secret_key_ref", None)
    return (ref.name, ref.key) if ref is not None else None


async def check_scan_credentials(
    kube: k8s.ApiClient, scan_id: str, rest: httpx.AsyncClient
) -> None:
    """While the scan runs: its Job's containers and its worker Job read the SkyDriver token and the broker
    password from the scan's own Secret (owned by the Job), the token is a system token limited to this
    scan (SkyDriver refuses it for another scan), and the broker address names the scan's own user and
    vhost, which RabbitMQ lets into that vhost only."""
    batch, core = k8s.BatchV1Api(kube), k8s.CoreV1Api(kube)
    name = job_name(scan_id)
    job = await wait_for(
        lambda: read_or_none(batch.read_namespaced_job, name, NAMESPACE),
        SCAN_TIMEOUT_S,
        f"SkyDriver to create the scan Job {name}",
        interval_s=1,
    )
    containers = {c.name: env_of(c) for c in job.spec.template.spec.containers}
    assert set(containers) == {SERVER_CONTAINER, CLIENT_MANAGER_CONTAINER}
    assert job.spec.template.spec.service_account_name == "skyscan-instance"
    for cname, env in containers.items():
        refs = {k: secret_ref(v) for k, v in env.items() if secret_ref(v)}
        # every credential by reference, and only to the scan's own Secret
        assert {ref for ref in refs.values()} == {
            (name, SECRET_TOKEN_KEY),
            (name, SECRET_BROKER_KEY),
        }, (
            cname,
            refs,
        )
        address = env["SKYSCAN_BROKER_ADDRESS"]
        assert address.startswith(f"{scan_user(scan_id)}@") and address.endswith(
            f"/{scan_vhost(scan_id)}"
        ), address

    secret = await wait_for(
        lambda: read_or_none(core.read_namespaced_secret, name, NAMESPACE),
        120,
        f"the scan's Secret {name}",
    )
    assert [(o.kind, o.name, o.uid) for o in secret.metadata.owner_references] == [
        ("Job", name, job.metadata.uid)
    ]
    token = base64.b64decode(secret.data[SECRET_TOKEN_KEY]).decode()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims[SCAN_ID_CLAIM] == scan_id
    scoped = {"Authorization": f"Bearer {token}"}
    assert (await rest.get(f"/scan/{scan_id}/manifest", headers=scoped)).status_code == 200
    resp = await rest.get(
        f"/scan/{uuid.uuid4().hex}/manifest", headers=scoped
    )  # the scope comes first
    assert resp.status_code == 403, resp.text
    # the secrets never appear as plain values anywhere in the Job
    broker_password = base64.b64decode(secret.data[SECRET_BROKER_KEY]).decode()
    job_text = json.dumps(kube.sanitize_for_serialization(job))
    assert token not in job_text and broker_password not in job_text

    async with broker_admin() as broker:
        user = (await broker.get(f"/api/users/{scan_user(scan_id)}")).json()
        assert user["name"] == scan_user(scan_id) and not user["tags"]
        perms = (await broker.get(f"/api/users/{scan_user(scan_id)}/permissions")).json()
        assert [p["vhost"] for p in perms] == [scan_vhost(scan_id)]

    workers = await wait_for(
        lambda: read_or_none(batch.read_namespaced_job, worker_job_name(scan_id), NAMESPACE),
        SCAN_TIMEOUT_S,
        "the client manager to create the worker Job",
        interval_s=1,
    )
    assert [o.uid for o in workers.metadata.owner_references] == [job.metadata.uid]
    (worker,) = workers.spec.template.spec.containers
    wenv = env_of(worker)
    assert secret_ref(wenv["SKYSCAN_BROKER_AUTH"]) == (name, SECRET_BROKER_KEY)
    assert wenv["SKYSCAN_BROKER_ADDRESS"] == containers[SERVER_CONTAINER]["SKYSCAN_BROKER_ADDRESS"]
    assert broker_password not in json.dumps(kube.sanitize_for_serialization(workers))


async def wait_for_result(rest: httpx.AsyncClient, scan_id: str) -> dict[str, Any]:
    async def final() -> bool:
        status = (await rest.get(f"/scan/{scan_id}/status")).json()
        return status["scan_state"] == "SCAN_HAS_FINAL_RESULT" and bool(status["scan_complete"])

    await wait_for(final, SCAN_TIMEOUT_S, f"scan {scan_id} to have its final result", interval_s=2)
    result: dict[str, Any] = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
    return result


async def check_cleaned_up(kube: k8s.ApiClient, scan_id: str) -> None:
    """After the result: the scan Job (TTL), with it its Secret and worker Job (owner references), the
    startup ConfigMap, and the scan's broker vhost and user are gone."""
    batch, core = k8s.BatchV1Api(kube), k8s.CoreV1Api(kube)
    name = job_name(scan_id)

    async def gone() -> bool:
        left = [
            await read_or_none(batch.read_namespaced_job, name, NAMESPACE),
            await read_or_none(batch.read_namespaced_job, worker_job_name(scan_id), NAMESPACE),
            await read_or_none(core.read_namespaced_secret, name, NAMESPACE),
            await read_or_none(
                core.read_namespaced_config_map, startup_configmap_name(scan_id), NAMESPACE
            ),
        ]
        return all(obj is None for obj in left)

    await wait_for(gone, CLEANUP_TIMEOUT_S, f"scan {scan_id}'s Jobs, Secret, ConfigMap", 2)
    async with broker_admin() as broker:
        assert (await broker.get(f"/api/vhosts/{scan_vhost(scan_id)}")).status_code == 404
        assert (await broker.get(f"/api/users/{scan_user(scan_id)}")).status_code == 404


async def run_scan(
    rest: httpx.AsyncClient, kube: k8s.ApiClient, body: dict[str, Any], nsides: str
) -> SkyScanResult:
    resp = await rest.post("/scan", json=body)
    assert resp.status_code == 200, resp.text
    scan_id = resp.json()["scan_id"]
    await check_scan_credentials(kube, scan_id, rest)
    result = await wait_for_result(rest, scan_id)
    check_pixel_selection(result, nsides)  # every pixel exactly once, the refinements complete
    await check_cleaned_up(kube, scan_id)
    return SkyScanResult.deserialize(result)


async def test_dummy_scan_runs_as_jobs(rest: httpx.AsyncClient, kube: k8s.ApiClient) -> None:
    nsides = "1:0 2:12"
    body = scan_body(
        nsides={"1": 0, "2": 12},
        request_clusters={"local": 2},
        worker_memory="512M",
        scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.05},
    )
    sky = await run_scan(rest, kube, body, nsides)
    assert sky.nsides == [1, 2]


async def test_pandel_mpe_scan_of_a_simulated_event(
    rest: httpx.AsyncClient, kube: k8s.ApiClient
) -> None:
    nsides = "1:0 2:12"
    event = simulate_events(1, seed=11, energy_range_gev=(2e5, 2e5), zenith_range=(1.7, 2.6))[0]
    body = scan_body(
        reco_algo="pandel_mpe",
        nsides={"1": 0, "2": 12},
        real_or_simulated_event="simulated",
        event_i3live_json=event,
        request_clusters={"local": 2},
        worker_memory="1G",
        scanner_server_env={},
    )
    sky = await run_scan(rest, kube, body, nsides)
    assert sky.nsides == [1, 2]
    for pixels in sky.result.values():  # every pixel reconstructed (no failed fit)
        assert np.isfinite(pixels["llh"]).all()
