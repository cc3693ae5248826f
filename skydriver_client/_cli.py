"""`skydriver scan ...` and `skydriver scans ...`: the command line over the client library.

```
skydriver scan submit EVENT_FILE --reco-algo NAME [--nsides 8:0 64:12 512:24] [--cluster local:2 ...]
                                 [--priority N] [--real-event | --simulated-event] [--env KEY=VALUE ...]
                                 [--classifier KEY=VALUE ...] [--wait [--poll-s S] [--timeout S]]
skydriver scan status ID
skydriver scan wait ID [--poll-s S] [--timeout S]
skydriver scan result ID [--output FILE]
skydriver scan delete ID [--force]
skydriver scan rescan ID [--abort-first] [--replace]
skydriver scans find --run R --event E [--include-deleted]
```

Options of every command (before or after it): `--url` (env `SKYDRIVER_URL`, default http://127.0.0.1:8080),
`--token` (env `SKYDRIVER_TOKEN`), `--json` (print the models as JSON on stdout instead of text).
`submit` and `rescan` print the new scan's id alone on stdout (`SCAN_ID=$(skydriver scan submit ...)`), their
messages on stderr; `submit --json` prints the manifest, and with `--wait` `{"manifest": ..., "status": ...}`. While waiting,
progress goes to stderr: a live bar on a terminal, else one line per update. `result --output FILE` writes
the serialized result, readable by `skyreader.SkyScanResult.read_json(FILE)`.

Exit codes:
    0  success
    1  the scan failed: it was aborted or deleted, or ended without a final result (or --timeout passed)
    2  usage or bad input: bad arguments, an unreadable event file, or the server said 400, 409, 413 or 422
    3  not found: no such scan (404), or it has no result yet
    4  authentication or authorization: the server said 401 or 403 (check --token / SKYDRIVER_TOKEN)
    5  SkyDriver is unreachable, or kept answering 5xx, after the retries
  130  interrupted (Ctrl-C); a scan being waited for goes on

Wiring: `register(subparsers)` adds the commands; after `parse_args`, `run(args)` runs one when
`args.command in COMMANDS`. `main(argv)` does both, for tests and `python -m`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from skyscan_contract.errors import Forbidden, ScanNotFound, SkyDriverError
from skyscan_contract.nsides import DEFAULT_NSIDES
from skyscan_contract.recos import RECOS

from . import _core
from ._client import Client
from ._display import ProgressDisplay, manifest_line, result_text, status_text
from ._errors import ResultNotReady, ScanFailed, ServiceUnavailable, UnexpectedResponse, WaitTimeout

COMMANDS = ("scan", "scans")
OK, FAILED, USAGE, NOT_FOUND, AUTH, UNAVAILABLE, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
Command = Callable[[Client, argparse.Namespace], int]


class ClientSettings(BaseSettings):
    """Defaults of the global options, from the environment."""

    model_config = SettingsConfigDict(env_prefix="SKYDRIVER_", extra="ignore")

    url: str = Field("http://127.0.0.1:8080", description="SkyDriver's address (`--url`)")
    token: SecretStr | None = Field(None, description="bearer token (`--token`)")


def exit_code(error: SkyDriverError) -> int:
    if isinstance(error, ScanFailed | WaitTimeout):
        return FAILED
    if isinstance(error, ScanNotFound | ResultNotReady):
        return NOT_FOUND
    if isinstance(error, Forbidden):
        return AUTH
    if isinstance(error, ServiceUnavailable | UnexpectedResponse):
        return UNAVAILABLE
    return USAGE


# -- output ----------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, allow_nan=True, default=_jsonable))


def _key_values(pairs: Sequence[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{what}: {pair!r} is not KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key] = value if isinstance(value, str | int | float | bool) or value is None else raw
    return out


def _wait(client: Client, scan_id: str, args: argparse.Namespace) -> int:
    display = ProgressDisplay(sys.stderr)
    try:
        client.wait(scan_id, poll_s=args.poll_s, timeout_s=args.timeout, on_progress=display)
    except KeyboardInterrupt:
        display.close()
        print(
            f"interrupted; scan {scan_id} goes on: `skydriver scan wait {scan_id}`", file=sys.stderr
        )
        return INTERRUPTED
    finally:
        display.close()
    return OK


# -- commands --------------------------------------------------------------------------------------
def _submit(client: Client, args: argparse.Namespace) -> int:
    manifest = client.launch(
        Path(args.event_file),
        real_event=args.real_event,
        reco_algo=args.reco_algo,
        nsides=" ".join(args.nsides),
        cluster=" ".join(args.cluster or ["local:2"]),
        docker_tag=args.docker_tag,
        max_pixel_reco_time=args.max_pixel_reco_time,
        predictive_scanning_threshold=args.predictive_scanning_threshold,
        priority=args.priority,
        classifiers=_key_values(args.classifier, "--classifier"),
        scanner_server_env=_key_values(args.env, "--env"),
    )
    scan_id = manifest.scan_id
    if not args.wait:
        if args.json:
            _print_json(manifest)
        else:  # the id alone on stdout: SCAN_ID=$(skydriver scan submit ...)
            print(scan_id)
            print(
                f"launched scan {scan_id}: `skydriver scan wait {scan_id}` follows it",
                file=sys.stderr,
            )
        return OK
    print(f"launched scan {scan_id}", file=sys.stderr, flush=True)
    code = _wait(client, scan_id, args)
    if code != OK:
        return code
    status = client.status(scan_id)
    if args.json:
        _print_json({"manifest": manifest, "status": status})
    else:
        print(status_text(scan_id, status, client.progress(scan_id)))
    return OK


def _show_status(client: Client, scan_id: str, as_json: bool) -> None:
    status = client.status(scan_id)
    if as_json:
        _print_json(status)
    else:
        print(status_text(scan_id, status, client.progress(scan_id)))


def _wait_command(client: Client, args: argparse.Namespace) -> int:
    code = _wait(client, args.scan_id, args)
    if code == OK:
        _show_status(client, args.scan_id, args.json)
    return code


def _status(client: Client, args: argparse.Namespace) -> int:
    _show_status(client, args.scan_id, args.json)
    return OK


def _result(client: Client, args: argparse.Namespace) -> int:
    document = client.result_json(args.scan_id, include_deleted=True)
    pydict = _core.skyscan_result(args.scan_id, document)
    if args.output:
        Path(args.output).write_text(json.dumps(pydict, allow_nan=True))
    if args.json:
        _print_json(document if not args.output else {**document, "skyscan_result": args.output})
        return OK
    from skyreader import SkyScanResult

    sky = SkyScanResult.deserialize(pydict)
    ended = bool(document.get("is_final")) or client.status(args.scan_id).has_ended
    print(result_text(args.scan_id, document, sky, ended))
    if args.output:
        print(f"  written to {args.output}")
    return OK


def _delete(client: Client, args: argparse.Namespace) -> int:
    manifest = client.delete(args.scan_id, delete_completed_scan=args.force)
    _print_json(manifest) if args.json else print(
        f"deleted scan {manifest.scan_id or args.scan_id}"
    )
    return OK


def _rescan(client: Client, args: argparse.Namespace) -> int:
    manifest = client.rescan(args.scan_id, abort_first=args.abort_first, replace_scan=args.replace)
    if args.json:
        _print_json(manifest)
    else:
        print(manifest.scan_id)
        print(f"launched scan {manifest.scan_id}, a rescan of {args.scan_id}", file=sys.stderr)
    return OK


def _find(client: Client, args: argparse.Namespace) -> int:
    manifests = client.find_by_event(args.run, args.event, include_deleted=args.include_deleted)
    if args.json:
        _print_json(manifests)
    elif not manifests:
        print(f"no scans of run {args.run} event {args.event}")
    else:
        for manifest in manifests:
            print(manifest_line(manifest))
    return OK


# -- the parser --------------------------------------------------------------------------------------
def common_options() -> argparse.ArgumentParser:
    """--url/--token/--json, accepted at every level; SUPPRESS keeps a lower level from undoing a higher."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument(
        "--url", default=argparse.SUPPRESS, help="SkyDriver's URL (env SKYDRIVER_URL)"
    )
    group.add_argument(
        "--token", default=argparse.SUPPRESS, help="bearer token (env SKYDRIVER_TOKEN)"
    )
    group.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    return common


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-s", type=float, default=2.0, metavar="S", help="seconds between polls (2)"
    )
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="stop waiting after S seconds (exit 1)"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `scan` and `scans` commands to a parser's subparsers."""
    common = common_options()
    scan = subparsers.add_parser("scan", parents=[common], help="launch and manage one scan")
    actions = scan.add_subparsers(dest="scan_command", required=True, metavar="ACTION")

    def action(name: str, command: Command, help: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, parents=[common], help=help, description=help)
        parser.set_defaults(client_command=command)
        return parser

    p = action("submit", _submit, "launch a scan of an event")
    p.add_argument("event_file", metavar="EVENT_FILE", help="the event, a JSON file")
    p.add_argument(
        "--reco-algo",
        required=True,
        metavar="NAME",
        help=f"the reconstruction: {', '.join(RECOS)} (dummy and crash_dummy are for testing: "
        "random skymaps)",
    )
    p.add_argument(
        "--nsides",
        nargs="+",
        default=[str(DEFAULT_NSIDES)],
        metavar="NSIDE:EXT",
        help=f"nside progression ({DEFAULT_NSIDES})",
    )
    p.add_argument(
        "--cluster", action="append", metavar="NAME:N", help="workers per cluster (local:2)"
    )
    p.add_argument("--docker-tag", default="latest", metavar="TAG", help="scanner image (latest)")
    p.add_argument(
        "--max-pixel-reco-time", type=int, default=3600, metavar="S", help="per pixel (3600 s)"
    )
    p.add_argument(
        "--predictive-scanning-threshold", type=float, default=1.0, metavar="X", help="(1.0)"
    )
    p.add_argument("--priority", type=int, default=0, metavar="N", help=">= 100: start now (0)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument(
        "--real-event", dest="real_event", action="store_true", default=True, help="(default)"
    )
    kind.add_argument("--simulated-event", dest="real_event", action="store_false")
    p.add_argument("--env", action="append", metavar="KEY=VALUE", help="scanner server env")
    p.add_argument("--classifier", action="append", metavar="KEY=VALUE", help="scan labels")
    p.add_argument("--wait", action="store_true", help="wait for the final result")
    _wait_options(p)

    p = action("status", _status, "show a scan's state and progress")
    p.add_argument("scan_id", metavar="ID")
    p = action("wait", _wait_command, "wait for a scan's final result")
    p.add_argument("scan_id", metavar="ID")
    _wait_options(p)
    p = action("result", _result, "show or save a scan's result")
    p.add_argument("scan_id", metavar="ID")
    p.add_argument("--output", "-o", metavar="FILE", help="write the result JSON here")
    p = action("delete", _delete, "abort and delete a scan")
    p.add_argument("scan_id", metavar="ID")
    p.add_argument("--force", action="store_true", help="delete even a completed scan")
    p = action("rescan", _rescan, "launch a scan again from its request")
    p.add_argument("scan_id", metavar="ID")
    p.add_argument("--abort-first", action="store_true", help="delete the old scan first")
    p.add_argument("--replace", action="store_true", help="redirect the old id to the new scan")

    scans = subparsers.add_parser("scans", parents=[common], help="search scans")
    found = scans.add_subparsers(dest="scans_command", required=True, metavar="ACTION")
    p = found.add_parser("find", parents=[common], help="find the scans of an event")
    p.set_defaults(client_command=_find)
    p.add_argument("--run", type=int, required=True, help="run id")
    p.add_argument("--event", type=int, required=True, help="event id")
    p.add_argument("--include-deleted", action="store_true")


#: what to do about a 403, on the command line, by the reason after "authentication failed: " / "authorization …"
FORBIDDEN_HINTS = {
    "no token": "pass a token: --token or SKYDRIVER_TOKEN (`skydriver token issue` prints one where "
    "SkyDriver runs)",
    "malformed token": "the token is damaged or not a SkyDriver token: copy it whole",
    "bad signature": "the token was signed by another key: run `skydriver token issue` where this SkyDriver "
    "runs, with its SKYDRIVER_STATE_DIR (or SKYDRIVER_AUTH_KEY_FILE)",
    "expired token": "issue a new token: `skydriver token issue`",
    "wrong role": "this needs a user token (`skydriver token issue --role user`)",
    "wrong scan": "the token is limited to another scan",
}


def _cli_notes(error: SkyDriverError, args: argparse.Namespace) -> list[str]:
    """The error's notes in command-line words: the request that failed (the library's first note), then
    what to do, naming flags and commands rather than the library's arguments."""
    notes = [n for n in getattr(error, "__notes__", []) if " answered " in n][:1]
    scan_id = getattr(args, "scan_id", None) or "ID"
    if isinstance(error, Forbidden):
        hint = FORBIDDEN_HINTS.get(_core.forbidden_reason(error.message))
    elif isinstance(error, ResultNotReady):
        hint = f"wait for it: `skydriver scan wait {scan_id}`"
    elif isinstance(error, ScanNotFound):
        hint = "check the scan id (`skydriver scans find --run R --event E --include-deleted` lists an event's scans)"
    elif "delete_completed_scan" in error.message:
        hint = f"a completed scan is deleted only with --force: `skydriver scan delete --force {scan_id}`"
    else:
        hint = None
    return notes + ([hint] if hint else [])


def run(args: argparse.Namespace, *, transport: httpx.BaseTransport | None = None) -> int:
    """Run a parsed `scan`/`scans` command; returns the exit code. Errors go to stderr."""
    settings = ClientSettings()
    url = getattr(args, "url", None) or settings.url
    token = getattr(args, "token", None) or (
        settings.token.get_secret_value() if settings.token else None
    )
    args.json = bool(getattr(args, "json", False))
    command: Command = args.client_command
    try:
        with Client(url, token=token, transport=transport) as client:
            return command(client, args)
    except SkyDriverError as e:
        print(f"skydriver: error: {e.message}", file=sys.stderr)
        for note in _cli_notes(e, args):
            print(f"  {note}", file=sys.stderr)
        return exit_code(e)
    except (OSError, argparse.ArgumentTypeError) as e:
        print(f"skydriver: error: {e}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return INTERRUPTED


def main(argv: Sequence[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="skydriver", parents=[common_options()], description="SkyDriver client"
    )
    register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else USAGE
    return run(args, transport=transport)


if __name__ == "__main__":
    sys.exit(main())
