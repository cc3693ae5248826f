"""Every route × method × caller over HTTP against the real SkyDriver (real database, a launcher that starts
nothing), checked against a table written by hand from the API reference (`shared/reference/skydriver-api.md`
§1–2) and the README ("Using it", "Differences from the original") — never from the `@requires` declarations, so
a wrong declaration fails here.

Callers: no token; a user token; a system token (unscoped, as SkyDriver's own sidecars); a system token scoped to
the scan in the path (what a scan's server and client manager get); a system token scoped to another scan.
Every request is one that passes validation, so an allowed caller gets the route's real answer (the status in
the table) and a refused one gets 403: "authentication failed: no token" without a token, "authorization failed: <reason>"
otherwise ("wrong scan" for the other scan's token on a route the system role may call). Each caller works on a scan of its own, so what one caller changes (a PATCH, a DELETE) cannot change
another's answer. A route or method served by the app, or listed in its OpenAPI document, without a row here
fails `test_every_route_and_method_has_a_row`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx
import tornado.web

from skydriver.app import SkyDriver
from skydriver.auth import Role
from tests.conftest import headers
from tests.helpers import scan_body, wait_for

NONE, USER, SYSTEM, THIS, OTHER = "none", "user", "system", "system/this scan", "system/other scan"
CALLERS = (NONE, USER, SYSTEM, THIS, OTHER)
AUTHENTICATION_FAILED = "authentication failed"
AUTHORIZATION_FAILED = "authorization failed"
AUTHORIZATION_REASONS = ("wrong role", "wrong scan", "a token limited to one scan cannot do this")

Body = Callable[[str], Any] | None


class Row(NamedTuple):
    method: str
    path: str  # {scan_id}: the calling column's own scan
    none: int
    user: int
    system: int
    this: int
    other: int
    body: Body = None
    #: a server-sent-event stream: the status is read from the headers, then the stream is left
    stream: bool = False


def _progress_patch(scan_id: str) -> dict[str, Any]:
    return {"scan_metadata": {"scan_id": scan_id}}


def _partial_result(scan_id: str) -> dict[str, Any]:
    return {"skyscan_result": {}, "is_final": False}


def _workforce(scan_id: str) -> dict[str, Any]:
    return {
        "backend": "local",
        "statuses": {"running": 1},
        "n_running": 1,
        "n_failed": 0,
        "n_requested": 1,
    }


# fmt: off
#   U = user only, S = system only, U+S = both (reference §2 "Roles"); a scoped system token opens only routes
#   whose scan_id is its scan (README, "Using it": the scan's instance gets "a system token scoped to that scan").
MATRIX: list[Row] = [
    #    method    path                                       none user sys  this other
    # the API document, public: README "served at GET /openapi.json" (the API routes all need a token)
    Row("GET",    "/openapi.json",                             200, 200, 200, 200, 200),
    # health, public: the Kubernetes probes and the Docker HEALTHCHECK call it without a token
    Row("GET",    "/healthz",                                  200, 200, 200, 200, 200),
    Row("GET",    "/",                                         403, 200, 403, 403, 403),  # U
    Row("POST",   "/scans/find",                               403, 200, 403, 403, 403,
        lambda s: {"filter": {"scan_id": s}}),                                            # U
    Row("GET",    "/scans/backlog",                            403, 200, 403, 403, 403),  # U
    # ours: push instead of poll (README "Events and webhooks")
    Row("GET",    "/scans/events",                             403, 200, 403, 403, 403, stream=True),
    Row("GET",    "/scan/{scan_id}/events",                    403, 200, 200, 200, 403, stream=True),
    Row("GET",    "/webhooks",                                 403, 200, 403, 403, 403),
    Row("POST",   "/webhooks",                                 403, 200, 403, 403, 403,
        lambda s: {"url": "http://127.0.0.1:9/hook", "scan_id": s}),
    Row("GET",    "/webhooks/{webhook_id}",                    403, 200, 403, 403, 403),
    Row("DELETE", "/webhooks/{webhook_id}",                    403, 200, 403, 403, 403),
    Row("POST",   "/scan",                                     403, 200, 403, 403, 403,
        lambda s: scan_body()),                                                           # U
    Row("GET",    "/scan-request/{scan_id}",                   403, 200, 403, 403, 403),  # U
    Row("GET",    "/scan/{scan_id}",                           403, 200, 200, 200, 403),  # U+S
    Row("GET",    "/scan/{scan_id}/manifest",                  403, 200, 200, 200, 403),  # U+S (the scanner reads it)
    Row("PATCH",  "/scan/{scan_id}/manifest",                  403, 403, 200, 200, 403,
        _progress_patch),                                                                 # S: the scanner's progress
    Row("GET",    "/scan/{scan_id}/i3-event",                  403, 200, 200, 200, 403),  # U+S (the scanner's event)
    Row("GET",    "/scan/{scan_id}/status",                    403, 200, 200, 200, 403),  # U+S (kill-switch poll)
    Row("GET",    "/scan/{scan_id}/logs",                      403, 200, 403, 403, 403),  # U
    # U in the original; here also S: a restarted scanner server reads its partial result to resume (README)
    Row("GET",    "/scan/{scan_id}/result",                    403, 200, 200, 200, 403),
    Row("PUT",    "/scan/{scan_id}/result",                    403, 403, 200, 200, 403,
        _partial_result),                                                                 # S: the scanner's results
    # ours, in place of EWMS (README "Differences"): the client manager's report and its worker requests
    Row("GET",    "/scan/{scan_id}/workforce",                 403, 403, 200, 200, 403),  # S
    Row("PUT",    "/scan/{scan_id}/workforce",                 403, 403, 200, 200, 403,
        _workforce),                                                                      # S
    # U+S (the original's pod watchdog); never a scan instance's own token (security audit #5)
    Row("POST",   "/scan/{scan_id}/actions/rescan",            403, 200, 200, 403, 403,
        lambda s: {}),
    Row("POST",   "/scan/{scan_id}/actions/add-workers",       403, 200, 403, 403, 403,
        lambda s: {"n_workers": 1, "cluster_location": "local"}),                         # U
    Row("DELETE", "/scan/{scan_id}",                           403, 200, 403, 403, 403,
        lambda s: {}),                                                                    # U (last: it deletes)
]
# fmt: on


def expected(row: Row, caller: str) -> int:
    return {NONE: row.none, USER: row.user, SYSTEM: row.system, THIS: row.this, OTHER: row.other}[
        caller
    ]


def refusal_problem(row: Row, caller: str, answer: Any) -> str | None:
    """What is wrong with a 403's body, if anything: no token → "authentication failed: no token"; a token →
    "authorization failed: <a reason>", and "wrong scan" for a scan route system tokens may call."""
    error = answer.get("error", "") if isinstance(answer, dict) else ""
    if answer != {"code": 403, "error": error}:
        return "want a 403 error body"
    if caller == NONE:
        want = f"{AUTHENTICATION_FAILED}: no token"
        return None if error == want else f"want {want!r}"
    prefix, _, why = error.partition(": ")
    if prefix != AUTHORIZATION_FAILED or why not in AUTHORIZATION_REASONS:
        return f"want {AUTHORIZATION_FAILED!r} with one of {AUTHORIZATION_REASONS}"
    if caller == OTHER and "{scan_id}" in row.path and row.system != 403 and why != "wrong scan":
        return "want 'wrong scan'"
    return None


def served_routes(sky: SkyDriver) -> set[tuple[str, str]]:
    """(METHOD, path template) of every handler method the running app serves."""
    app = sky.server.request_callback
    assert isinstance(app, tornado.web.Application)
    out: set[tuple[str, str]] = set()
    for rule in app.wildcard_router.rules:
        regex = getattr(rule.matcher, "regex", None)
        handler = rule.target
        if regex is None or not isinstance(handler, type):
            continue
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", regex.pattern.rstrip("$"))
        for name in ("get", "head", "post", "put", "patch", "delete", "options"):
            if getattr(handler, name) is not getattr(tornado.web.RequestHandler, name):
                out.add((name.upper(), path))
    return out


async def test_every_route_and_method_has_a_row(held_skydriver: SkyDriver) -> None:
    rows = {(r.method, r.path) for r in MATRIX}
    assert len(rows) == len(MATRIX), "a route and method appears twice in MATRIX"
    served = served_routes(held_skydriver)
    assert ("GET", "/scan/{scan_id}/manifest") in served  # the route table was read
    assert served - rows == set(), "served routes without a row in MATRIX"
    async with httpx.AsyncClient(base_url=held_skydriver.settings.url) as client:
        document = (await client.get("/openapi.json")).json()
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert ("PATCH", "/scan/{scan_id}/manifest") in documented  # the document was read
    assert documented - rows == set(), "routes in the OpenAPI document without a row in MATRIX"
    assert rows - served == set(), "rows in MATRIX for routes the app does not serve"


async def test_every_caller_gets_what_the_table_says(held_skydriver: SkyDriver) -> None:
    sky = held_skydriver
    url = sky.settings.url
    async with httpx.AsyncClient(base_url=url, headers=headers(sky), timeout=30) as user:

        async def new_scan() -> str:
            resp = await user.post("/scan", json=scan_body())
            assert resp.status_code == 200, resp.text
            return str(resp.json()["scan_id"])

        scans = {caller: await new_scan() for caller in CALLERS}
        decoy = await new_scan()  # the scan the "other scan" token is scoped to

        async def all_running() -> (
            bool
        ):  # add-workers needs a running instance (the held launcher's)
            for scan_id in [*scans.values(), decoy]:
                manifest = (await user.get(f"/scan/{scan_id}/manifest")).json()
                if (manifest.get("instance") or {}).get("state") != "running":
                    return False
            return True

        await wait_for(all_running, 30, "every scan's instance to be running")
        # a webhook of the user's own (the USER column's token has the same subject)
        hook = await user.post("/webhooks", json={"url": "http://127.0.0.1:9/hook"})
        assert hook.status_code == 200, hook.text
        webhook_id = hook.json()["id"]

    caller_headers = {
        NONE: {},
        USER: headers(sky, Role.USER),
        SYSTEM: headers(sky, Role.SYSTEM),
        THIS: headers(sky, Role.SYSTEM, scan_id=scans[THIS]),
        OTHER: headers(sky, Role.SYSTEM, scan_id=decoy),
    }
    mismatches: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for row in MATRIX:
            for caller in CALLERS:
                scan_id = scans[caller]
                path = row.path.format(scan_id=scan_id, webhook_id=webhook_id)
                body = row.body(scan_id) if row.body is not None else None
                if row.stream:
                    async with client.stream(
                        row.method, path, headers=caller_headers[caller]
                    ) as resp:
                        if resp.status_code != 200:
                            await resp.aread()  # an error answer: read it whole
                else:
                    resp = await client.request(
                        row.method, path, json=body, headers=caller_headers[caller]
                    )
                want = expected(row, caller)
                streamed = row.stream and resp.status_code == 200  # its body never ends
                got = f"{resp.status_code} {'<stream>' if streamed else resp.text[:120]}"
                if resp.status_code != want:
                    mismatches.append(
                        f"{row.method} {row.path} as {caller}: want {want}, got {got}"
                    )
                elif want == 403 and (why := refusal_problem(row, caller, resp.json())):
                    mismatches.append(f"{row.method} {row.path} as {caller}: {why}, got {got}")
    assert not mismatches, "\n".join(mismatches)
