"""`skydriver`: run the service (`skydriver serve`), issue tokens (`skydriver token issue`), print what a
scan would create on a cluster (`skydriver dry-run`), and use it (`skydriver scan ...`, `skydriver scans
find ...`: the client package's commands, see skydriver_client/_cli.py for options and exit codes)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from skydriver_client import _cli as client_cli
from skyscan_contract.errors import SkyDriverError
from skyscan_contract.settings import InvalidSettings, read_settings

from .auth.settings import AuthSettings
from .errors import ServiceStartError
from .settings import Settings

LOG = logging.getLogger("skydriver")


async def serve(settings: Settings) -> None:
    from .app import start  # the whole service: only for `serve`, not for the client commands

    sky = await start(settings, auth_settings=read_settings(AuthSettings))
    print(f"SkyDriver listening on {sky.settings.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    LOG.info("shutting down")
    await sky.stop(stop_instances=False)


def dry_run_command(args: argparse.Namespace) -> int:
    """Render, without a cluster, exactly what the k8s launcher and the worker backends would create."""
    from skydriver_client import Client
    from skydriver_client._cli import ClientSettings
    from skyscan_contract.documents import ScanRequestDoc
    from skyscan_contract.instance import InstanceSpec

    from .launch.dry_run import render_dry_run

    client_settings = ClientSettings()
    url = getattr(args, "url", None) or client_settings.url
    token = getattr(args, "token", None) or (
        client_settings.token.get_secret_value() if client_settings.token else None
    )
    try:
        with Client(url, token=token) as client:
            request = client.scan_request(args.scan_id)
    except SkyDriverError as e:
        print(f"skydriver: {e}", file=sys.stderr)
        return client_cli.exit_code(e)
    spec = InstanceSpec.from_request(ScanRequestDoc.model_validate(request), args.scan_id)
    print(render_dry_run(spec, Settings()))
    return 0


def issue_token_command(args: argparse.Namespace) -> int:
    from .auth import LocalKeyAuthenticator, Role
    from .auth.settings import key_file

    auth, settings = read_settings(AuthSettings), read_settings(Settings)
    if auth.mode != "local":
        print(
            "skydriver: tokens are issued by the OpenID provider in this deployment",
            file=sys.stderr,
        )
        return 2
    issuer = LocalKeyAuthenticator.from_key_file(
        key_file(auth, settings.state_dir), audience=auth.audience
    )
    ttl = args.ttl or (auth.system_token_ttl_s if args.role == "system" else auth.token_ttl_s)
    print(
        issuer.issue_token(Role(args.role), subject=args.subject, ttl_s=ttl, scan_id=args.scan_id)
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    common = client_cli.common_options()
    parser = argparse.ArgumentParser(
        prog="skydriver",
        parents=[common],
        description="SkyDriver skymap-scan service: run it (serve), issue tokens, and use it (scan, scans)",
        epilog="Environment: SKYDRIVER_URL, SKYDRIVER_TOKEN (the client); the service's settings are "
        "listed in the README (SKYDRIVER_*, MONGODB_URI).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("serve", help="run the REST service with its backlog runner and launcher")
    p.add_argument("--port", type=int, help="override SKYDRIVER_PORT")
    p = sub.add_parser("token", help="tokens signed with this deployment's local key")
    tok = p.add_subparsers(dest="token_command", required=True)
    p = tok.add_parser("issue", help="print a bearer token")
    p.add_argument("--role", choices=["user", "system"], default="user")
    p.add_argument("--subject", default="cli", help="who the token is for")
    p.add_argument("--scan-id", help="limit a system token to one scan")
    p.add_argument("--ttl", type=int, help="seconds (default SKYDRIVER_AUTH_TOKEN_TTL_S)")
    p = sub.add_parser(
        "dry-run",
        parents=[common],
        help="print the Kubernetes objects and HTCondor submit description a scan would create",
    )
    p.add_argument("scan_id", metavar="ID")
    client_cli.register(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "dry-run":
            return dry_run_command(args)
        if args.command in client_cli.COMMANDS:
            return client_cli.run(args)
        if args.command == "token":
            return issue_token_command(args)
        settings = read_settings(Settings)
        if args.port is not None:
            settings = settings.model_copy(update={"port": args.port})
        logging.basicConfig(
            level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        logging.getLogger("skydriver").setLevel(settings.log_level.upper())
        read_settings(AuthSettings)  # its errors now, as one line, not from inside the service
        asyncio.run(serve(settings))
    except InvalidSettings as e:
        print(f"skydriver: invalid settings: {e}", file=sys.stderr)
        return client_cli.USAGE
    except (ServiceStartError, OSError) as e:
        print(f"skydriver: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
