"""Every route of the reference API against the real service and database (launcher held: scans stay put)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from skydriver.app import SkyDriver
from skydriver.rest.routes import openapi_document
from tests.helpers import DEMO_EVENT, scan_body, wait_for


async def post_scan(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    resp = await api.post("/scan", json=scan_body(**overrides))
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def expect_error(resp: httpx.Response, status: int, message: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == status
    assert message in body["error"], body["error"]
    assert message[:40] in resp.reason_phrase  # the message is also the reason phrase


# -- POST /scan ------------------------------------------------------------------------------------
async def test_launch_returns_the_fresh_manifest(api: httpx.AsyncClient) -> None:
    m = await post_scan(api, classifiers={"_TEST": True})
    assert len(m["scan_id"]) == 32 and m["scan_id"][11] == "x"
    assert m["is_deleted"] is False
    assert m["ewms_workflow_id"] == "not-yet-requested"
    assert m["event_i3live_json_dict"] == "use 'i3_event_id'"
    assert m["classifiers"] == {"_TEST": True}
    for key in ("scan_metadata", "progress", "replaced_by_scan_id"):
        assert m[key] is None
    # known at once (for `scans find`), before any scanner reported it
    demo = json.loads(DEMO_EVENT.read_text())
    assert m["event_metadata"] == {
        key: demo[key] for key in ("run_id", "event_id", "event_type", "mjd", "is_real_event")
    }
    assert m["last_updated"] >= m["timestamp"]
    assert (
        "--reco-algo dummy" in m["scanner_server_args"]
        and "--nsides 1:0 2:12 4:12" in m["scanner_server_args"]
    )


async def test_launch_aliases_sizes_and_cluster_forms(api: httpx.AsyncClient) -> None:
    body = scan_body(scanner_server_memory="1G", worker_memory="2GiB", worker_disk=123)
    body.pop("request_clusters")
    body["cluster"] = [["local", 1], ["local", 2]]
    body["event_i3live_json"] = json.dumps(
        body["event_i3live_json"]
    )  # as the original client sends it
    resp = await api.post("/scan", json=body)
    assert resp.status_code == 200, resp.text
    request = (await api.get(f"/scan-request/{resp.json()['scan_id']}")).json()
    assert request["scanner_server_memory_bytes"] == 1_000_000_000
    assert request["worker_memory_bytes"] == 2 * 1024**3
    assert request["worker_disk_bytes"] == 123
    assert request["request_clusters"] == [["local", 1], ["local", 2]]
    assert request["docker_tag"] == "4.2.1"  # "latest" resolved


@pytest.mark.parametrize(
    "change, message",
    [
        ({"docker_tag": None}, "'docker_tag' is a required property"),
        ({"scan_id": "x"}, "Additional properties are not allowed ('scan_id' was unexpected)"),
        ({"request_clusters": None}, "'request_clusters' is a required property"),
        ({"request_clusters": {"osg": 1}}, "requested unknown cluster: osg (available: local)"),
        ({"i3_event_id": "abc"}, "Must provide either 'event_i3live_json' or 'i3_event_id' (xor)"),
        (
            {"event_i3live_json": None},
            "Must provide either 'event_i3live_json' or 'i3_event_id' (xor)",
        ),
        ({"event_i3live_json": "{not json"}, "event_i3live_json is not valid JSON"),
        ({"classifiers": {"rescan": True}}, "classifier cannot contain 'rescan' sub-field"),
        (
            {"classifiers": {"origin_scan_id": "x"}},
            "classifier cannot contain 'origin_scan_id' sub-field",
        ),
        ({"classifiers": {f"k{i}": i for i in range(26)}}, "'classifiers'"),
        ({"worker_memory": "12 parsecs"}, "invalid size"),
        ({"memory": "8GB"}, "argument 'memory' is deprecated -- use 'worker_memory_bytes'"),
        ({"docker_tag": "9.9.9"}, "argument docker_tag: image not found"),
        ({"docker_tag": "3.1.2"}, "argument docker_tag: image not found"),
        ({"nsides": {"8": 12}}, "first nside's extension must be 0"),
        ({"reco_algo": "millipede_original"}, "unknown algorithm 'millipede_original'"),
        ({"max_pixel_reco_time": 0}, "'max_pixel_reco_time'"),
        ({"real_or_simulated_event": "maybe"}, "'real_or_simulated_event'"),
        (
            {"debug_mode": "client-logs", "request_clusters": {"local": 6}},
            "Too many workers: Cluster 'local' can only have 5 workers when 'debug_mode' includes 'client-logs'",
        ),
    ],
)
async def test_launch_rejects_bad_requests(
    api: httpx.AsyncClient, change: dict[str, Any], message: str
) -> None:
    body = scan_body()
    for key, value in change.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    await expect_error(await api.post("/scan", json=body), 400, message)
    assert (await api.get("/scans/backlog")).json()["entries"] == []  # nothing stored


async def test_i3live_event_for_a_physics_reco_is_422(api: httpx.AsyncClient) -> None:
    i3live = {
        "value": {
            "data": {
                "run_id": 138632,
                "event_id": 1,
                "eventtime": "2023-12-02 17:08:24.093230",
                "neutrino": {},
            }
        }
    }
    resp = await api.post("/scan", json=scan_body(reco_algo="pandel_mpe", event_i3live_json=i3live))
    await expect_error(resp, 422, "needs a pulse-event/1 event")
    resp = await api.post("/scan", json=scan_body(event_i3live_json=i3live))  # dummy accepts it
    assert resp.status_code == 200, resp.text


async def test_reuse_an_event_by_id(api: httpx.AsyncClient) -> None:
    first = await post_scan(api)
    second = await post_scan(api, event_i3live_json={}, i3_event_id=first["i3_event_id"])
    assert second["i3_event_id"] == first["i3_event_id"] and second["scan_id"] != first["scan_id"]
    await expect_error(
        await api.post("/scan", json=scan_body(event_i3live_json={}, i3_event_id="nope")),
        400,
        "i3 event not found",
    )


async def test_manifest_projection_in_launch(api: httpx.AsyncClient) -> None:
    m = await post_scan(api, manifest_projection=["scan_id", "priority"])
    assert set(m) == {"scan_id", "priority"}


# -- manifest, status, result ----------------------------------------------------------------------
async def test_manifest_patch_is_write_once_for_metadata(
    api: httpx.AsyncClient, sys_api: httpx.AsyncClient
) -> None:
    launched = await post_scan(api)
    scan_id, meta = launched["scan_id"], launched["event_metadata"]
    resp = await sys_api.patch(
        f"/scan/{scan_id}/manifest", json={"event_metadata": meta, "scan_metadata": {"a": 1}}
    )
    assert resp.status_code == 200 and resp.json()["event_metadata"] == meta
    same = await sys_api.patch(f"/scan/{scan_id}/manifest", json={"event_metadata": meta})
    assert same.status_code == 200
    other = {**meta, "run_id": 9}
    await expect_error(
        await sys_api.patch(f"/scan/{scan_id}/manifest", json={"event_metadata": other}),
        400,
        "Cannot change an existing event_metadata",
    )
    await expect_error(
        await sys_api.patch(f"/scan/{scan_id}/manifest", json={"scan_metadata": {"a": 2}}),
        400,
        "Cannot change an existing scan_metadata",
    )
    await expect_error(
        await sys_api.patch("/scan/0000000000000000000000000000000x/manifest", json={}),
        404,
        "Not Found",
    )
    projected = (
        await api.get(f"/scan/{scan_id}/manifest", params={"projection": "scan_id|event_metadata"})
    ).json()
    assert set(projected) == {"scan_id", "event_metadata"}


async def test_progress_is_replaced_and_drives_the_state(
    api: httpx.AsyncClient, sys_api: httpx.AsyncClient
) -> None:
    scan_id = (await post_scan(api))["scan_id"]

    async def state() -> str:
        return str((await api.get(f"/scan/{scan_id}/status")).json()["scan_state"])

    await wait_for(
        lambda: _eq(state(), "PENDING__WAITING_ON_SCANNER_SERVER_STARTUP"), 30, "the held launch"
    )
    progress = {
        "summary": "s",
        "epilogue": "e",
        "tallies": {"x. y": 1},
        "processing_stats": {"rate": {}},
        "predictive_scanning_threshold": 1.0,
        "last_updated": "now",
        "start": 1,
        "end": None,
    }
    await sys_api.patch(f"/scan/{scan_id}/manifest", json={"progress": progress})
    assert await state() == "IN_PROGRESS__WAITING_ON_FIRST_PIXEL_RECO"
    progress["processing_stats"] = {"rate": {"all recos": {}}}
    await sys_api.patch(f"/scan/{scan_id}/manifest", json={"progress": progress})
    assert await state() == "IN_PROGRESS__PARTIAL_RESULT_GENERATED"
    manifest = (await api.get(f"/scan/{scan_id}/manifest")).json()
    assert manifest["progress"]["tallies"] == {
        "x. y": 1
    }  # keys with dots survive (stored as JSON text)


async def _eq(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_results(api: httpx.AsyncClient, sys_api: httpx.AsyncClient) -> None:
    scan_id = (await post_scan(api))["scan_id"]
    assert (await api.get(f"/scan/{scan_id}/result")).json() == {}
    assert (
        await sys_api.put(f"/scan/{scan_id}/result", json={"skyscan_result": {}, "is_final": False})
    ).json() == {}
    assert (await api.get(f"/scan/{scan_id}/result")).json() == {}  # {} stores nothing
    result = {"nside-1": {"columns": ["index"], "data": [[0, 1.0]], "metadata": {"nside": 1}}}
    put = await sys_api.put(
        f"/scan/{scan_id}/result", json={"skyscan_result": result, "is_final": True}
    )
    assert put.json() == {"scan_id": scan_id, "skyscan_result": result, "is_final": True}
    assert (await api.get(f"/scan/{scan_id}/result")).json()["skyscan_result"] == result
    status = (await api.get(f"/scan/{scan_id}/status")).json()
    assert status["scan_state"] == "SCAN_HAS_FINAL_RESULT" and status["scan_complete"] is True
    await expect_error(
        await sys_api.put(
            "/scan/0000000000000000000000000000000x/result",
            json={"skyscan_result": result, "is_final": True},
        ),
        404,
        "Not Found",
    )
    await expect_error(
        await sys_api.put(f"/scan/{scan_id}/result", json={"skyscan_result": [], "is_final": True}),
        400,
        "'skyscan_result'",
    )


async def test_get_scan_and_event(api: httpx.AsyncClient) -> None:
    m = await post_scan(api)
    both = (await api.get(f"/scan/{m['scan_id']}")).json()
    assert both["manifest"]["scan_id"] == m["scan_id"] and both["result"] == {}
    event = (await api.get(f"/scan/{m['scan_id']}/i3-event")).json()
    assert event["i3_event"] == json.loads(DEMO_EVENT.read_text())
    await expect_error(await api.get("/scan/0000000000000000000000000000000x"), 404, "Not Found")


# -- delete ----------------------------------------------------------------------------------------
async def test_delete(api: httpx.AsyncClient) -> None:
    scan_id = (await post_scan(api))["scan_id"]
    resp = await api.request("DELETE", f"/scan/{scan_id}")
    assert resp.status_code == 200 and resp.json()["manifest"]["is_deleted"] is True
    assert (await api.request("DELETE", f"/scan/{scan_id}")).status_code == 200  # idempotent
    await expect_error(await api.get(f"/scan/{scan_id}/manifest"), 404, "Not Found")
    assert (
        await api.get(f"/scan/{scan_id}/manifest", params={"include_deleted": "True"})
    ).status_code == 200
    status = (await api.get(f"/scan/{scan_id}/status")).json()
    assert status["is_deleted"] is True and status["ewms_deactivated"] == "ABORTED"


async def test_delete_completed_scan_needs_the_flag(
    api: httpx.AsyncClient, sys_api: httpx.AsyncClient
) -> None:
    scan_id = (await post_scan(api))["scan_id"]
    result = {"nside-1": {"columns": ["index"], "data": [[0]], "metadata": {"nside": 1}}}
    await sys_api.put(f"/scan/{scan_id}/result", json={"skyscan_result": result, "is_final": True})
    await expect_error(
        await api.request("DELETE", f"/scan/{scan_id}"),
        400,
        "Attempted to delete a completed scan (must use `delete_completed_scan=True`)",
    )
    resp = await api.request("DELETE", f"/scan/{scan_id}", json={"delete_completed_scan": True})
    assert resp.status_code == 200


async def test_deleting_a_backlogged_scan_removes_its_entry(tmp_path: Any) -> None:
    from tests.conftest import headers, running_skydriver
    from tests.doubles import HeldLauncher

    async with running_skydriver(
        tmp_path, {"held": HeldLauncher}, launcher="held", backlog_runner_short_delay_s=3600
    ) as sky:
        async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as client:
            # the runner wakes on POST; delete right away and check the entry is gone either way
            scan_id = (await client.post("/scan", json=scan_body())).json()["scan_id"]
            await client.request("DELETE", f"/scan/{scan_id}")
            entries = (await client.get("/scans/backlog")).json()["entries"]
            assert scan_id not in [e["scan_id"] for e in entries]


# -- find, backlog, scan-request -------------------------------------------------------------------
async def test_find(api: httpx.AsyncClient) -> None:
    a = await post_scan(api, classifiers={"tag": "a"})
    b = await post_scan(api, classifiers={"tag": "b"})
    found = (await api.post("/scans/find", json={"filter": {"classifiers.tag": "a"}})).json()[
        "manifests"
    ]
    assert [m["scan_id"] for m in found] == [a["scan_id"]]
    assert "event_i3live_json_dict" not in found[0]
    await api.request("DELETE", f"/scan/{b['scan_id']}")
    flt = {"classifiers.tag": {"$in": ["a", "b"]}}
    assert len((await api.post("/scans/find", json={"filter": flt})).json()["manifests"]) == 1
    assert (
        len(
            (await api.post("/scans/find", json={"filter": flt, "include_deleted": True})).json()[
                "manifests"
            ]
        )
        == 2
    )
    only = (
        await api.post("/scans/find", json={"filter": flt, "manifest_projection": ["scan_id"]})
    ).json()
    assert only["manifests"] == [{"scan_id": a["scan_id"]}]
    await expect_error(
        await api.post(
            "/scans/find", json={"filter": {}, "manifest_projection": ["event_i3live_json_dict"]}
        ),
        400,
        "'manifest_projection' cannot include any of the following",
    )
    await expect_error(
        await api.post("/scans/find", json={"filter": {"$where": "1"}}),
        400,
        "$where is not allowed",
    )
    await expect_error(
        await api.post("/scans/find", json={}), 400, "'filter' is a required property"
    )


async def test_backlog_lists_waiting_scans(tmp_path: Any) -> None:
    from tests.conftest import headers, running_skydriver
    from tests.doubles import FailingLauncher

    async with running_skydriver(
        tmp_path,
        {"failing": FailingLauncher},
        launcher="failing",
        backlog_runner_short_delay_s=3600,
    ) as sky:
        async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as client:
            ids = [
                (await client.post("/scan", json=scan_body())).json()["scan_id"] for _ in range(2)
            ]
            entries = (await client.get("/scans/backlog")).json()["entries"]
            assert [e["scan_id"] for e in entries] == ids  # oldest first
            assert set(entries[0]) == {
                "scan_id",
                "timestamp",
                "priority",
                "pending_timestamp",
                "next_attempt",
            }


async def test_scan_request(api: httpx.AsyncClient) -> None:
    m = await post_scan(api)
    req = (await api.get(f"/scan-request/{m['scan_id']}")).json()
    assert (
        req["scan_id"] == m["scan_id"] and req["rescan_ids"] == [] and req["reco_algo"] == "dummy"
    )
    await expect_error(
        await api.get("/scan-request/0000000000000000000000000000000x"),
        404,
        "Scan request not found",
    )


# -- rescan and redirects --------------------------------------------------------------------------
async def test_rescan_and_replace_redirects(api: httpx.AsyncClient) -> None:
    old = await post_scan(api, classifiers={"k": "v"})
    resp = await api.post(f"/scan/{old['scan_id']}/actions/rescan", json={"replace_scan": True})
    assert resp.status_code == 200, resp.text
    new = resp.json()
    assert new["scan_id"] != old["scan_id"]
    assert new["classifiers"] == {"k": "v", "rescan": True, "origin_scan_id": old["scan_id"]}
    for key in set(old) - {"scan_id", "timestamp", "last_updated", "classifiers"}:
        assert new[key] == old[key], key
    # the rescan id resolves to the request it came from (a gap of the original)
    assert (await api.get(f"/scan-request/{new['scan_id']}")).json()["rescan_ids"] == [
        new["scan_id"]
    ]
    for sub in ("", "/manifest", "/status", "/result", "/i3-event", "/logs"):
        r = await api.get(f"/scan/{old['scan_id']}{sub}", follow_redirects=False)
        assert r.status_code == 302, sub
        assert r.headers["location"].endswith(f"/scan/{new['scan_id']}{sub}")
        r = await api.get(
            f"/scan/{old['scan_id']}{sub}", params={"no_redirect": "true"}, follow_redirects=False
        )
        assert r.status_code == 200, sub
    await expect_error(
        await api.post("/scan/0000000000000000000000000000000x/actions/rescan", json={}),
        404,
        "Not Found",
    )


async def test_rescan_abort_first(api: httpx.AsyncClient) -> None:
    old = await post_scan(api)
    await api.post(f"/scan/{old['scan_id']}/actions/rescan", json={"abort_first": True})
    assert (await api.get(f"/scan/{old['scan_id']}/status")).json()["is_deleted"] is True


async def test_add_workers_rules(api: httpx.AsyncClient, sys_api: httpx.AsyncClient) -> None:
    m = await post_scan(api)
    scan_id = m["scan_id"]

    async def running() -> bool:
        manifest = (await api.get(f"/scan/{scan_id}/manifest")).json()
        return (manifest.get("instance") or {}).get("state") == "running"

    await wait_for(running, 30, "the held launcher to start the scan")
    resp = await api.post(
        f"/scan/{scan_id}/actions/add-workers", json={"n_workers": 3, "cluster_location": "local"}
    )
    assert resp.status_code == 200 and resp.json()["n_workers"] == 3
    requests = (await sys_api.get(f"/scan/{scan_id}/workforce")).json()["worker_requests"]
    assert [r["n_workers"] for r in requests] == [3]
    await expect_error(
        await api.post(
            f"/scan/{scan_id}/actions/add-workers",
            json={"n_workers": 0, "cluster_location": "local"},
        ),
        400,
        "'n_workers'",
    )
    await api.request("DELETE", f"/scan/{scan_id}")
    await expect_error(
        await api.post(
            f"/scan/{scan_id}/actions/add-workers",
            json={"n_workers": 1, "cluster_location": "local"},
        ),
        422,
        "this scan has been deleted--cannot add workers",
    )


# -- conventions -----------------------------------------------------------------------------------
async def test_unknown_route_and_bad_json(api: httpx.AsyncClient) -> None:
    await expect_error(await api.get("/nope"), 404, "Not Found")
    await expect_error(
        await api.post("/scan", content=b"{nope"), 400, "request body is not valid JSON"
    )
    await expect_error(
        await api.post("/scan", content=b"[1]"), 400, "request body must be a JSON object"
    )


async def test_body_size_limit_is_413(tmp_path: Any) -> None:
    from tests.conftest import headers, running_skydriver
    from tests.doubles import HeldLauncher

    async with running_skydriver(
        tmp_path, {"held": HeldLauncher}, launcher="held", max_request_body_bytes=4096
    ) as sky:
        async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as client:
            body = scan_body(classifiers={"x": "y"})
            body["event_i3live_json"]["pulses"] = [[1, 1, float(i), 1.0] for i in range(500)]
            resp = await client.post("/scan", json=body)
            await expect_error(resp, 413, "larger than the limit of 4096")


async def test_openapi_document_is_served_and_committed(api: httpx.AsyncClient) -> None:
    from pathlib import Path

    served = (await api.get("/openapi.json")).json()
    assert served == openapi_document()
    committed = json.loads(
        (Path(__file__).resolve().parents[2] / "skydriver" / "openapi.json").read_text()
    )
    assert committed == served, (
        "skydriver/openapi.json is stale: run python -m skydriver.rest.routes"
    )
    assert "/scans/find" in served["paths"] and "ScanPostBody" in served["components"]["schemas"]


async def test_concurrent_writes_to_one_scan_are_all_kept(
    api: httpx.AsyncClient, sys_api: httpx.AsyncClient
) -> None:
    """FerretDB v1 loses concurrent updates to one document; SkyDriver serialises its writes per scan."""
    scan_id = (await post_scan(api))["scan_id"]
    workforce = {
        "backend": "local",
        "statuses": {"RUNNING": 1},
        "n_running": 1,
        "n_failed": 0,
        "n_requested": 1,
    }
    meta = (await api.get(f"/scan/{scan_id}/manifest")).json()["event_metadata"]
    progress = {
        "summary": "busy",
        "epilogue": "",
        "tallies": {},
        "processing_stats": {},
        "predictive_scanning_threshold": 1.0,
        "last_updated": "2026-12-01 00:00:00",
    }
    import asyncio

    await asyncio.gather(
        *(sys_api.put(f"/scan/{scan_id}/workforce", json=workforce) for _ in range(20)),
        sys_api.patch(
            f"/scan/{scan_id}/manifest", json={"event_metadata": meta, "scan_metadata": {"a": 1}}
        ),
        sys_api.patch(f"/scan/{scan_id}/manifest", json={"progress": progress}),
    )
    manifest = (await api.get(f"/scan/{scan_id}/manifest")).json()
    assert manifest["scan_metadata"] == {"a": 1} and manifest["event_metadata"] == meta
    assert manifest["progress"]["summary"] == "busy"
    assert manifest["workforce"]["n_running"] == 1


async def test_every_route_checks_roles_both_ways(
    api: httpx.AsyncClient, held_skydriver: SkyDriver
) -> None:
    """No token: 403 authentication failed. A token without a role the method declares: 403
    authorization failed. A system token scoped to another scan: 403 authorization failed."""
    from skydriver.auth import Role, handler_roles
    from skydriver.rest.routes import ROUTES
    from tests.conftest import headers

    scan_id = (await post_scan(api))["scan_id"]
    checked = 0
    async with httpx.AsyncClient(base_url=held_skydriver.settings.url) as anon:
        for pattern, handler in ROUTES:
            path = pattern.replace(r"(?P<scan_id>\w+)", scan_id).replace(
                r"(?P<webhook_id>\w+)", "0" * 32
            )
            for method, roles in handler_roles(handler).items():
                if not roles:  # @public (/healthz): open to anyone by design
                    continue
                await expect_error(
                    await anon.request(method, path), 403, "authentication failed: no token"
                )
                for role in (Role.USER, Role.SYSTEM):
                    if role not in roles:
                        resp = await anon.request(
                            method, path, headers=headers(held_skydriver, role)
                        )
                        await expect_error(resp, 403, "authorization failed: wrong role")
                if "scan_id" in pattern and Role.SYSTEM in roles:
                    other = headers(held_skydriver, Role.SYSTEM, scan_id="someotherscan")
                    await expect_error(
                        await anon.request(method, path, headers=other),
                        403,
                        "authorization failed: wrong scan",
                    )
                checked += 1
        assert (await anon.get("/openapi.json")).status_code == 200  # the API document is public
    assert checked == sum(1 for _, h in ROUTES for r in handler_roles(h).values() if r) == 24


async def test_system_caller_gets_the_event_in_the_manifest(
    api: httpx.AsyncClient, sys_api: httpx.AsyncClient
) -> None:
    scan_id = (await post_scan(api))["scan_id"]
    as_user = (await api.get(f"/scan/{scan_id}/manifest")).json()
    assert as_user["event_i3live_json_dict"] == "use 'i3_event_id'"
    as_system = (await sys_api.get(f"/scan/{scan_id}/manifest")).json()
    assert as_system["event_i3live_json_dict"] == json.loads(DEMO_EVENT.read_text())


async def test_every_route_declares_roles() -> None:
    from skydriver.auth import undeclared_methods
    from skydriver.rest.routes import ROUTES

    assert {h.__name__: undeclared_methods(h) for _, h in ROUTES if undeclared_methods(h)} == {}
