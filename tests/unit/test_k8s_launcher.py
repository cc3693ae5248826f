"""K8sLauncher's state machine (and the client manager's K8sBackend) against scripted fakes of BatchV1Api and
CoreV1Api, at the seam: each expected call gets a canned reply (an object or a real
`kubernetes.client.ApiException`). No cluster exists here."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes.client import (
    ApiException,
    V1ConfigMap,
    V1Job,
    V1JobCondition,
    V1JobSpec,
    V1JobStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodList,
    V1PodStatus,
    V1PodTemplateSpec,
    V1Secret,
)

from client_manager.backends.base import WorkerStatus
from client_manager.backends.k8s import K8sBackend
from skydriver.broker import BrokerAccess
from skydriver.launch import k8s as k8s_mod
from skydriver.launch.base import InstanceCredentials
from skydriver.launch.k8s import K8sLauncher
from skydriver.launch.k8s_objects import ScanResources
from skydriver.launch.k8s_settings import K8sLauncherSettings
from skydriver.settings import Settings
from skyscan_contract.errors import LaunchError
from skyscan_contract.instance import InstanceSpec
from skyscan_contract.k8s_api import RetryPolicy, call_api, is_quota_refusal, is_retryable
from skyscan_contract.settings import K8sWorkerSettings as K8sBackendSettings
from tests.doubles import Scripted

SCAN_ID = "18c0a1b2c3dx0123456789abcdef0123"
TOKEN = "scan-scoped-token"
CREDENTIALS = InstanceCredentials(
    skydriver_token=TOKEN, broker=BrokerAccess(f"skyscan-{SCAN_ID}@mq:5672/skyscan-{SCAN_ID}", "pw")
)
JOB = f"skyscan-{SCAN_ID}"
QUOTA_BODY = (
    '{"kind":"Status","status":"Failure","message":"jobs.batch \\"skyscan-x\\" is forbidden: '
    "exceeded quota: skydriver-job-quota, requested: count/jobs.batch=1, used: "
    'count/jobs.batch=100, limited: count/jobs.batch=100","reason":"Forbidden","code":403}'
)
STEP_TIMEOUT_S = 10.0


class ScriptedBatchApi(Scripted):
    """The BatchV1Api (and CoreV1Api) calls the launcher and the backend make, answered from a script.
    The scan's Secret is created successfully unless the script says otherwise."""

    def __init__(self, **script: list[Any]) -> None:
        script.setdefault("create_secret", [V1Secret()] * 5)
        super().__init__(**script)

    def create_namespaced_secret(
        self, namespace: str, body: V1Secret, *, _request_timeout: float | None = None
    ) -> V1Secret:
        return self._reply("create_secret", namespace, body, _request_timeout=_request_timeout)  # type: ignore[no-any-return]

    def replace_namespaced_secret(
        self, name: str, namespace: str, body: V1Secret, *, _request_timeout: float | None = None
    ) -> V1Secret:
        return self._reply(
            "replace_secret", name, namespace, body, _request_timeout=_request_timeout
        )  # type: ignore[no-any-return]

    def create_namespaced_job(
        self, namespace: str, body: V1Job, *, _request_timeout: float | None = None
    ) -> V1Job:
        return self._reply("create", namespace, body, _request_timeout=_request_timeout)  # type: ignore[no-any-return]

    def read_namespaced_job(
        self, name: str, namespace: str, *, _request_timeout: float | None = None
    ) -> V1Job:
        return self._reply("read", name, namespace, _request_timeout=_request_timeout)  # type: ignore[no-any-return]

    def delete_namespaced_job(
        self,
        name: str,
        namespace: str,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        _request_timeout: float | None = None,
    ) -> object:
        return self._reply(
            "delete",
            name,
            namespace,
            grace_period_seconds=grace_period_seconds,
            propagation_policy=propagation_policy,
            _request_timeout=_request_timeout,
        )

    def patch_namespaced_job(
        self, name: str, namespace: str, body: Any, *, _request_timeout: float | None = None
    ) -> V1Job:
        return self._reply("patch", name, namespace, body, _request_timeout=_request_timeout)  # type: ignore[no-any-return]

    # CoreV1Api

    def create_namespaced_config_map(
        self, namespace: str, body: V1ConfigMap, *, _request_timeout: float | None = None
    ) -> V1ConfigMap:
        return self._reply("create_cm", namespace, body, _request_timeout=_request_timeout)  # type: ignore[no-any-return]

    def delete_namespaced_config_map(
        self, name: str, namespace: str, *, _request_timeout: float | None = None
    ) -> object:
        return self._reply("delete_cm", name, namespace, _request_timeout=_request_timeout)

    def list_namespaced_pod(
        self,
        namespace: str,
        *,
        label_selector: str | None = None,
        _request_timeout: float | None = None,
    ) -> V1PodList:
        return self._reply(  # type: ignore[no-any-return]
            "list_pods", namespace, label_selector=label_selector, _request_timeout=_request_timeout
        )


def api_error(status: int, reason: str = "", body: str = "") -> ApiException:
    return ApiException(status=status, reason=reason, body=body)


def job_with(status: V1JobStatus | None) -> V1Job:
    return V1Job(metadata=V1ObjectMeta(name=JOB, uid="uid-1"), status=status)


ACTIVE = job_with(V1JobStatus(active=1))
SUCCEEDED = job_with(
    V1JobStatus(succeeded=1, conditions=[V1JobCondition(type="Complete", status="True")])
)
FAILED = job_with(V1JobStatus(failed=1, conditions=[V1JobCondition(type="Failed", status="True")]))


def spec() -> InstanceSpec:
    return InstanceSpec(
        scan_id=SCAN_ID,
        reco_algo="dummy",
        nsides="8:0",
        real_event=False,
        predictive_scanning_threshold=1.0,
        n_workers=3,
        max_pixel_reco_time=600,
    )


def k8s_cfg(**overrides: Any) -> K8sLauncherSettings:
    values: dict[str, Any] = {
        "namespace": "skyscans",
        "api_retries": 2,
        "api_backoff_s": 0.0,
        "api_timeout_s": 2.0,
        "poll_min_interval_s": 0.0,
    }
    values.update(overrides)
    return K8sLauncherSettings(**values)


def launcher(api: ScriptedBatchApi, **overrides: Any) -> K8sLauncher:
    return K8sLauncher(
        Settings(), SCAN_ID, api=api, core_api=api, k8s_settings=k8s_cfg(**overrides)
    )


async def run(coro: Any) -> Any:
    return await asyncio.wait_for(coro, STEP_TIMEOUT_S)


# ---------------------------------------------------------------- start


async def test_start_creates_the_job_and_keeps_its_name() -> None:
    api = ScriptedBatchApi(create=[ACTIVE])
    la = launcher(api)
    res = ScanResources("4.0.1", 3_000_000_000)
    await run(la.start(spec(), CREDENTIALS, res))
    (method, args, kwargs), (secret_call, secret_args, _) = api.calls
    assert method == "create" and args[0] == "skyscans"
    body = args[1]
    assert isinstance(body, V1Job) and body.metadata is not None
    assert body.metadata.name == JOB
    assert kwargs["_request_timeout"] == 2.0
    # then the scan's own Secret, owned by the Job the API server answered with: the scan's token and
    # broker password, which the Job's containers reference (and nothing else does)
    assert secret_call == "create_secret" and secret_args[0] == "skyscans"
    secret = secret_args[1]
    assert isinstance(secret, V1Secret) and secret.metadata is not None
    assert secret.metadata.name == JOB
    assert secret.string_data == {"skydriver-auth": TOKEN, "broker-auth": "pw"}
    (owner,) = secret.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == ("Job", JOB, "uid-1")
    refs = {
        (e.name, e.value_from.secret_key_ref.name, e.value_from.secret_key_ref.key)
        for c in body.spec.template.spec.containers
        for e in c.env
        if e.value_from is not None and e.value_from.secret_key_ref is not None
    }
    assert refs == {
        ("SKYSCAN_SKYDRIVER_AUTH", JOB, "skydriver-auth"),
        ("SKYSCAN_BROKER_AUTH", JOB, "broker-auth"),
    }
    assert TOKEN not in str(body) and "pw" not in str(body.spec.template.spec.containers)
    assert la.get_state() == {
        "version": 1,
        "launcher": "k8s",
        "job_name": JOB,
        "namespace": "skyscans",
    }


async def test_conflict_means_our_job_from_an_earlier_attempt() -> None:
    """The Job is ours; its Secret from that attempt is replaced with this attempt's credentials."""
    api = ScriptedBatchApi(
        create=[api_error(409, "Conflict")],
        read=[ACTIVE],
        create_secret=[api_error(409, "Conflict")],
        replace_secret=[V1Secret()],
    )
    la = launcher(api)
    await run(la.start(spec(), CREDENTIALS))
    assert api.names() == ["create", "read", "create_secret", "replace_secret"]
    replaced = api.calls[-1][1][2]  # (name, namespace, body)
    assert replaced.string_data["skydriver-auth"] == TOKEN
    assert la.get_state()["job_name"] == JOB


async def test_a_lost_answer_then_conflict_is_success() -> None:
    """The first create times out (it may have worked), the retry gets 409: started."""
    api = ScriptedBatchApi(create=["hang", api_error(409, "Conflict")], read=[ACTIVE])
    la = launcher(api, api_timeout_s=0.2)
    try:
        await run(la.start(spec(), CREDENTIALS))
    finally:
        api.release.set()
    assert api.names() == ["create", "create", "read", "create_secret"]


async def test_quota_refusal_is_a_quota_launch_error_without_retries() -> None:
    api = ScriptedBatchApi(create=[api_error(403, "Forbidden", QUOTA_BODY)])
    la = launcher(api)
    with pytest.raises(LaunchError) as info:
        await run(la.start(spec(), CREDENTIALS))
    assert info.value.reason == "quota"
    assert "quota" in info.value.message and "300s" in info.value.message
    assert api.names() == ["create"]


async def test_other_refusals_are_not_retried() -> None:
    api = ScriptedBatchApi(
        create=[api_error(403, "Forbidden", '{"message":"jobs.batch is forbidden: User cannot"}')]
    )
    with pytest.raises(LaunchError) as info:
        await run(launcher(api).start(spec(), CREDENTIALS))
    assert info.value.reason == "unreachable"
    assert "HTTP 403" in info.value.message
    assert api.names() == ["create"]


async def test_transient_failures_are_retried_then_succeed() -> None:
    api = ScriptedBatchApi(
        create=[
            api_error(503, "Service Unavailable"),
            urllib3.exceptions.ProtocolError("reset"),
            ACTIVE,
        ]
    )
    await run(launcher(api).start(spec(), CREDENTIALS))
    assert api.names() == ["create"] * 3 + ["create_secret"]


async def test_retries_are_bounded() -> None:
    api = ScriptedBatchApi(create=[api_error(500, "Internal")] * 3)
    with pytest.raises(LaunchError) as info:
        await run(launcher(api, api_retries=2).start(spec(), CREDENTIALS))
    assert info.value.reason == "unreachable"
    assert api.names() == ["create"] * 3


async def test_timeouts_are_a_timeout_launch_error() -> None:
    api = ScriptedBatchApi(create=["hang", "hang"])
    la = launcher(api, api_timeout_s=0.1, api_retries=1)
    try:
        with pytest.raises(LaunchError) as info:
            await run(la.start(spec(), CREDENTIALS))
    finally:
        api.release.set()
    assert info.value.reason == "timeout"
    assert "SKYDRIVER_K8S_API_TIMEOUT_S" in info.value.message


async def test_the_api_is_built_lazily_once(monkeypatch: pytest.MonkeyPatch) -> None:
    api = ScriptedBatchApi(create=[ACTIVE], read=[ACTIVE])
    built: list[int] = []

    def fake_load() -> tuple[ScriptedBatchApi, ScriptedBatchApi]:
        built.append(1)
        return api, api

    monkeypatch.setattr(k8s_mod, "load_apis", fake_load)
    la = K8sLauncher(Settings(), SCAN_ID, k8s_settings=k8s_cfg())
    assert built == []
    await run(la.start(spec(), CREDENTIALS))
    assert await run(la.poll()) is None
    assert built == [1]


# ---------------------------------------------------------------- poll


async def test_poll_follows_the_job_from_active_to_succeeded() -> None:
    api = ScriptedBatchApi(create=[ACTIVE], read=[job_with(None), ACTIVE, SUCCEEDED])
    la = launcher(api)
    assert await run(la.poll()) == 0  # never started: gone
    assert api.calls == []
    await run(la.start(spec(), CREDENTIALS))
    assert await run(la.poll()) is None  # no status yet
    assert await run(la.poll()) is None
    assert await run(la.poll()) == 0
    assert await run(la.poll()) == 0  # finished stays finished, without asking again
    assert api.names() == ["create", "create_secret", "read", "read", "read"]
    assert api.calls[2][1] == (JOB, "skyscans")


async def test_poll_failed_job_is_exit_1() -> None:
    api = ScriptedBatchApi(create=[ACTIVE], read=[FAILED])
    la = launcher(api)
    await run(la.start(spec(), CREDENTIALS))
    assert await run(la.poll()) == 1


async def test_a_job_that_vanished_before_it_finished_is_a_failure() -> None:
    """Security audit #11: a Job that is gone (deleted, garbage-collected) never reads as success."""
    api = ScriptedBatchApi(create=[ACTIVE], read=[api_error(404, "Not Found")])
    la = launcher(api)
    await run(la.start(spec(), CREDENTIALS))
    assert await run(la.poll()) == 1


async def test_poll_when_the_api_fails_is_unknown_not_dead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = ScriptedBatchApi(create=[ACTIVE], read=[api_error(503)] * 3 + [SUCCEEDED])
    la = launcher(api, api_retries=2)
    await run(la.start(spec(), CREDENTIALS))
    with caplog.at_level(logging.WARNING):
        assert await run(la.poll()) is None
    assert "assuming alive" in caplog.text
    assert await run(la.poll()) == 0


async def test_poll_reads_at_most_every_min_interval() -> None:
    api = ScriptedBatchApi(create=[ACTIVE], read=[ACTIVE])
    la = launcher(api, poll_min_interval_s=3600)
    await run(la.start(spec(), CREDENTIALS))
    assert await run(la.poll()) is None
    assert await run(la.poll()) is None
    assert api.names() == ["create", "create_secret", "read"]


# ---------------------------------------------------------------- stop


async def test_stop_deletes_foreground_and_is_safe_to_repeat() -> None:
    api = ScriptedBatchApi(
        create=[ACTIVE], delete=[{}, api_error(404, "Not Found")], read=[api_error(404)]
    )
    la = launcher(api)
    await run(la.stop())  # never started: nothing to do
    assert api.calls == []
    await run(la.start(spec(), CREDENTIALS))
    await run(la.stop())
    await run(la.stop())  # already gone
    deletes = [c for c in api.calls if c[0] == "delete"]
    assert len(deletes) == 2
    _, args, kwargs = deletes[0]
    assert args == (JOB, "skyscans")
    assert kwargs["propagation_policy"] == "Foreground"
    assert kwargs["grace_period_seconds"] is None
    assert await run(la.poll()) == 1  # stopped before it finished


async def test_stop_now_has_no_grace_period() -> None:
    api = ScriptedBatchApi(create=[ACTIVE], delete=[{}])
    la = launcher(api)
    await run(la.start(spec(), CREDENTIALS))
    await run(la.stop(now=True))
    assert api.calls[-1][2]["grace_period_seconds"] == 0


async def test_stop_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    api = ScriptedBatchApi(create=[ACTIVE], delete=[api_error(403, "Forbidden")])
    la = launcher(api)
    await run(la.start(spec(), CREDENTIALS))
    with caplog.at_level(logging.ERROR):
        await run(la.stop())
    assert "delete Job" in caplog.text and "403" in caplog.text


# ---------------------------------------------------------------- state


async def test_state_survives_a_restart() -> None:
    api = ScriptedBatchApi(create=[ACTIVE])
    first = launcher(api)
    await run(first.start(spec(), CREDENTIALS))
    state = first.get_state()
    api2 = ScriptedBatchApi(read=[ACTIVE, SUCCEEDED])
    again = launcher(api2, namespace="elsewhere")
    again.load_state(state)
    assert await run(again.poll()) is None
    assert await run(again.poll()) == 0
    assert api2.calls[0][1] == (JOB, "skyscans")  # the namespace from the state


async def test_empty_or_foreign_state_counts_as_gone(caplog: pytest.LogCaptureFixture) -> None:
    api = ScriptedBatchApi()
    la = launcher(api)
    la.load_state({})
    assert await run(la.poll()) == 0
    with caplog.at_level(logging.WARNING):
        la.load_state({"version": 1, "launcher": "local", "pids": {"server": 1}})
    assert "ignored" in caplog.text
    assert await run(la.poll()) == 0
    assert api.calls == []


async def test_old_state_versions_are_read_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    api = ScriptedBatchApi(read=[ACTIVE])
    la = launcher(api)
    with caplog.at_level(logging.WARNING):
        la.load_state({"launcher": "k8s", "job_name": JOB, "namespace": "ns1"})
    assert "version" in caplog.text
    assert await run(la.poll()) is None
    assert api.calls[0][1] == (JOB, "ns1")


# ---------------------------------------------------------------- the retry policy


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (urllib3.exceptions.NewConnectionError(None, "refused"), True),  # type: ignore[arg-type]
        (api_error(429), True),
        (api_error(500), True),
        (api_error(502), True),
        (api_error(503), True),
        (api_error(504), True),
        (api_error(400), False),
        (api_error(401), False),
        (api_error(403, body=QUOTA_BODY), False),
        (api_error(404), False),
        (api_error(409), False),
        (api_error(422), False),
        (ValueError("bad body"), False),
    ],
)
def test_what_is_retryable(exc: BaseException, retry: bool) -> None:
    assert is_retryable(exc) is retry


def test_quota_refusal_detection() -> None:
    assert is_quota_refusal(api_error(403, body=QUOTA_BODY))
    assert not is_quota_refusal(api_error(403, body="forbidden: RBAC"))
    assert not is_quota_refusal(api_error(500, body=QUOTA_BODY))


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(timeout_s=1, retries=5, backoff_s=1.0, backoff_max_s=4.0)
    for attempt, full in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)]:
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays)
        assert len(delays) > 1  # jittered


async def test_call_api_sleeps_between_retries() -> None:
    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    api = ScriptedBatchApi(create=[api_error(503), api_error(503), ACTIVE])
    policy = RetryPolicy(timeout_s=2, retries=3, backoff_s=1.0, backoff_max_s=30)
    await run(
        call_api(
            api.create_namespaced_job, "ns", V1Job(), what="create", policy=policy, sleep=fake_sleep
        )
    )
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


# ---------------------------------------------------------------- the client manager's k8s backend

WORKERS = f"skyscan-workers-{SCAN_ID}"
STARTUP_CM = f"skyscan-startup-{SCAN_ID}"


def k8s_backend(tmp_path: Path, api: ScriptedBatchApi, **overrides: Any) -> K8sBackend:
    startup = tmp_path / "startup.json"
    startup.write_text(json.dumps({"scan_id": SCAN_ID, "event": {}}))
    values: dict[str, Any] = {
        "worker_image": "reg.example/skyscan:4.1.2",
        "k8s_namespace": "skyscans",
        "k8s_owner_job_name": JOB,
        "k8s_owner_job_uid": "uid-1",
        "k8s_api_backoff_s": 0.0,
        "k8s_api_retries": 1,
        "k8s_quota_retry_delay_s": 0.01,
        "broker_address": "mq:5672",
        "pixel_timeout_s": 600,
    }
    values.update(overrides)
    return K8sBackend(
        K8sBackendSettings(**values),
        SCAN_ID,
        startup,
        batch_api=api,
        core_api=api,
        replacements_per_worker=2,
        stop_grace_s=15,
    )


def workers_job(**status: Any) -> V1Job:
    return V1Job(
        metadata=V1ObjectMeta(name=WORKERS),
        spec=V1JobSpec(template=V1PodTemplateSpec()),
        status=V1JobStatus(**status),
    )


def pods(*phases: str) -> V1PodList:
    return V1PodList(items=[V1Pod(status=V1PodStatus(phase=p)) for p in phases])


async def test_backend_start_creates_configmap_then_job(tmp_path: Path) -> None:
    api = ScriptedBatchApi(create_cm=[V1ConfigMap()], create=[workers_job()])
    b = k8s_backend(tmp_path, api)
    await run(b.start(3))
    assert api.names() == ["create_cm", "create"]
    cm = api.calls[0][1][1]
    assert api.calls[0][1][0] == "skyscans"
    assert cm.metadata.name == STARTUP_CM
    assert cm.data == {"startup.json": (tmp_path / "startup.json").read_text()}
    job = api.calls[1][1][1]
    assert job.metadata.name == WORKERS
    assert job.spec.parallelism == job.spec.completions == 3
    assert job.spec.backoff_limit_per_index == 2
    assert [o.uid for o in job.metadata.owner_references] == ["uid-1"]
    assert [o.uid for o in cm.metadata.owner_references] == ["uid-1"]


async def test_backend_conflicts_are_ours(tmp_path: Path) -> None:
    api = ScriptedBatchApi(create_cm=[api_error(409)], create=[api_error(409)])
    b = k8s_backend(tmp_path, api)
    await run(b.start(2))
    assert b.n_requested == 2


async def test_backend_waits_for_a_quota_slot(tmp_path: Path) -> None:
    quota = api_error(403, "Forbidden", QUOTA_BODY)
    api = ScriptedBatchApi(create_cm=[V1ConfigMap()], create=[quota, quota, workers_job()])
    b = k8s_backend(tmp_path, api)
    await run(b.start(2))
    assert api.names() == ["create_cm", "create", "create", "create"]


async def test_backend_gives_up_after_the_quota_wait(tmp_path: Path) -> None:
    quota = api_error(403, "Forbidden", QUOTA_BODY)
    api = ScriptedBatchApi(create_cm=[V1ConfigMap()], create=[quota] * 100)
    b = k8s_backend(tmp_path, api, k8s_quota_wait_s=0.05)
    with pytest.raises(LaunchError) as info:
        await run(b.start(2))
    assert info.value.reason == "quota"


async def test_backend_rbac_refusal_is_a_launch_error(tmp_path: Path) -> None:
    api = ScriptedBatchApi(create_cm=[api_error(403, "Forbidden", "configmaps is forbidden")])
    with pytest.raises(LaunchError, match="HTTP 403"):
        await run(k8s_backend(tmp_path, api).start(2))


async def test_backend_startup_file_too_big_fails_before_any_call(tmp_path: Path) -> None:
    api = ScriptedBatchApi()
    b = k8s_backend(tmp_path, api)
    (tmp_path / "startup.json").write_text("x" * 1_100_000)
    with pytest.raises(ValueError, match="ConfigMap"):
        await run(b.start(2))
    assert api.calls == []


async def test_backend_poll_maps_pods_and_counts_missing_as_pending(tmp_path: Path) -> None:
    api = ScriptedBatchApi(
        create_cm=[V1ConfigMap()],
        create=[workers_job()],
        read=[workers_job(active=2), workers_job(active=3, succeeded=1, failed=1)],
        list_pods=[pods("Pending", "Running"), pods("Running", "Running", "Succeeded", "Failed")],
    )
    b = k8s_backend(tmp_path, api)
    await run(b.start(4))
    w = await run(b.poll())
    assert w.statuses == {WorkerStatus.RUNNING: 1, WorkerStatus.PENDING: 3}
    assert w.n_requested == 4
    selector = api.calls[-1][2]["label_selector"]
    assert selector == f"skydriver/workers-of={SCAN_ID}"
    w = await run(b.poll())
    assert w.statuses == {
        WorkerStatus.RUNNING: 2,
        WorkerStatus.GONE: 1,
        WorkerStatus.FAILED: 1,
        WorkerStatus.PENDING: 1,
    }


async def test_backend_poll_failure_repeats_the_last_answer(tmp_path: Path) -> None:
    api = ScriptedBatchApi(
        create_cm=[V1ConfigMap()], create=[workers_job()], read=[api_error(503)] * 2
    )
    b = k8s_backend(tmp_path, api)
    await run(b.start(3))
    w = await run(b.poll())
    assert w.n_active == 3  # unknown is not dead: the manager must not stop the scan


async def test_backend_add_workers_patches_parallelism_and_completions(tmp_path: Path) -> None:
    api = ScriptedBatchApi(create_cm=[V1ConfigMap()], create=[workers_job()], patch=[workers_job()])
    b = k8s_backend(tmp_path, api)
    await run(b.start(3))
    await run(b.add_workers(2))
    _, args, _ = api.calls[-1]
    assert args == (WORKERS, "skyscans", {"spec": {"parallelism": 5, "completions": 5}})
    assert b.n_requested == 5


async def test_backend_stop_deletes_job_and_configmap_safely(tmp_path: Path) -> None:
    api = ScriptedBatchApi(
        create_cm=[V1ConfigMap()],
        create=[workers_job()],
        delete=[{}, api_error(404)],
        delete_cm=[{}, api_error(404)],
    )
    b = k8s_backend(tmp_path, api)
    await run(b.stop())  # not started: nothing to do
    assert api.calls == []
    await run(b.start(3))
    await run(b.stop())
    await run(b.stop())
    deletes = [c for c in api.calls if c[0] in ("delete", "delete_cm")]
    assert [c[0] for c in deletes] == ["delete", "delete_cm", "delete", "delete_cm"]
    assert deletes[0][1] == (WORKERS, "skyscans")
    assert deletes[0][2]["propagation_policy"] == "Foreground"
    assert deletes[0][2]["grace_period_seconds"] == 15
    assert deletes[1][1] == (STARTUP_CM, "skyscans")


async def test_backend_failed_start_still_cleans_up_on_stop(tmp_path: Path) -> None:
    api = ScriptedBatchApi(
        create_cm=[V1ConfigMap()],
        create=[api_error(422, "Invalid")],
        delete=[api_error(404)],
        delete_cm=[{}],
    )
    b = k8s_backend(tmp_path, api)
    with pytest.raises(LaunchError):
        await run(b.start(2))
    await run(b.stop())
    assert api.names() == ["create_cm", "create", "delete", "delete_cm"]
