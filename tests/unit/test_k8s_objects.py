"""Kubernetes objects built by pure functions (skydriver.launch.k8s_objects, client_manager.backends.k8s_objects),
checked through the official client models and serializer. No cluster: nothing is sent anywhere."""

from __future__ import annotations

import json
import os
import re
from typing import Any

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")  # before htcondor2 is imported (condor backend)

import pytest
from kubernetes.client import (
    ApiClient,
    V1ContainerState,
    V1ContainerStateTerminated,
    V1ContainerStateWaiting,
    V1ContainerStatus,
    V1Job,
    V1JobCondition,
    V1JobStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodStatus,
)

from client_manager.backends import k8s_objects as wk
from client_manager.backends.base import WorkerStatus
from skydriver.broker import planned_address
from skydriver.launch.k8s_objects import (
    ScanResources,
    job_exit_code,
    job_name,
    scan_job_from_settings,
    to_dict,
)
from skydriver.launch.k8s_settings import K8sLauncherSettings
from skydriver.settings import Settings
from skyscan_contract.instance import InstanceSpec
from skyscan_contract.k8s_objects import cpu_quantity, dns_name, label_value
from skyscan_contract.settings import CondorWorkerSettings as CondorBackendSettings
from skyscan_contract.settings import K8sWorkerSettings as K8sBackendSettings

SCAN_ID = "18c0a1b2c3dx0123456789abcdef0123"
BROKER_SECRET = "broker-s3cr3t-VALUE-42"
SKYDRIVER_TOKEN = "eyJ-skydriver-token-VALUE"
#: the scan's own broker user and vhost (per-scan broker accounts)
BROKER_ADDRESS = f"skyscan-{SCAN_ID}@rabbitmq.skydriver.svc:5672/skyscan-{SCAN_ID}"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def spec(**overrides: Any) -> InstanceSpec:
    values: dict[str, Any] = {
        "scan_id": SCAN_ID,
        "reco_algo": "dummy",
        "nsides": "8:0 64:12 512:24",
        "real_event": True,
        "predictive_scanning_threshold": 0.9,
        "n_workers": 12,
        "max_pixel_reco_time": 900,
        "priority": 100,
        "scanner_server_env": {"SKYSCAN_LOG": "DEBUG", "SKYSCAN_BROKER_ADDRESS": "evil:5672"},
    }
    values.update(overrides)
    return InstanceSpec(**values)


def settings() -> Settings:
    return Settings(
        public_url="https://skydriver.example.org",
        broker_type="rabbitmq",
        broker_address="rabbitmq.skydriver.svc:5672",
        broker_auth=BROKER_SECRET,  # type: ignore[arg-type]
        scanner_progress_interval_s=30.0,
        client_manager_poll_interval_s=15.0,
        scanner_kill_switch_check_interval_s=60.0,
    )


def cfg(**overrides: Any) -> K8sLauncherSettings:
    return K8sLauncherSettings(
        namespace="skyscans", image_repository="reg.example/skyscan", **overrides
    )


RES = ScanResources(
    docker_tag="4.1.2",
    scanner_server_memory_bytes=2_000_000_000,
    worker_memory_bytes=6_000_000_000,
    worker_disk_bytes=3_000_000_000,
)


def scan_job(**spec_overrides: Any) -> dict[str, Any]:
    s = spec(**spec_overrides)
    job = scan_job_from_settings(s, settings(), cfg(), RES, broker_address=BROKER_ADDRESS)
    assert isinstance(job, V1Job)
    data: dict[str, Any] = to_dict(job)
    return data


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def containers(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in job["spec"]["template"]["spec"]["containers"]}


# ---------------------------------------------------------------- names


def test_job_name_is_the_originals_for_scan_ids() -> None:
    assert job_name(SCAN_ID) == f"skyscan-{SCAN_ID}"
    assert job_name(SCAN_ID) == job_name(SCAN_ID)  # a retried create finds its own Job


@pytest.mark.parametrize(
    "scan_id", ["A" * 200, "Foo_Bar.baz", "--x--", "é", SCAN_ID + "Z" * 40, "x" * 56]
)
def test_names_are_dns_labels_capped_with_a_hash(scan_id: str) -> None:
    for name in (
        job_name(scan_id),
        wk.worker_job_name(scan_id),
        wk.startup_configmap_name(scan_id),
    ):
        assert DNS_LABEL.match(name), name
        assert len(name) <= 63
    assert re.search(r"-[0-9a-f]{8}$", job_name(scan_id))
    assert re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", label_value(scan_id))


def test_valid_names_are_kept_up_to_63_characters() -> None:
    assert job_name("x" * 55) == "skyscan-" + "x" * 55


def test_different_ids_that_slug_alike_get_different_names() -> None:
    assert dns_name("skyscan-", "a_b") != dns_name("skyscan-", "a.b")
    assert job_name("A" * 100) != job_name("A" * 101)


def test_cpu_quantity() -> None:
    assert cpu_quantity(0.1) == "100m"
    assert cpu_quantity(1.0) == "1"
    assert cpu_quantity(2.5) == "2500m"


# ---------------------------------------------------------------- the scan Job


def test_scan_job_metadata_and_spec_as_the_original() -> None:
    job = scan_job()
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    meta = job["metadata"]
    assert meta["name"] == f"skyscan-{SCAN_ID}"
    assert meta["namespace"] == "skyscans"
    assert meta["labels"]["app.kubernetes.io/instance"] == "skydriver"
    assert meta["labels"]["skydriver/scan-id"] == SCAN_ID
    assert meta["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false"
    assert (
        meta["annotations"]["argocd.argoproj.io/tracking-id"]
        == f"skydriver:apps/Job:skyscans/skyscan-{SCAN_ID}"
    )
    s = job["spec"]
    assert s["ttlSecondsAfterFinished"] == 600
    assert s["activeDeadlineSeconds"] == 172800
    # security audit #11: a crashed or evicted scan pod is run again, and the server resumes
    assert s["backoffLimit"] == 3
    pod = s["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    assert pod["serviceAccountName"] == "skyscan-instance"
    assert s["template"]["metadata"]["labels"]["app"] == "scanner-instance"
    assert pod["volumes"][0] == {"name": "common-space-volume", "emptyDir": {}}
    # security audit #14: the service-account token only in the client manager, not in the server
    assert pod["automountServiceAccountToken"] is False
    api_access = pod["volumes"][1]
    assert api_access["name"] == "client-manager-api-access"
    sources = api_access["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token"
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_scan_job_settings_are_applied() -> None:
    job = to_dict(
        scan_job_from_settings(
            spec(),
            settings(),
            cfg(
                ttl_seconds_after_finished=60, active_deadline_seconds=3600, application_name="sd2"
            ),
            RES,
            broker_address=BROKER_ADDRESS,
        )
    )
    assert job["spec"]["ttlSecondsAfterFinished"] == 60
    assert job["spec"]["activeDeadlineSeconds"] == 3600
    assert job["metadata"]["labels"]["app.kubernetes.io/instance"] == "sd2"


def test_two_containers_share_common_space_and_run_the_right_programs() -> None:
    c = containers(scan_job())
    assert list(c) == ["skyscan-server", "client-manager"]
    for container in c.values():
        assert container["image"] == "reg.example/skyscan:4.1.2"
        assert container["volumeMounts"][0] == {
            "mountPath": "/common-space",
            "name": "common-space-volume",
        }
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert len(c["skyscan-server"]["volumeMounts"]) == 1  # no API token where a user's settings go
    assert c["client-manager"]["volumeMounts"][1] == {
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        "name": "client-manager-api-access",
        "readOnly": True,
    }
    server = c["skyscan-server"]["command"]
    assert server[:4] == ["python", "-m", "skymap_scanner", "server"]
    assert server[4:] == [
        *spec().server_args(),
        "--cache-dir",
        "/common-space",
        "--client-startup-json",
        "/common-space/startup.json",
    ]
    assert "--nsides" in server and "512:24" in server and "--real-event" in server
    assert c["client-manager"]["command"] == [
        "python",
        "-m",
        "client_manager",
        "--scan-id",
        SCAN_ID,
        "--backend",
        "k8s",
        "--n-workers",
        "12",
        "--client-startup-json",
        "/common-space/startup.json",
        "--poll-interval",
        "15",
    ]


def test_resources_from_the_request_and_settings() -> None:
    c = containers(scan_job())
    server = c["skyscan-server"]["resources"]
    assert server["requests"]["memory"] == server["limits"]["memory"] == "2000000000"
    assert server["requests"]["cpu"] == "100m" and server["limits"]["cpu"] == "1"
    assert server["requests"]["ephemeral-storage"] == "8000000000"
    manager = c["client-manager"]["resources"]
    assert manager["requests"]["memory"] == manager["limits"]["memory"]
    env = env_of(c["client-manager"])
    assert env["CLIENT_MANAGER_WORKER_MEMORY_BYTES"] == "6000000000"
    assert env["CLIENT_MANAGER_WORKER_DISK_BYTES"] == "3000000000"
    assert env["CLIENT_MANAGER_WORKER_PRIORITY"] == "100"
    assert env["CLIENT_MANAGER_WORKER_IMAGE"] == "reg.example/skyscan:4.1.2"


def test_defaults_when_the_request_names_no_resources() -> None:
    res = ScanResources.of(spec(docker_tag="", scanner_server_memory_bytes=0), cfg())
    assert res == ScanResources("latest", 1_024_000_000)
    job = to_dict(scan_job_from_settings(spec(), settings(), cfg(), broker_address=BROKER_ADDRESS))
    server = containers(job)["skyscan-server"]
    assert server["image"] == "reg.example/skyscan:latest"
    assert server["resources"]["limits"]["memory"] == "1024000000"


def test_env_values_and_secrets_by_reference_only() -> None:
    job = scan_job()
    c = containers(job)
    server, manager = env_of(c["skyscan-server"]), env_of(c["client-manager"])
    for env in (server, manager):
        assert env["SKYSCAN_SKYDRIVER_ADDRESS"] == "https://skydriver.example.org"
        assert env["SKYSCAN_SKYDRIVER_SCAN_ID"] == SCAN_ID
        assert env["SKYSCAN_BROKER_TYPE"] == "rabbitmq"
        assert env["SKYSCAN_BROKER_ADDRESS"] == BROKER_ADDRESS
        assert env["SKYSCAN_PIXEL_TIMEOUT_S"] == "900"
        # both secrets from the scan's OWN Secret (named as its Job), never a shared one
        assert env["SKYSCAN_BROKER_AUTH"] == {
            "secretKeyRef": {"name": f"skyscan-{SCAN_ID}", "key": "broker-auth", "optional": False}
        }
        assert env["SKYSCAN_SKYDRIVER_AUTH"] == {
            "secretKeyRef": {
                "name": f"skyscan-{SCAN_ID}",
                "key": "skydriver-auth",
                "optional": False,
            }
        }
    assert server["SKYSCAN_KILL_SWITCH_CHECK_INTERVAL"] == "60"
    assert server["SKYSCAN_PROGRESS_INTERVAL_SEC"] == "30"
    assert server["SKYSCAN_LOG"] == "DEBUG"  # the user's env comes through...
    assert manager["CLIENT_MANAGER_K8S_NAMESPACE"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    # ...but never replaces one of ours
    names = [e["name"] for e in c["skyscan-server"]["env"]]
    assert names.count("SKYSCAN_BROKER_ADDRESS") == 1
    # no secret value anywhere in the object
    text = json.dumps(job)
    assert BROKER_SECRET not in text
    assert SKYDRIVER_TOKEN not in text
    # every env var is a plain value or a reference, never both
    for container in c.values():
        for e in container["env"]:
            assert ("value" in e) != ("valueFrom" in e), e


def test_client_manager_env_matches_the_backend_settings() -> None:
    """Every CLIENT_MANAGER_* variable the launcher sets is a field the backends read."""
    manager = env_of(containers(scan_job())["client-manager"])
    fields = {f"CLIENT_MANAGER_{n.upper()}" for n in K8sBackendSettings.model_fields} | {
        f"CLIENT_MANAGER_{n.upper()}" for n in CondorBackendSettings.model_fields
    }
    ours = {k for k in manager if k.startswith("CLIENT_MANAGER_")}
    assert ours <= fields, ours - fields


def test_scan_job_round_trips_through_the_model() -> None:
    data = scan_job()
    back = ApiClient().deserialize(json.dumps(data), "V1Job", "application/json")
    assert to_dict(back) == data


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (None, None),
        (V1JobStatus(), None),
        (V1JobStatus(active=1), None),
        # a pod's outcome alone does not end the Job: a failed pod is replaced (backoffLimit), and
        # only the Job's own conditions say it is over
        (V1JobStatus(succeeded=1), None),
        (V1JobStatus(failed=1), None),
        (V1JobStatus(conditions=[V1JobCondition(type="Complete", status="True")]), 0),
        (V1JobStatus(conditions=[V1JobCondition(type="Failed", status="True")], active=1), 1),
        (V1JobStatus(conditions=[V1JobCondition(type="Failed", status="False")], active=1), None),
    ],
)
def test_job_exit_code(status: V1JobStatus | None, code: int | None) -> None:
    assert job_exit_code(V1Job(status=status)) == code


# ---------------------------------------------------------------- the worker Job and ConfigMap


def worker_job(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "namespace": "skyscans",
        "image": "reg.example/skyscan:4.1.2",
        "n_workers": 5,
        "memory_bytes": 6_000_000_000,
        "disk_bytes": 3_000_000_000,
        "cpu": 1.0,
        "broker_type": "rabbitmq",
        "broker_address": "rabbitmq:5672",
        "secret_name": "skydriver-secrets",
        "broker_auth_secret_key": "broker-auth",
        "pixel_timeout_s": 900.0,
        "replacements_per_worker": 3,
        "ttl_seconds_after_finished": 600,
        "active_deadline_seconds": 86400,
        "owner": wk.owner_reference(f"skyscan-{SCAN_ID}", "1234-uid"),
    }
    values.update(overrides)
    data: dict[str, Any] = to_dict(wk.make_worker_job(SCAN_ID, **values))
    return data


def test_worker_job_is_one_indexed_job_of_n_workers() -> None:
    job = worker_job()
    assert job["metadata"]["name"] == f"skyscan-workers-{SCAN_ID}"
    s = job["spec"]
    assert s["completionMode"] == "Indexed"
    assert s["parallelism"] == s["completions"] == 5
    assert s["backoffLimitPerIndex"] == 3
    assert s["ttlSecondsAfterFinished"] == 600
    pod = s["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    (worker,) = pod["containers"]
    assert worker["command"] == [
        "python",
        "-m",
        "skymap_scanner",
        "worker",
        "--client-startup-json",
        "/skyscan-startup/startup.json",
    ]
    res = worker["resources"]
    assert (
        res["requests"]
        == res["limits"]
        == {
            "cpu": "1",
            "memory": "6000000000",
            "ephemeral-storage": "3000000000",
        }
    )
    env = env_of(worker)
    assert env["SKYSCAN_BROKER_AUTH"] == {
        "secretKeyRef": {"name": "skydriver-secrets", "key": "broker-auth", "optional": False}
    }
    assert env["SKYSCAN_PIXEL_TIMEOUT_S"] == "900"
    assert pod["volumes"] == [
        {"name": "skyscan-startup", "configMap": {"name": f"skyscan-startup-{SCAN_ID}"}}
    ]
    assert worker["volumeMounts"][0]["readOnly"] is True
    labels = s["template"]["metadata"]["labels"]
    assert wk.worker_selector(SCAN_ID) == f"skydriver/workers-of={labels['skydriver/workers-of']}"
    owner = job["metadata"]["ownerReferences"]
    assert owner == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": f"skyscan-{SCAN_ID}", "uid": "1234-uid"}
    ]
    back = ApiClient().deserialize(json.dumps(job), "V1Job", "application/json")
    assert to_dict(back) == job


def test_worker_job_without_owner_and_bad_sizes() -> None:
    assert "ownerReferences" not in worker_job(owner=None)["metadata"]
    with pytest.raises(ValueError, match="n_workers"):
        worker_job(n_workers=0)


def test_startup_configmap_holds_the_file() -> None:
    text = json.dumps({"scan_id": SCAN_ID, "event": {"pulses": [1, 2, 3]}})
    cm = to_dict(wk.make_startup_configmap(SCAN_ID, "skyscans", text))
    assert cm["kind"] == "ConfigMap"
    assert cm["metadata"]["name"] == f"skyscan-startup-{SCAN_ID}"
    assert cm["data"] == {"startup.json": text}
    assert cm["immutable"] is True
    with pytest.raises(ValueError, match="ConfigMap holds at most"):
        wk.make_startup_configmap(SCAN_ID, "skyscans", "x" * 1_000_001)


def test_scale_patch_moves_parallelism_and_completions_together() -> None:
    assert wk.scale_patch(9) == {"spec": {"parallelism": 9, "completions": 9}}


# ---------------------------------------------------------------- reading worker pods


def pod(
    phase: str,
    *,
    terminated: tuple[str, int] | None = None,
    waiting: str | None = None,
    reason: str | None = None,
) -> V1Pod:
    state = None
    if terminated is not None:
        state = V1ContainerState(
            terminated=V1ContainerStateTerminated(reason=terminated[0], exit_code=terminated[1])
        )
    elif waiting is not None:
        state = V1ContainerState(waiting=V1ContainerStateWaiting(reason=waiting))
    statuses = (
        [
            V1ContainerStatus(
                name="worker", image="i", image_id="", ready=False, restart_count=0, state=state
            )
        ]
        if state is not None
        else None
    )
    return V1Pod(
        metadata=V1ObjectMeta(name="p"),
        status=V1PodStatus(phase=phase, reason=reason, container_statuses=statuses),
    )


def test_pod_phases_map_to_worker_statuses_with_top_errors() -> None:
    pods = [
        pod("Pending"),
        pod("Pending", waiting="ImagePullBackOff"),
        pod("Pending", waiting="ContainerCreating"),
        pod("Running"),
        pod("Running"),
        pod("Succeeded", terminated=("Completed", 0)),
        pod("Failed", terminated=("OOMKilled", 137)),
        pod("Failed", terminated=("OOMKilled", 137)),
        pod("Failed", reason="Evicted"),
        pod("Unknown"),
    ]
    statuses, errors = wk.count_pods(pods)
    assert statuses == {
        WorkerStatus.PENDING: 3,
        WorkerStatus.RUNNING: 2,
        WorkerStatus.GONE: 1,
        WorkerStatus.FAILED: 3,
        WorkerStatus.UNKNOWN: 1,
    }
    assert errors.most_common() == [
        ("OOMKilled (exit 137)", 2),
        ("ImagePullBackOff", 1),
        ("Evicted", 1),
    ]


def test_workforce_counts_not_yet_created_pods_as_pending() -> None:
    job = V1Job(status=V1JobStatus(active=2))
    statuses, _ = wk.workforce_counts(job, [pod("Running")], n_requested=5)
    assert statuses == {WorkerStatus.RUNNING: 1, WorkerStatus.PENDING: 4}
    # 2 done, 1 index given up after its retries (3 failed pods), 1 running: 1 still to come
    job = V1Job(status=V1JobStatus(succeeded=2, failed=3, failed_indexes="4"))
    statuses, _ = wk.workforce_counts(job, [pod("Running")], n_requested=5)
    assert statuses == {
        WorkerStatus.RUNNING: 1,
        WorkerStatus.GONE: 2,
        WorkerStatus.FAILED: 3,
        WorkerStatus.PENDING: 1,
    }
    finished = V1Job(
        status=V1JobStatus(succeeded=5, conditions=[V1JobCondition(type="Complete", status="True")])
    )
    assert wk.workforce_counts(finished, [], 5)[0] == {WorkerStatus.GONE: 5}
    # the Job is gone: nothing is pending any more
    gone, _ = wk.workforce_counts(None, [pod("Succeeded")], 5)
    assert gone == {WorkerStatus.GONE: 1}


def test_count_indexes() -> None:
    assert wk.count_indexes(None) == 0
    assert wk.count_indexes("") == 0
    assert wk.count_indexes("1,3-5,7") == 5


# ---------------------------------------------------------------- dry run


def test_dry_run_prints_exactly_the_objects() -> None:
    import yaml

    from skydriver.launch.dry_run import render_dry_run

    text = render_dry_run(spec(), settings(), k8s_settings=cfg(), resources=RES)
    yaml_part, _, condor_part = text.partition("# HTCondor submit description")
    docs = [d for d in yaml.safe_load_all(yaml_part) if d]
    assert [d["kind"] for d in docs] == ["Job", "ConfigMap", "Job"]
    assert docs[0] == to_dict(
        scan_job_from_settings(
            spec(), settings(), cfg(), RES, broker_address=planned_address(settings(), SCAN_ID)
        )
    )
    assert docs[2]["metadata"]["name"] == f"skyscan-workers-{SCAN_ID}"
    assert docs[2]["spec"]["parallelism"] == 12
    assert docs[2]["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "reg.example/skyscan:4.1.2"
    )
    assert "universe = container" in condor_part
    assert "container_image = docker://reg.example/skyscan:4.1.2" in condor_part
    assert "priority = 100" in condor_part
    assert "request_memory = 5723MB" in condor_part
    assert "12 procs" in condor_part
    assert BROKER_SECRET not in text


def test_dry_run_parts() -> None:
    from skydriver.launch.dry_run import render_dry_run

    only_condor = render_dry_run(spec(), settings(), k8s_settings=cfg(), parts=["condor"])
    assert "kind: Job" not in only_condor and "universe = container" in only_condor
    only_job = render_dry_run(spec(), settings(), k8s_settings=cfg(), parts=["scan-job"])
    assert only_job.count("kind: Job") == 1 and "universe" not in only_job
    with pytest.raises(ValueError, match="unknown dry-run parts"):
        render_dry_run(spec(), settings(), k8s_settings=cfg(), parts=["pods"])


def test_backends_read_the_environment_the_scan_job_gives_the_client_manager(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The launcher -> client manager contract: the backend settings built from the scan Job's env
    (references resolved as the kubelet would) carry the scan's worker request."""
    for key in list(os.environ):
        if key.startswith(("CLIENT_MANAGER_", "SKYSCAN_")):
            monkeypatch.delenv(key)
    resolved = {
        "fieldRef": {
            "metadata.namespace": "skyscans",
            "metadata.labels['batch.kubernetes.io/job-name']": f"skyscan-{SCAN_ID}",
            "metadata.labels['batch.kubernetes.io/controller-uid']": "uid-7",
        },
        "secretKeyRef": {"broker-auth": BROKER_SECRET, "skydriver-auth": "tok"},
    }
    for e in containers(scan_job())["client-manager"]["env"]:
        if "value" in e:
            value = e["value"]
        elif "fieldRef" in e["valueFrom"]:
            value = resolved["fieldRef"][e["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            value = resolved["secretKeyRef"][e["valueFrom"]["secretKeyRef"]["key"]]
        monkeypatch.setenv(e["name"], value)
    k8s = K8sBackendSettings()
    assert (k8s.worker_image, k8s.worker_memory_bytes, k8s.worker_disk_bytes) == (
        "reg.example/skyscan:4.1.2",
        6_000_000_000,
        3_000_000_000,
    )
    assert (k8s.k8s_namespace, k8s.k8s_owner_job_uid) == ("skyscans", "uid-7")
    assert (k8s.broker_address, k8s.pixel_timeout_s) == (BROKER_ADDRESS, 900)
    assert (k8s.k8s_secret_name, k8s.k8s_broker_auth_secret_key) == (
        f"skyscan-{SCAN_ID}",
        "broker-auth",
    )
    condor = CondorBackendSettings()
    assert (condor.worker_priority, condor.worker_memory_bytes) == (100, 6_000_000_000)
    assert condor.broker_auth.get_secret_value() == BROKER_SECRET
