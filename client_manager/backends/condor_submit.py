"""Pure builder of the HTCondor submit description of a scan's workers, and the workers' entry shim.

`make_submit()` returns an `htcondor2.Submit` (one description; the backend queues N procs of it):

- container universe with the client image (`container_image = docker://<image>`; an image given
  with a scheme, e.g. `osdf://`, or as an absolute path to a `.sif` is used as is);
- `request_cpus = 1`, `request_memory`/`request_disk` from the scan request, written in MB with the unit
  (HTCondor's MB is 2^20 bytes, rounded up; `request_disk` would default to KiB without it);
- `priority` = the scan's priority; `max_retries` bounds re-runs of a failing worker;
- the startup JSON is a transferred input file (remote workers cannot see the client manager's disk).

The broker token is NOT in the description (a job ad is readable by anyone who can query the
schedd): the client manager writes it to a file of mode 0600 in its private work directory, and
HTCondor transfers it with the job into the job's sandbox, which only the job's user can read. The
worker starts through `worker_main()` (this module run with `-m`), which reads the file, removes it,
and execs `skymap_scanner worker` with `SKYSCAN_BROKER_AUTH` in its environment. (If WorkerSettings
learns to read `SKYSCAN_BROKER_AUTH_FILE`, the shim can go.)

Only built and printed in tests: no HTCondor pool exists on the build machines."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from skyscan_contract.instance import worker_env
from skyscan_contract.settings import IMAGE_PYTHON, WorkerSettings, env_name

if TYPE_CHECKING:
    import htcondor2

TOKEN_FILE_NAME = "broker_auth.token"
SHIM_MODULE = "client_manager.backends.condor_submit"
MIB = 2**20


def megabytes(n_bytes: int) -> int:
    """HTCondor MB (2^20 bytes), rounded up."""
    return max(1, math.ceil(n_bytes / MIB))


def container_image_url(image: str) -> str:
    """`docker://<image>` unless the image already names a scheme or is a path (apptainer .sif)."""
    if "://" in image or image.startswith("/"):
        return image
    return f"docker://{image}"


def _quote_value(value: str) -> str:
    """One value of the new (double-quoted) environment/arguments syntax: single-quoted, with ' and
    " doubled."""
    return "'" + value.replace("'", "''").replace('"', '""') + "'"


def condor_environment(env: Mapping[str, str]) -> str:
    """`"A='1' B='two words'"`: HTCondor's new environment syntax, every value quoted."""
    for name in env:
        if not name or "=" in name or any(c.isspace() for c in name):
            raise ValueError(f"invalid environment variable name: {name!r}")
    return '"' + " ".join(f"{k}={_quote_value(v)}" for k, v in env.items()) + '"'


def condor_arguments(args: Sequence[str]) -> str:
    """HTCondor's new arguments syntax; arguments with blanks or quotes are single-quoted."""
    plain = (
        a if a and not any(c.isspace() or c in "'\"" for c in a) else _quote_value(a) for a in args
    )
    return '"' + " ".join(plain) + '"'


def worker_arguments(startup_name: str, *, with_token: bool) -> list[str]:
    """Arguments of the worker's python (inside the sandbox, so plain file names)."""
    args = ["-m", SHIM_MODULE]
    if with_token:
        args += ["--token-file", TOKEN_FILE_NAME]
    return [*args, "--client-startup-json", startup_name]


def make_submit(
    scan_id: str,
    *,
    image: str,
    startup_json: Path,
    token_file: Path | None,
    memory_bytes: int,
    disk_bytes: int,
    priority: int,
    broker_type: str,
    broker_address: str,
    pixel_timeout_s: float,
    log_dir: Path,
    requirements: str = "",
    max_runtime_s: int = 86400,
    max_retries: int = 3,
    python: str = IMAGE_PYTHON,
) -> htcondor2.Submit:
    """The workers' submit description (see the module doc). `token_file` must be named
    `TOKEN_FILE_NAME` (the shim looks for that name in the sandbox); None = the broker needs none."""
    import htcondor2

    if token_file is not None and token_file.name != TOKEN_FILE_NAME:
        raise ValueError(f"token_file must be named {TOKEN_FILE_NAME}, got {token_file.name}")
    inputs = [str(startup_json.resolve())]
    if token_file is not None:
        inputs.append(str(token_file.resolve()))
    description = {
        "universe": "container",
        "container_image": container_image_url(image),
        "executable": python,
        "transfer_executable": "false",
        "arguments": condor_arguments(
            worker_arguments(startup_json.name, with_token=token_file is not None)
        ),
        "environment": condor_environment(
            {
                name: str(value)  # no references: the token travels as a file
                for name, value in worker_env(
                    broker_type=broker_type,
                    broker_address=broker_address,
                    broker_auth=None,
                    pixel_timeout_s=pixel_timeout_s,
                ).items()
            }
        ),
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT",
        "transfer_input_files": ", ".join(inputs),
        "transfer_output_files": "",
        "request_cpus": "1",
        "request_memory": f"{megabytes(memory_bytes)}MB",
        "request_disk": f"{megabytes(disk_bytes)}MB",
        "priority": str(priority),
        "max_retries": str(max_retries),
        "allowed_job_duration": str(max_runtime_s),
        "JobBatchName": f'"skyscan-{scan_id}"',
        "MY.SkyScanId": f'"{scan_id}"',
        "output": str(log_dir / "worker-$(ClusterId).$(ProcId).out"),
        "error": str(log_dir / "worker-$(ClusterId).$(ProcId).err"),
        "log": str(log_dir / "workers.log"),
    }
    if requirements:
        description["requirements"] = requirements
    return htcondor2.Submit(description)


def worker_main(argv: list[str] | None = None) -> int:
    """The worker's entry on an execution point: read (and remove) the token file, then become
    `python -m skymap_scanner worker ...` with SKYSCAN_BROKER_AUTH set. Returns only on a usage error."""
    parser = argparse.ArgumentParser(prog=f"python -m {SHIM_MODULE}")
    parser.add_argument("--token-file", type=Path)
    parser.add_argument("--client-startup-json", required=True)
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.token_file is not None:
        env[env_name(WorkerSettings, "broker_auth")] = args.token_file.read_text().strip()
        args.token_file.unlink(missing_ok=True)  # HTCondor transfers it again for a retry
    argv_worker = [
        sys.executable,
        "-m",
        "skymap_scanner",
        "worker",
        "--client-startup-json",
        args.client_startup_json,
    ]
    os.execve(sys.executable, argv_worker, env)
    return 1  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(worker_main())
