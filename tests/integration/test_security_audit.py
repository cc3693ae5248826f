"""One regression test per finding of the security audit of 2026-12 (../shared/reviews/security-audit-2026-12.md),
named after it, against the real service, database, broker and processes. Each failed on the audited code.

Findings tested elsewhere, under the same names: #2 and #4 (the broker path: tests/integration/
test_broker_path.py), #6 and #11 (tests/unit/test_k8s_objects.py, tests/unit/test_k8s_launcher.py), #9 and
#15 (tests/unit/test_auth.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import yaml
from pymongo import AsyncMongoClient

from skydriver.app import SkyDriver
from skydriver.auth import Role
from skydriver.broker import RabbitMQAccounts
from skydriver.launch.local import LocalLauncher, process_start_time
from skyscan_contract.documents import InstanceRecord, InstanceState
from skyscan_contract.queues import scan_vhost, to_clients_queue
from tests.conftest import (
    drop_database,
    headers,
    running_skydriver,
    start_test_skydriver,
)
from tests.conftest import (
    test_settings as settings_for,  # not a test: the name would be collected
)
from tests.doubles import HeldLauncher
from tests.helpers import REPO, broker_get, broker_users, broker_vhosts, scan_body, wait_for

HELD = {"held": HeldLauncher}


async def post(client: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    return await client.post("/scan", json=scan_body(**overrides))


def reason(resp: httpx.Response) -> str:
    return str(resp.json().get("error", ""))


# ---------------------------------------------------------------- 1. instance settings from users


async def test_audit_1_scan_settings_cannot_take_over_the_instance(api: httpx.AsyncClient) -> None:
    for env in (
        {"SKYSCAN_SKYDRIVER_ADDRESS": "http://127.0.0.1:18556"},  # a relay collecting the token
        {"SKYSCAN_BROKER_ADDRESS": "guest@127.0.0.1:18557"},
        {"SKYSCAN_SKYDRIVER_SCAN_ID": "0" * 32},
        {"LD_PRELOAD": "/tmp/evil.so"},
        {"PYTHONPATH": "/tmp"},
        {"HTTPS_PROXY": "http://127.0.0.1:1"},
    ):
        resp = await post(api, scanner_server_env=env)
        assert resp.status_code == 400, (env, resp.text)
        assert f"{next(iter(env))} cannot be set by a scan" in reason(resp)
    # values are checked by the scanner's own setting types at submit, not in a crash loop later
    resp = await post(api, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": "fast"})
    assert resp.status_code == 400 and "SKYSCAN_DUMMY_SLEEP_S='fast'" in reason(resp)
    resp = await post(api, scanner_server_env={"SKYSCAN_LOG": "LOUD"})
    assert resp.status_code == 400 and "SKYSCAN_LOG" in reason(resp)
    resp = await post(api, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": "x" * 5000})
    assert resp.status_code == 400 and "longer than" in reason(resp)
    # what a scan may set is accepted (and the original's own clients' names)
    ok = {"SKYSCAN_DUMMY_SLEEP_S": 0.5, "SKYSCAN_LOG": "debug", "SKYSCAN_MINI_TEST": True}
    assert (await post(api, scanner_server_env=ok)).status_code == 200


async def test_audit_1_and_14_instances_get_nothing_of_skydrivers_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real local instance: its processes' environment holds SkyDriver's variables for it (SkyDriver's
    own win over the user's), and not SkyDriver's other variables (a database URI with its password)."""
    monkeypatch.setenv("MONGODB_URI_MARKER", "mongodb://root:SECRET@db")
    async with running_skydriver(tmp_path) as sky:
        async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as client:
            resp = await post(client, scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.3})
            scan_id = resp.json()["scan_id"]
            state = Path(sky.settings.state_dir).resolve() / "scans" / scan_id / "instance.json"

            async def server_env() -> dict[str, str] | None:
                if not state.exists():
                    return None
                pid = json.loads(state.read_text())["pids"].get("server")
                try:
                    raw = Path(f"/proc/{pid}/environ").read_bytes()
                except OSError:
                    return None
                return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)

            env = await wait_for(server_env, 30, "the scan's server to run")
            assert "MONGODB_URI_MARKER" not in env
            assert env["SKYSCAN_SKYDRIVER_ADDRESS"] == sky.settings.url
            assert env["SKYSCAN_SKYDRIVER_SCAN_ID"] == scan_id
            assert env["SKYSCAN_BROKER_ADDRESS"].startswith(f"skyscan-{scan_id}@")  # its own user
            assert env["SKYSCAN_DUMMY_SLEEP_S"] == "0.3"
            assert (await client.delete(f"/scan/{scan_id}")).status_code == 200


# ---------------------------------------------------------------- 3. health probes


def probe_paths() -> set[str]:
    """Every HTTP probe path of the manifests and the Docker HEALTHCHECK of Dockerfile.server."""
    paths: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, sub in node.items():
                if key in ("readinessProbe", "livenessProbe", "startupProbe") and "httpGet" in sub:
                    paths.add(sub["httpGet"]["path"])
                walk(sub)
        elif isinstance(node, list):
            for sub in node:
                walk(sub)

    for path in sorted((REPO / "k8s").rglob("*.yaml")):
        walk(list(yaml.safe_load_all(path.read_text())))
    health = re.search(
        r"HEALTHCHECK.*?urlopen\('http://127\.0\.0\.1:%s(/\S*)'",
        (REPO / "Dockerfile.server").read_text(),
        re.S,
    )
    assert health is not None
    paths.add(health.group(1))
    return paths


async def test_audit_3_every_probe_path_answers_without_a_token(held_skydriver: SkyDriver) -> None:
    paths = probe_paths()
    assert paths == {"/healthz"}
    async with httpx.AsyncClient(base_url=held_skydriver.settings.url) as anon:
        for path in paths:
            resp = await anon.get(path)
            assert resp.status_code == 200, (path, resp.text)
            assert resp.json()["healthy"] is True
    # and it tells: a stopped background runner makes the pod unhealthy (503)
    runner = next(t for t in held_skydriver.tasks if t.get_name() == "backlog-runner")
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    async with httpx.AsyncClient(base_url=held_skydriver.settings.url) as anon:
        resp = await anon.get("/healthz")
    assert resp.status_code == 503 and resp.json()["checks"]["backlog-runner"] == "stopped"


# ---------------------------------------------------------------- 5. scan tokens


async def test_audit_5_a_scan_token_cannot_rewrite_history(tmp_path: Path) -> None:
    # the test ends instances itself (check_all), not a watcher running every 0.3 s
    async with running_skydriver(
        tmp_path, {"held": HeldLauncher}, launcher="held", instance_poll_interval_s=3600
    ) as sky:
        await _a_scan_token_cannot_rewrite_history(sky)


async def _a_scan_token_cannot_rewrite_history(sky: SkyDriver) -> None:
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as user:
        scan_id = (await post(user)).json()["scan_id"]
        other_id = (await post(user)).json()["scan_id"]
    mine = headers(sky, Role.SYSTEM, scan_id=scan_id)
    result = {"nside-1": {"columns": [], "data": [], "metadata": {}}}
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=mine) as instance:
        assert (
            await instance.put(
                f"/scan/{scan_id}/result", json={"skyscan_result": result, "is_final": True}
            )
        ).status_code == 200
        # a final result is final: neither a partial one nor a new final one replaces it
        for is_final in (False, True):
            resp = await instance.put(
                f"/scan/{scan_id}/result", json={"skyscan_result": result, "is_final": is_final}
            )
            assert resp.status_code == 409 and "final result" in reason(resp), resp.text
        resp = await instance.patch(f"/scan/{scan_id}/manifest", json={"scan_metadata": {"a": 1}})
        assert resp.status_code == 409
        # a scan token neither rescans nor deletes (its own scan or another)
        for path in (f"/scan/{scan_id}/actions/rescan", f"/scan/{other_id}/actions/rescan"):
            assert (await instance.post(path, json={"abort_first": True})).status_code == 403
        assert (await instance.delete(f"/scan/{scan_id}")).status_code == 403
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as user:

        async def running() -> bool:  # started by the backlog (a scan deleted before never runs)
            status = (await user.get(f"/scan/{other_id}/status")).json()
            return bool(status["instance"].get("state") == "running")

        await wait_for(running, 30, "the other scan's instance to run")
        assert (await user.delete(f"/scan/{other_id}")).status_code == 200
    other = headers(sky, Role.SYSTEM, scan_id=other_id)
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=other) as instance:
        # nothing is written to a deleted scan
        resp = await instance.put(
            f"/scan/{other_id}/result", json={"skyscan_result": result, "is_final": False}
        )
        assert resp.status_code == 409 and "deleted" in reason(resp)
        # once the scan's instance has ended, its token opens nothing at all
        assert (await instance.get(f"/scan/{other_id}/status")).status_code == 200
        await sky.watcher.check_all()  # type: ignore[union-attr]  # the held instance ends
        await wait_for(
            lambda: _ended(sky, other_id), 10, "the deleted scan's instance to be recorded ended"
        )
        resp = await instance.get(f"/scan/{other_id}/status")
        assert resp.status_code == 403
        assert reason(resp) == "authorization failed: the scan instance of this token has ended"


async def _ended(sky: SkyDriver, scan_id: str) -> bool:
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as user:
        status = (await user.get(f"/scan/{scan_id}/status")).json()
    return bool(status["instance"].get("state") == "ended")


# ---------------------------------------------------------------- 7. limits


async def test_audit_7_no_unbounded_request(api: httpx.AsyncClient) -> None:
    for overrides, words in (
        ({"nsides": {"1048576": 0}}, "finer than the largest nside"),
        ({"nsides": {"1": 0, "1099511627776": 1000000000}}, "finer than the largest nside"),
        ({"nsides": {"8": 0, "64": 100000}}, "more than 200000"),
        ({"request_clusters": {"local": 1000000}}, "Too many workers"),
        ({"request_clusters": [["local", 30], ["local", 30]]}, "Too many workers"),
        ({"worker_memory": "900P"}, "more than the maximum"),
        ({"scanner_server_memory": "1T"}, "more than the maximum"),
        ({"priority": 10**18}, "less than or equal to 1000000"),
    ):
        resp = await post(api, **overrides)
        assert resp.status_code == 400, (overrides, resp.text)
        assert words in reason(resp), (overrides, reason(resp))
    # the realtime lane (which ignores the running-scans cap) only for the users the deployment names
    resp = await post(api, priority=100)
    assert resp.status_code == 403 and "SKYDRIVER_REALTIME_USERS" in reason(resp)


async def test_audit_7_add_workers_is_bounded(
    api: httpx.AsyncClient, held_skydriver: SkyDriver
) -> None:
    scan_id = (await post(api, request_clusters={"local": 2})).json()["scan_id"]

    async def running() -> bool:
        manifest = (await api.get(f"/scan/{scan_id}/manifest")).json()
        return bool((manifest.get("instance") or {}).get("state") == "running")

    await wait_for(running, 20, "the held instance to run")
    path = f"/scan/{scan_id}/actions/add-workers"
    resp = await api.post(path, json={"n_workers": 10**9, "cluster_location": "local"})
    assert resp.status_code == 400 and "Too many workers" in reason(resp)
    resp = await api.post(path, json={"n_workers": 31, "cluster_location": "local"})  # 2 + 31 > 32
    assert resp.status_code == 400
    resp = await api.post(path, json={"n_workers": 30, "cluster_location": "local"})
    assert resp.status_code == 200
    # the requests add up: 2 + 30 + 1 > 32
    resp = await api.post(path, json={"n_workers": 1, "cluster_location": "local"})
    assert resp.status_code == 400


async def test_audit_17_find_is_capped(tmp_path: Path) -> None:
    async with running_skydriver(
        tmp_path, {"held": HeldLauncher}, launcher="held", find_max_results=3
    ) as sky:
        async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as client:
            ids = [(await post(client)).json()["scan_id"] for _ in range(5)]
            found = (await client.post("/scans/find", json={"filter": {}})).json()["manifests"]
    assert [m["scan_id"] for m in found] == ids[::-1][:3]  # the newest first


# ---------------------------------------------------------------- 8. bodies


async def test_audit_8_no_body_is_read_before_the_caller_is_known(
    held_skydriver: SkyDriver,
) -> None:
    """A request without credentials announcing 45 MB is refused on its headers: the server does not wait
    for (and buffer) the body."""
    port = held_skydriver.settings.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /scan HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 45000000\r\n\r\n{"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 403"), status_line


# ---------------------------------------------------------------- 10. crash windows


async def test_audit_10_what_a_crash_leaves_half_done_is_repaired_at_start(tmp_path: Path) -> None:
    """Three crash windows, made in the database as a dying SkyDriver leaves them, then a restart on the
    same database: an orphaned scan (no backlog entry) starts, a backlog entry of a deleted scan goes,
    and an interrupted start (instance `starting`, claim held) starts at once, and each scan once."""
    HeldLauncher.started = []
    first = await start_test_skydriver(tmp_path, HELD, launcher="held", max_running_scans=1)
    database = first.settings.mongodb_database
    try:
        async with httpx.AsyncClient(base_url=first.settings.url, headers=headers(first)) as c:
            running = (await post(c)).json()["scan_id"]  # takes the only slot
            await wait_for(lambda: _async(len(HeldLauncher.started) == 1), 20, "one scan to start")
            orphan, deleted, interrupted = [(await post(c)).json()["scan_id"] for _ in range(3)]
        await first.stop(stop_instances=False)  # dies with three queued scans
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(first.settings.mongodb_uri)
        mdb = client[database]
        await mdb["ScanBacklog"].delete_one({"scan_id": orphan})  # died between manifest and entry
        await mdb["Manifests"].update_one({"scan_id": deleted}, {"$set": {"is_deleted": True}})
        await mdb["ScanBacklog"].update_one(  # claimed, then died inside start()
            {"scan_id": interrupted},
            {"$set": {"pending_timestamp": time.time(), "next_attempt": 1}},
        )
        starting = InstanceRecord(state=InstanceState.STARTING, launcher="held")
        await mdb["Manifests"].update_one(
            {"scan_id": interrupted}, {"$set": {"instance": starting.model_dump(mode="json")}}
        )
        await client.close()
        HeldLauncher.started = []
        second = await start_test_skydriver(
            tmp_path, HELD, launcher="held", mongodb_database=database
        )
        try:
            await wait_for(
                lambda: _async(
                    sorted(s.scan_id for s in HeldLauncher.started) == sorted([orphan, interrupted])
                ),
                20,
                "the orphaned and the interrupted scans to start",
            )

            async def backlog_empty() -> bool:  # started scans leave the backlog
                return await second.db.backlog.count_documents({}) == 0

            await wait_for(
                backlog_empty, 20, "the backlog to be empty (the deleted scan's dropped)"
            )
            assert running not in {s.scan_id for s in HeldLauncher.started}  # it ran already
            assert len(HeldLauncher.started) == 2  # each once
        finally:
            await second.stop()
    finally:
        await drop_database(database)


async def _async(value: Any) -> Any:
    return value


# ---------------------------------------------------------------- 12. pid reuse


async def test_audit_12_a_stored_pid_that_is_not_the_scans_is_never_signalled(
    tmp_path: Path,
) -> None:
    """After a restart the local launcher finds the scan's pids in its state; a pid now used by another
    process (its start time differs) is treated as gone, and stop() does not signal it."""
    bystander = subprocess.Popen(  # noqa: ASYNC220 - a bystander process, started once
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        start = process_start_time(bystander.pid)
        assert start is not None
        launcher = LocalLauncher(settings_for(tmp_path), "0" * 32)
        launcher.load_state(
            {
                "version": 2,
                "launcher": "local",
                "pids": {"server": bystander.pid, "client-manager": bystander.pid},
                "start_times": {"server": start - 1, "client-manager": start - 1},
            }
        )
        assert await launcher.poll() is not None  # not ours: the instance is gone
        await launcher.stop(now=True)
        assert bystander.poll() is None  # still alive: never signalled
        # the same pid WITH its start time is ours
        launcher.load_state(
            {
                "version": 2,
                "launcher": "local",
                "pids": {"server": bystander.pid},
                "start_times": {"server": start},
            }
        )
        assert await launcher.poll() is None
        await launcher.stop(now=True)
        assert process_start_time(bystander.pid) is None  # signalled (and reaped by the launcher)
    finally:
        if bystander.poll() is None:
            bystander.kill()


# ---------------------------------------------------------------- 13. inputs that gave 500s


async def test_audit_13_unstorable_input_is_a_400_naming_it(api: httpx.AsyncClient) -> None:
    deep = "[" * 2000 + "]" * 2000
    for raw, words in (
        ('{"filter": {"a": ' + deep + "}}", "nested deeper"),
        ('{"filter": {"a": "\\ud800"}}', "invalid Unicode"),
        ('{"filter": {"a": NaN}}', "NaN is not allowed"),
        ('{"filter": {"a": Infinity}}', "Infinity is not allowed"),
        ('{"filter": {"a": ' + "9" * 5001 + "}}", "not valid JSON"),
    ):
        resp = await api.post("/scans/find", content=raw)
        assert resp.status_code == 400, (raw[:40], resp.text)
        assert words in reason(resp), reason(resp)
    resp = await api.post(
        "/scan", content=json.dumps(scan_body(classifiers={"x": 1.0})).replace("1.0", "NaN")
    )
    assert resp.status_code == 400 and "NaN" in reason(resp)


# ---------------------------------------------------------------- 14. broker isolation


async def test_audit_14_a_scans_broker_user_reaches_only_its_own_queues(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    accounts = RabbitMQAccounts(settings)
    a, b = "a" * 11 + "x" + "0" * 20, "b" * 11 + "x" + "0" * 20
    try:
        access_a = await accounts.create(a)
        await accounts.create(b)
        user_a = access_a.address.split("@")[0]
        url = f"amqp://{user_a}:{access_a.password}@127.0.0.1:5672/"
        # its own vhost: it may declare, publish and read
        conn = await aio_pika.connect(url + scan_vhost(a))
        async with conn:
            channel = await conn.channel()
            queue = await channel.declare_queue(to_clients_queue(a), durable=True)
            await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=queue.name)
        # another scan's vhost, or the default one: refused at the door (no read, publish or delete)
        for vhost in (scan_vhost(b), ""):
            assert not await can_connect(url + vhost), vhost
        permissions = await broker_get(f"/api/users/{user_a}/permissions")
        assert [p["vhost"] for p in permissions] == [scan_vhost(a)]
    finally:
        await accounts.remove(a)
        await accounts.remove(b)
        await accounts.close()
    assert {scan_vhost(a), scan_vhost(b)} & await broker_vhosts() == set()
    assert {scan_vhost(a), scan_vhost(b)} & await broker_users() == set()


async def can_connect(url: str) -> bool:
    try:
        conn = await asyncio.wait_for(aio_pika.connect(url), 10)
    except (aio_pika.exceptions.AMQPError, asyncio.CancelledError, ConnectionError):
        return False  # RabbitMQ closes the connection: access refused to that vhost
    await conn.close()
    return True


# ---------------------------------------------------------------- 16. forwarded headers


async def test_audit_16_redirects_and_logs_ignore_client_forwarding_headers(
    held_skydriver: SkyDriver, api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    old = (await post(api)).json()["scan_id"]
    new = (await api.post(f"/scan/{old}/actions/rescan", json={"replace_scan": True})).json()[
        "scan_id"
    ]
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        resp = await api.get(
            f"/scan/{old}/status",
            headers={"Host": "evil.example", "X-Scheme": "https", "X-Real-Ip": "6.6.6.6"},
            follow_redirects=False,
        )
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"{held_skydriver.settings.url}/scan/{new}/status"
    assert "6.6.6.6" not in caplog.text


# ---------------------------------------------------------------- 17. accountability


async def test_audit_17_who_did_what_and_what_others_see(held_skydriver: SkyDriver) -> None:
    sky = held_skydriver
    alice = {
        "Authorization": "Bearer "
        + sky.token_issuer.issue_token(Role.USER, subject="alice", ttl_s=600)
    }  # type: ignore[union-attr]
    bob = {
        "Authorization": "Bearer "
        + sky.token_issuer.issue_token(Role.USER, subject="bob", ttl_s=600)
    }  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=sky.settings.url) as client:
        resp = await client.post(
            "/scan", json=scan_body(scanner_server_env={"SKYSCAN_DUMMY_SEED": 7}), headers=alice
        )
        scan_id = resp.json()["scan_id"]
        assert resp.json()["created_by"] == "alice"

        async def started() -> dict[str, Any] | None:
            manifest = (await client.get(f"/scan/{scan_id}/manifest", headers=bob)).json()
            return manifest if (manifest.get("instance") or {}).get("state") == "running" else None

        manifest = await wait_for(started, 20, "the held instance to run")
        assert "launcher_state" not in manifest["instance"]  # no pids or paths for users
        own = (await client.get(f"/scan-request/{scan_id}", headers=alice)).json()
        theirs = (await client.get(f"/scan-request/{scan_id}", headers=bob)).json()
        assert own["scanner_server_env_from_user"] == {"SKYSCAN_DUMMY_SEED": 7}
        assert theirs["scanner_server_env_from_user"] == {"SKYSCAN_DUMMY_SEED": "<redacted>"}
        deleted = (await client.delete(f"/scan/{scan_id}", headers=bob)).json()["manifest"]
    assert deleted["deleted_by"] == "bob" and deleted["created_by"] == "alice"
