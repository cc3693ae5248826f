"""The client library and CLI against scripted answers (httpx.MockTransport): what a real server cannot be
made to do on demand, such as failing with 5xx or refusing connections, plus error mapping, the token
header, progress parsing and the exported names. No sockets: an autouse fixture refuses them."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import skydriver_client
from skydriver_client import (
    AsyncClient,
    Client,
    Forbidden,
    InvalidEvent,
    InvalidRequest,
    Manifest,
    PayloadTooLarge,
    ResultNotReady,
    ScanConflict,
    ScanFailed,
    ScanNotFound,
    ScanProgress,
    ScanRequest,
    ScanStatus,
    ServerError,
    ServiceUnavailable,
    SkyDriverError,
    UnexpectedResponse,
    WaitTimeout,
    _cli,
    _core,
)

URL = "http://skydriver.test"
SCAN_ID = "18f0c2a1b2cx0123456789abcdef0123"
EVENT = {"format": "pulse-event/1", "run_id": 1, "event_id": 2}
REAL_DELAY = _core.RetryPolicy.delay_s  # before no_backoff replaces it


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("unit tests must not open network connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without waiting, also for clients built by the CLI."""
    monkeypatch.setattr(_core.RetryPolicy, "delay_s", lambda self, attempt: 0.0)


Reply = httpx.Response | Exception


class Script:
    """A fake server: answers each request with the next scripted reply, and records the requests."""

    def __init__(self, *replies: Reply | Callable[[httpx.Request], Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        reply = self.replies.pop(0)
        if callable(reply) and not isinstance(reply, httpx.Response):
            reply = reply(request)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def client(self, **kwargs: Any) -> Client:
        return Client(URL, transport=httpx.MockTransport(self), **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncClient:
        return AsyncClient(URL, transport=httpx.MockTransport(self), **kwargs)


def ok(data: Any) -> httpx.Response:
    return httpx.Response(200, json=data)


def fail(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"code": status, "error": message})


def status_doc(state: str, **kw: Any) -> dict[str, Any]:
    return {
        "scan_state": state,
        "is_deleted": False,
        "ewms_deactivated": None,
        "scan_complete": state == "SCAN_HAS_FINAL_RESULT",
        "scanner_server_logs": {"url": f"{URL}/scan/{SCAN_ID}/logs"},
        "ewms_workforce": {"workflow_id": "wf", "statuses": {}, "n_running": 2, "top_errors": {}},
    } | kw


def report(done1: int, done2: int, gen2: int, finished: bool = False) -> dict[str, Any]:
    """A progress report in the scanner's shape (skymap_scanner/server/progress.py)."""

    def block(done: float, generated: float) -> dict[str, Any]:
        return {"done": done, "done est. percent": "", "generated": generated}

    return {
        "summary": "The Skymap Scanner has finished." if finished else "in progress",
        "epilogue": "",
        "tallies": {
            "nsides": {
                "1": {"recos": block(done1, 12), "pixels": block(done1, 12.0)},
                "2": {"recos": block(done2, gen2), "pixels": block(done2, float(gen2))},
            },
            "overall": {},
        },
        "processing_stats": {
            "start": {},
            "runtime": {"elapsed": "0:00:10"},
            "rate": {"all recos": {"wall time": {"mean reco": "0:00:00.250000"}}},
            "end": "",
            "finished": finished,
            "predictions": {
                "time left": "0:01:02.500000",
                "time left range": {"low": "0:01:02.500000", "high": "0:01:30"},
            }
            if not finished
            else {},
        },
        "predictive_scanning_threshold": 1.0,
        "last_updated": "2026-01-01 00:00:00",
        "start": 0,
        "end": None,
    }


def manifest_doc(progress: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return {"scan_id": SCAN_ID, "timestamp": 1.0, "is_deleted": False, "progress": progress} | kw


# -- the public names ------------------------------------------------------------------------------
def test_exported_members() -> None:
    """`__all__` lists exactly the public names (httpx tests/test_exported_members.py)."""
    public = sorted(name for name in dir(skydriver_client) if not name.startswith("_"))
    assert public == sorted(skydriver_client.__all__)
    assert len(set(skydriver_client.__all__)) == len(skydriver_client.__all__)


def test_errors_are_one_tree_shared_with_the_server() -> None:
    from skyscan_contract import errors

    for name in skydriver_client.__all__:
        member = getattr(skydriver_client, name)
        if isinstance(member, type) and issubclass(member, Exception):
            assert issubclass(member, errors.SkyDriverError), name
    assert skydriver_client.ScanNotFound is errors.ScanNotFound
    assert issubclass(ServerError, ServiceUnavailable)


# -- retries ------------------------------------------------------------------------------------------
def test_5xx_then_success_is_retried() -> None:
    script = Script(fail(503, "busy"), fail(500, "oops"), ok(status_doc("PENDING__PRESTARTUP")))
    with script.client() as sd:
        status = sd.status(SCAN_ID)
    assert status.scan_state == "PENDING__PRESTARTUP"
    assert len(script.requests) == 3


def test_5xx_every_time_raises_server_error_after_the_retries() -> None:
    script = Script(*[fail(503, "database is down")] * 3)
    with script.client(retries=2) as sd, pytest.raises(ServerError) as err:
        sd.status(SCAN_ID)
    assert len(script.requests) == 3
    assert err.value.status == 503 and err.value.message == "database is down"
    assert any("3 attempts" in note for note in err.value.__notes__)


def test_connection_error_retries_then_service_unavailable() -> None:
    script = Script(*[httpx.ConnectError("connection refused")] * 4)
    with script.client(retries=3) as sd, pytest.raises(ServiceUnavailable) as err:
        sd.manifest(SCAN_ID)
    assert len(script.requests) == 4
    assert isinstance(err.value.__cause__, httpx.ConnectError)
    assert "after 4 attempts" in err.value.message and URL in err.value.message


def test_no_retries_when_retries_is_zero() -> None:
    script = Script(fail(502, "bad gateway"))
    with script.client(retries=0) as sd, pytest.raises(ServerError):
        sd.status(SCAN_ID)
    assert len(script.requests) == 1


def test_idempotent_call_retried_after_read_timeout() -> None:
    script = Script(httpx.ReadTimeout("slow"), ok({"entries": [{"scan_id": SCAN_ID}]}))
    with script.client() as sd:
        assert sd.backlog() == [{"scan_id": SCAN_ID}]
    assert len(script.requests) == 2


def test_launch_is_not_retried_on_5xx() -> None:
    script = Script(fail(503, "busy"))
    with script.client() as sd, pytest.raises(ServerError):
        sd.launch(EVENT, real_event=True, reco_algo="dummy")
    assert len(script.requests) == 1


def test_launch_is_not_retried_when_the_request_may_have_been_sent() -> None:
    script = Script(httpx.ReadTimeout("no answer"))
    with script.client() as sd, pytest.raises(ServiceUnavailable) as err:
        sd.launch(EVENT, real_event=True, reco_algo="dummy")
    assert len(script.requests) == 1
    assert "not retried" in err.value.message


def test_launch_is_retried_when_the_connection_failed_before_sending() -> None:
    script = Script(httpx.ConnectError("refused"), ok(manifest_doc()))
    with script.client() as sd:
        assert sd.launch(EVENT, real_event=True, reco_algo="dummy").scan_id == SCAN_ID
    assert len(script.requests) == 2


def test_backoff_grows_and_is_jittered() -> None:
    policy = _core.RetryPolicy(retries=5, backoff_s=1.0, max_backoff_s=4.0)
    for attempt, cap in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)]:
        delays = [REAL_DELAY(policy, attempt) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)


# -- requests and answers ---------------------------------------------------------------------------
def test_token_is_sent_as_bearer_header() -> None:
    script = Script(ok(status_doc("PENDING__PRESTARTUP")))
    with script.client(token="s3cret") as sd:
        sd.status(SCAN_ID)
        assert "s3cret" not in repr(sd)
    assert script.requests[0].headers["Authorization"] == "Bearer s3cret"


def test_no_authorization_header_without_token() -> None:
    script = Script(ok(status_doc("PENDING__PRESTARTUP")))
    with script.client() as sd:
        sd.status(SCAN_ID)
    assert "Authorization" not in script.requests[0].headers


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (400, InvalidRequest),
        (401, Forbidden),
        (403, Forbidden),
        (404, ScanNotFound),
        (409, ScanConflict),
        (413, PayloadTooLarge),
        (422, InvalidEvent),
        (418, SkyDriverError),
    ],
)
def test_error_mapping(code: int, cls: type[SkyDriverError]) -> None:
    script = Script(fail(code, f"the server's reason {code}"))
    with script.client() as sd, pytest.raises(SkyDriverError) as err:
        sd.status(SCAN_ID)
    assert type(err.value) is cls
    assert err.value.status == code
    assert err.value.message == str(err.value) == f"the server's reason {code}"
    assert f"GET {URL}/scan/{SCAN_ID}/status answered {code}" in err.value.__notes__


def test_error_without_json_body_uses_the_reason_phrase() -> None:
    script = Script(httpx.Response(404, text="<html>nope</html>"))
    with script.client() as sd, pytest.raises(ScanNotFound) as err:
        sd.status(SCAN_ID)
    assert err.value.message == "Not Found"


def test_success_that_is_not_json_is_an_unexpected_response() -> None:
    script = Script(httpx.Response(200, text="<html>login page</html>"))
    with script.client() as sd, pytest.raises(UnexpectedResponse, match="not JSON"):
        sd.status(SCAN_ID)


def test_bad_scan_id_is_refused_before_sending() -> None:
    script = Script()
    with script.client() as sd, pytest.raises(InvalidRequest):
        sd.status("../scans/backlog")
    assert script.requests == []


def test_redirect_is_followed_with_the_same_method_body_and_token() -> None:
    new_id = "18f0c2a1b2cxffffffffffffffffffff"
    script = Script(
        httpx.Response(302, headers={"Location": f"{URL}/scan/{new_id}/actions/rescan"}),
        ok(manifest_doc(scan_id="18f0c2a1b2cx00000000000000000000")),
    )
    with script.client(token="t") as sd:
        sd.rescan(SCAN_ID, replace_scan=True)
    first, second = script.requests
    assert (second.method, second.url.path) == ("POST", f"/scan/{new_id}/actions/rescan")
    assert json.loads(second.content) == json.loads(first.content)
    assert second.headers["Authorization"] == "Bearer t"


def test_redirect_to_another_host_is_not_followed() -> None:
    script = Script(httpx.Response(302, headers={"Location": "http://elsewhere.test/steal"}))
    with script.client(token="t") as sd, pytest.raises(UnexpectedResponse, match="another server"):
        sd.status(SCAN_ID)
    assert len(script.requests) == 1


def test_launch_body() -> None:
    script = Script(ok(manifest_doc()))
    with script.client() as sd:
        sd.launch(
            EVENT,
            real_event=False,
            reco_algo="dummy",
            nsides="1:0 2:12",
            cluster={"local": 2},
            scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.02},
            worker_memory_bytes="2G",
        )
    body = json.loads(script.requests[0].content)
    assert body["event_i3live_json"] == EVENT and "i3_event_id" not in body
    assert body["nsides"] == {"1": 0, "2": 12}
    assert body["request_clusters"] == [["local", 2]]
    assert body["real_or_simulated_event"] == "simulated"
    assert body["scanner_server_env"] == {"SKYSCAN_DUMMY_SLEEP_S": 0.02}
    assert body["worker_memory_bytes"] == "2G"
    assert (body["reco_algo"], body["docker_tag"], body["max_pixel_reco_time"]) == (
        "dummy",
        "latest",
        3600,
    )


def test_scan_request_reads_event_files_and_rejects_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(EVENT))
    for event in (path, str(path), json.dumps(EVENT)):
        assert (
            ScanRequest.build(event, real_event=True, reco_algo="dummy").event_i3live_json == EVENT
        )
    assert ScanRequest.build(
        i3_event_id="abc", real_event=True, reco_algo="dummy", cluster="osg:100,local:2"
    ).body()["request_clusters"] == [["osg", 100], ["local", 2]]
    path.write_text("{not json")
    with pytest.raises(InvalidEvent, match="not valid JSON"):
        ScanRequest.build(path, real_event=True, reco_algo="dummy")
    with pytest.raises(InvalidRequest, match="nsides"):
        ScanRequest.build(EVENT, real_event=True, reco_algo="dummy", nsides="8-0")
    with pytest.raises(InvalidRequest, match="either"):
        ScanRequest.build(EVENT, i3_event_id="abc", real_event=True, reco_algo="dummy")
    with pytest.raises(FileNotFoundError):
        ScanRequest.build(tmp_path / "missing.json", real_event=True, reco_algo="dummy")


def test_progress_from_a_scanner_report() -> None:
    progress = ScanProgress.from_manifest(Manifest.model_validate(manifest_doc(report(12, 5, 20))))
    assert progress.started and not progress.finished
    assert [(n.nside, n.pixels_done, n.pixels_generated) for n in progress.nsides] == [
        (1, 12, 12),
        (2, 5, 20),
    ]
    assert (progress.pixels_done, progress.pixels_generated) == (17, 32)
    assert progress.recos_per_s == pytest.approx(4.0)
    assert progress.eta_s == pytest.approx(62.5)
    assert progress.elapsed_s == pytest.approx(10.0)
    empty = ScanProgress.from_manifest(Manifest.model_validate(manifest_doc(None)))
    assert not empty.started and empty.nsides == [] and empty.eta_s is None


def test_result_before_any_result_is_result_not_ready() -> None:
    script = Script(ok({}))
    with script.client() as sd, pytest.raises(ResultNotReady):
        sd.result(SCAN_ID)


# -- wait ------------------------------------------------------------------------------------------
def wait_script(*states: tuple[str, dict[str, Any] | None]) -> Script:
    replies: list[Reply] = []
    for state, progress in states:
        replies += [ok(status_doc(state)), ok(manifest_doc(progress))]
    return Script(*replies)


def test_wait_reports_changed_progress_and_returns_the_final_status() -> None:
    script = wait_script(
        ("PENDING__PRESTARTUP", None),
        ("IN_PROGRESS__PARTIAL_RESULT_GENERATED", report(6, 0, 0)),
        ("IN_PROGRESS__PARTIAL_RESULT_GENERATED", report(6, 0, 0)),
        ("SCAN_HAS_FINAL_RESULT", report(12, 20, 20, finished=True)),
    )
    seen: list[ScanProgress] = []
    with script.client() as sd:
        final = sd.wait(SCAN_ID, poll_s=0.001, on_progress=seen.append)
    assert final.scan_complete
    assert [p.pixels_done for p in seen] == [0, 6, 32]  # the unchanged report is not repeated
    assert seen[-1].scan_state == "SCAN_HAS_FINAL_RESULT" and seen[-1].eta_s == 0.0


def test_wait_raises_scan_failed_when_the_scan_is_aborted() -> None:
    script = Script(ok(status_doc("ABORTED__PARTIAL_RESULT_GENERATED", ewms_deactivated="ABORTED")))
    with script.client() as sd, pytest.raises(ScanFailed) as err:
        sd.wait(SCAN_ID, poll_s=0.001)
    assert err.value.status_doc.scan_state.startswith("ABORTED")


def test_wait_raises_wait_timeout() -> None:
    script = Script(*[ok(status_doc("PENDING__PRESTARTUP"))] * 1000)
    with script.client() as sd, pytest.raises(WaitTimeout):
        sd.wait(SCAN_ID, poll_s=0.01, timeout_s=0.05)


# -- the async twin --------------------------------------------------------------------------------
async def test_async_client_retries_maps_errors_and_sends_the_token() -> None:
    script = Script(
        httpx.ConnectError("refused"),
        fail(503, "busy"),
        ok(status_doc("PENDING__PRESTARTUP")),
        fail(404, "no such scan"),
    )
    async with script.async_client(token="t") as sd:
        assert (await sd.status(SCAN_ID)).scan_state == "PENDING__PRESTARTUP"
        with pytest.raises(ScanNotFound, match="no such scan"):
            await sd.manifest(SCAN_ID)
    assert len(script.requests) == 4
    assert all(r.headers["Authorization"] == "Bearer t" for r in script.requests)


async def test_async_wait_awaits_an_async_callback() -> None:
    script = wait_script(
        ("IN_PROGRESS__WAITING_ON_FIRST_PIXEL_RECO", report(0, 0, 0)),
        ("SCAN_HAS_FINAL_RESULT", report(12, 20, 20, finished=True)),
    )
    seen: list[int] = []

    async def record(progress: ScanProgress) -> None:
        seen.append(progress.pixels_done)

    async with script.async_client() as sd:
        status = await sd.wait(SCAN_ID, poll_s=0.001, on_progress=record)
    assert isinstance(status, ScanStatus) and status.scan_complete
    assert seen == [0, 32]


def test_the_twins_have_the_same_public_methods() -> None:
    def methods(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}

    assert methods(Client) - {"close"} == methods(AsyncClient) - {"aclose"}


# -- the command line ------------------------------------------------------------------------------
@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., int]]:
    monkeypatch.delenv("SKYDRIVER_URL", raising=False)
    monkeypatch.delenv("SKYDRIVER_TOKEN", raising=False)

    def run(script: Script, *argv: str) -> int:
        return _cli.main(["--url", URL, *argv], transport=httpx.MockTransport(script))

    yield run


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (fail(400, "bad"), 2),
        (fail(422, "bad event"), 2),
        (fail(404, "no such scan"), 3),
        (fail(403, "authentication failed"), 4),
        (httpx.ConnectError("refused"), 5),
        (fail(500, "boom"), 5),
    ],
)
def test_cli_exit_codes(
    cli: Callable[..., int], reply: Reply, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(Script(*[reply] * 4), "scan", "status", SCAN_ID) == code
    assert "skydriver: error:" in capsys.readouterr().err


def test_cli_status_json_and_text(
    cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli(Script(ok(status_doc("PENDING__PRESTARTUP"))), "scan", "status", SCAN_ID, "--json") == 0
    )
    assert json.loads(capsys.readouterr().out)["scan_state"] == "PENDING__PRESTARTUP"
    script = Script(
        ok(status_doc("IN_PROGRESS__PARTIAL_RESULT_GENERATED")), ok(manifest_doc(report(12, 5, 20)))
    )
    assert cli(script, "scan", "status", SCAN_ID) == 0
    out = capsys.readouterr().out
    assert (
        "IN_PROGRESS__PARTIAL_RESULT_GENERATED" in out
        and "17/32 pixels" in out
        and "ETA 0:01:02" in out
    )


def test_cli_wait_prints_a_line_per_update_when_not_a_terminal_and_exits_1_on_abort(
    cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    script = wait_script(
        ("IN_PROGRESS__PARTIAL_RESULT_GENERATED", report(6, 0, 0)),
        ("ABORTED__PARTIAL_RESULT_GENERATED", report(12, 3, 20)),
    )
    assert cli(script, "scan", "wait", SCAN_ID, "--poll-s", "0.001") == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "pixels" in ln]
    assert lines[0].startswith("IN_PROGRESS__PARTIAL_RESULT_GENERATED: 6/12 pixels")
    assert "\r" not in err
    assert "ended without a final result" in err


def test_progress_display_draws_a_bar_on_a_terminal() -> None:
    import io

    from skydriver_client._display import ProgressDisplay

    stream = io.StringIO()
    display = ProgressDisplay(stream, live=True)
    progress = ScanProgress.from_manifest(Manifest.model_validate(manifest_doc(report(12, 4, 20))))
    display(progress)
    display.close()
    assert stream.getvalue().startswith("\r\x1b[K[") and "16/32 pixels" in stream.getvalue()
    assert stream.getvalue().endswith("\n")


def test_cli_usage_errors_exit_2(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(Script(), "scan", "status") == 2  # missing ID
    # the reconstruction is never a silent default (a forgotten one gave a random skymap)
    assert cli(Script(), "scan", "submit", str(tmp_path / "e.json")) == 2
    assert "--reco-algo" in capsys.readouterr().err
    dummy = ("--reco-algo", "dummy")
    assert cli(Script(), "scan", "submit", str(tmp_path / "missing.json"), *dummy) == 2
    assert "No such file" in capsys.readouterr().err
    assert cli(Script(), "scan", "submit", str(tmp_path / "e.json"), "--nsides", "8-0", *dummy) == 2


def test_cli_reads_url_and_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYDRIVER_URL", "http://from-env.test:9999")
    monkeypatch.setenv("SKYDRIVER_TOKEN", "envtoken")
    script = Script(ok(status_doc("PENDING__PRESTARTUP")))
    assert (
        _cli.main(["scan", "status", SCAN_ID, "--json"], transport=httpx.MockTransport(script)) == 0
    )
    request = script.requests[0]
    assert (request.url.host, request.url.port) == ("from-env.test", 9999)
    assert request.headers["Authorization"] == "Bearer envtoken"
    script = Script(ok(status_doc("PENDING__PRESTARTUP")), ok(manifest_doc()))
    argv = ["--token", "flag", "scan", "status", SCAN_ID, "--url", URL]
    assert _cli.main(argv, transport=httpx.MockTransport(script)) == 0
    assert script.requests[0].headers["Authorization"] == "Bearer flag"
    assert script.requests[0].url.host == "skydriver.test"


def test_progress_bar_never_goes_back_and_eta_is_a_measured_range() -> None:
    """Refinement adds pixels: the bar stays put (it counts against the scanner's expected total, and never
    shrinks); the ETA is the scanner's measured range, "measuring" before it has one, never a guess."""
    import io

    from skydriver_client._display import ProgressDisplay, eta_text

    def progress(done2: int, gen2: int, expected: int, eta: dict[str, str] | None) -> ScanProgress:
        doc = report(12, done2, gen2)
        doc["tallies"]["overall"] = {"recos": {"initial approximation total": expected}}
        doc["processing_stats"]["predictions"] = {"time left range": eta} if eta else {}
        return ScanProgress.from_manifest(Manifest.model_validate(manifest_doc(doc)))

    stream = io.StringIO()
    display = ProgressDisplay(stream, live=True)
    early = progress(0, 0, 60, None)
    assert eta_text(early) == "ETA: measuring"
    display(early)
    assert display.fraction == pytest.approx(12 / 60)
    middle = progress(20, 24, 60, {"low": "0:01:00", "high": "0:02:30"})
    assert middle.eta_range_s == (60.0, 150.0)
    assert eta_text(middle) == "ETA 0:01:00 to 0:02:30"
    display(middle)
    assert display.fraction == pytest.approx(32 / 60)
    # the next nside's pixels arrive: more generated than the estimate, fewer done in proportion
    display(progress(20, 100, 60, {"low": "0:03:00", "high": "0:04:00"}))
    assert display.fraction == pytest.approx(32 / 60)
    drawn = [line.rsplit("\x1b[K", 1)[-1] for line in stream.getvalue().split("\r") if line]
    fills = [line.split("]")[0].count("#") for line in drawn]
    assert fills == sorted(fills) and fills[0] < fills[-1]
    assert "ETA 0:03:00 to 0:04:00" in drawn[-1]


def test_find_lines_say_state_reco_and_nsides() -> None:
    from skydriver_client._display import manifest_line

    args = (
        "python -m skymap_scanner.server --reco-algo pandel_mpe --cache-dir /common-space "
        "--nsides 8:0 64:12 --real-event --predictive-scanning-threshold 1.0"
    )
    base = manifest_doc(report(12, 20, 20, finished=True), scanner_server_args=args)
    line = manifest_line(Manifest.model_validate(base))
    assert f"{SCAN_ID}  " in line and "  finished  pandel_mpe  8:0 64:12  32/32 pixels" in line
    deleted = manifest_line(Manifest.model_validate({**base, "is_deleted": True}))
    assert "  deleted  " in deleted
    failed = {**manifest_doc(None), "instance": {"state": "ended", "exit_code": 2}}
    assert "  failed  " in manifest_line(Manifest.model_validate(failed))
    assert "no progress yet" in manifest_line(Manifest.model_validate(failed))
    queued = manifest_line(Manifest.model_validate(manifest_doc(None)))
    assert "  queued  " in queued
