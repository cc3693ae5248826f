"""The contract between SkyDriver, the scanner and the client manager (`skyscan_contract`): one place where a
scan instance's arguments and environment are made, and every launcher, worker backend and the dry run
agreeing on them; the layering that keeps it so."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")  # before htcondor2 is imported (condor backend)

import pytest
import yaml

from client_manager.backends.condor import submit_description
from client_manager.backends.k8s import worker_objects
from skydriver.broker import BrokerAccess, planned_address
from skydriver.launch.base import InstanceCredentials
from skydriver.launch.dry_run import render_dry_run
from skydriver.launch.k8s_objects import scan_job_from_settings, to_dict
from skydriver.launch.k8s_settings import K8sLauncherSettings
from skydriver.launch.local import LocalLauncher
from skydriver.settings import Settings
from skymap_scanner.recos import CLASSES, get_reco
from skyscan_contract.documents import ScanRequestDoc
from skyscan_contract.instance import InstanceSpec
from skyscan_contract.nsides import DEFAULT_NSIDES, InvalidNsides, NSideProgression
from skyscan_contract.recos import RECOS, UnknownReco, reco_info
from skyscan_contract.settings import (
    CondorWorkerSettings,
    K8sWorkerSettings,
    ManagerSettings,
    ServerSettings,
    WorkerSettings,
    check_value,
    env_name,
)

REPO = Path(__file__).resolve().parents[2]
SCAN_ID = "18c0a1b2c3dx0123456789abcdef0123"
TOKEN = "eyJ-the-scan-scoped-token"
BROKER_PASSWORD = "broker-pass-VALUE"
#: the scan's own broker access (SkyDriver makes it per scan)
ACCESS = BrokerAccess(f"skyscan-{SCAN_ID}@mq.test:5672/skyscan-{SCAN_ID}", BROKER_PASSWORD)
CREDENTIALS = InstanceCredentials(skydriver_token=TOKEN, broker=ACCESS)


def request() -> ScanRequestDoc:
    """A stored request, as `POST /scan` makes it."""
    return ScanRequestDoc(
        scan_id=SCAN_ID,
        docker_tag="4.1.2",
        scanner_server_memory_bytes=2_000_000_000,
        reco_algo="pandel_mpe",
        nsides={"8": 0, "64": 12},
        real_or_simulated_event="simulated",
        predictive_scanning_threshold=0.65,
        request_clusters=[["local", 3], ["osg", 2]],
        worker_memory_bytes=6_000_000_000,
        worker_disk_bytes=3_000_000_000,
        max_pixel_reco_time=900,
        priority=7,
        scanner_server_env_from_user={"SKYSCAN_DUMMY_SLEEP_S": 0.5, "SKYSCAN_LOG": "DEBUG"},
    )


def settings(tmp_path: Path) -> Settings:
    return Settings(
        public_url="http://skydriver.test:8080",
        broker_address="mq.test:5672",
        broker_auth=BROKER_PASSWORD,  # type: ignore[arg-type]
        scanner_progress_interval_s=30.0,
        scanner_result_interval_s=45.5,
        scanner_kill_switch_check_interval_s=60.0,
        client_manager_poll_interval_s=2.5,
        state_dir=tmp_path,
    )


CFG = K8sLauncherSettings(namespace="skyscans", image_repository="reg.test/skyscan")
#: what the cluster fills in for the scan Job's references (Secret keys, downward-API fields)
RESOLVED = {
    "skydriver-auth": TOKEN,
    "broker-auth": BROKER_PASSWORD,
    "metadata.namespace": "skyscans",
    "metadata.labels['batch.kubernetes.io/job-name']": f"skyscan-{SCAN_ID}",
    "metadata.labels['batch.kubernetes.io/controller-uid']": "uid-1",
}


def resolved_env(container: dict[str, Any]) -> dict[str, str]:
    """A container's environment with its references resolved as the kubelet would."""
    out: dict[str, str] = {}
    for e in container["env"]:
        if "value" in e:
            out[e["name"]] = e["value"]
        elif "secretKeyRef" in e["valueFrom"]:
            out[e["name"]] = RESOLVED[e["valueFrom"]["secretKeyRef"]["key"]]
        else:
            out[e["name"]] = RESOLVED[e["valueFrom"]["fieldRef"]["fieldPath"]]
    return out


def scan_argv(argv: list[str] | tuple[str, ...], startup: str) -> list[str]:
    """The scan's part of an argv: no python path, no platform paths (startup file, cache dir, the local
    launcher's exit-code file)."""
    args = list(argv[1:])
    for option in ("--cache-dir", "--exit-code-file"):
        if option in args:
            i = args.index(option)
            del args[i : i + 2]
    return [("<startup>" if a == startup else a) for a in args]


def condor_environment(submit: Any) -> dict[str, str]:
    """The `environment` of a submit description (HTCondor's quoted syntax) as a dict."""
    text = str(submit["environment"]).strip('"')
    pairs = (item.split("=", 1) for item in shlex.split(text.replace("''", "'")))
    return dict(pairs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_instance_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built from an environment read only the environment the test gives them."""
    for key in list(os.environ):
        if key.startswith(("SKYSCAN_", "CLIENT_MANAGER_")):
            monkeypatch.delenv(key)


# ---------------------------------------------------------------- one launch contract, every path


def test_every_launcher_backend_and_the_dry_run_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = InstanceSpec.from_request(request())
    sd = settings(tmp_path)
    # the local launcher (literal token and password)
    local = LocalLauncher(sd, SCAN_ID).processes(spec, CREDENTIALS)
    local_startup = str(tmp_path / "scans" / SCAN_ID / "startup.json")
    # the k8s launcher (references)
    job = to_dict(scan_job_from_settings(spec, sd, CFG, broker_address=ACCESS.address))
    containers = {c["name"]: c for c in job["spec"]["template"]["spec"]["containers"]}
    k8s_server, k8s_manager = containers["skyscan-server"], containers["client-manager"]
    k8s_startup = "/common-space/startup.json"

    # 1. the scanner server: same arguments, same environment (names and values)
    assert scan_argv(local["server"].argv, local_startup) == scan_argv(
        k8s_server["command"], k8s_startup
    )
    assert local["server"].argv[0] == sys.executable and k8s_server["command"][0] == "python"
    assert local["server"].literal_env() == resolved_env(k8s_server)
    # 2. the client manager: same arguments but the backend; the scan's common variables agree
    local_mgr, k8s_mgr = local["client-manager"].literal_env(), resolved_env(k8s_manager)
    assert [a for a in scan_argv(local["client-manager"].argv, local_startup) if a != "local"] == [
        a for a in scan_argv(k8s_manager["command"], k8s_startup) if a != "k8s"
    ]
    common = {k: v for k, v in k8s_mgr.items() if k in local_mgr}
    assert common == local_mgr  # the local manager's env is the k8s one minus the k8s backend's
    # what each program reads from it is what the scan asked for
    for env in (local["server"].literal_env(), local_mgr, k8s_mgr):
        monkeypatch.setattr(os, "environ", {**env})
        manager = ManagerSettings()
        assert (manager.skydriver_address, manager.skydriver_auth.get_secret_value()) == (
            "http://skydriver.test:8080",
            TOKEN,
        )
        worker = WorkerSettings()
        assert (worker.broker_address, worker.broker_auth.get_secret_value()) == (
            ACCESS.address,
            BROKER_PASSWORD,
        )
        assert worker.pixel_timeout_s == 900
    monkeypatch.setattr(os, "environ", {**local["server"].literal_env()})
    server = ServerSettings()
    assert (server.skydriver_scan_id, server.progress_interval_sec) == (SCAN_ID, 30.0)
    assert (server.result_interval_sec, server.kill_switch_check_interval) == (45.5, 60.0)
    assert os.environ["SKYSCAN_LOG"] == "DEBUG"  # the user's setting came through

    # 3. the workers: the local ones inherit the manager's environment; the k8s backend and the
    #    condor backend, built from the scan Job's manager environment, give their workers the same
    monkeypatch.setattr(os, "environ", {**k8s_mgr})
    k8s_settings = K8sWorkerSettings()
    _, worker_job = worker_objects(k8s_settings, SCAN_ID, "{}", spec.n_workers, 3)
    (worker_container,) = to_dict(worker_job)["spec"]["template"]["spec"]["containers"]
    k8s_worker_env = resolved_env(worker_container)
    assert k8s_worker_env == {k: local_mgr[k] for k in k8s_worker_env}
    assert set(k8s_worker_env) == {
        env_name(WorkerSettings, f)
        for f in ("broker_type", "broker_address", "broker_auth", "pixel_timeout_s")
    }
    condor = submit_description(
        CondorWorkerSettings(), SCAN_ID, Path(k8s_startup), tmp_path / "condor", 3
    )
    condor_env = condor_environment(condor)
    auth = env_name(WorkerSettings, "broker_auth")
    assert condor_env == {k: v for k, v in k8s_worker_env.items() if k != auth}  # token: a file
    assert (k8s_settings.worker_memory_bytes, k8s_settings.worker_priority) == (6_000_000_000, 7)

    # 4. the dry run prints exactly these objects
    text = render_dry_run(spec, sd, k8s_settings=CFG)
    k8s_text, _, condor_text = text.partition("# HTCondor submit description")
    docs = [d for d in yaml.safe_load_all(k8s_text) if d]
    assert planned_address(sd, SCAN_ID) == ACCESS.address  # what the dry run shows
    assert docs[0] == job
    printed_worker = docs[2]["spec"]["template"]["spec"]["containers"][0]
    assert printed_worker["env"] == worker_container["env"]
    assert docs[2]["spec"]["parallelism"] == spec.n_workers == 5
    assert f"environment = {condor['environment']}" in condor_text
    assert TOKEN not in text and BROKER_PASSWORD not in text


def test_skydrivers_own_variables_win_over_the_users() -> None:
    spec = InstanceSpec.from_request(
        request().model_copy(
            update={
                "scanner_server_env_from_user": {
                    "SKYSCAN_SKYDRIVER_ADDRESS": "http://attacker.test",
                    "SKYSCAN_BROKER_ADDRESS": "attacker.test:5672",
                }
            }
        )
    )
    processes = LocalLauncher(settings(Path("/tmp")), SCAN_ID).processes(spec, CREDENTIALS)
    for process in processes.values():
        env = process.literal_env()
        assert env[env_name(ServerSettings, "skydriver_address")] == "http://skydriver.test:8080"
        assert env[env_name(ServerSettings, "broker_address")] == ACCESS.address


def test_a_bad_value_fails_at_launch_naming_the_setting(tmp_path: Path) -> None:
    spec = InstanceSpec.from_request(request().model_copy(update={"max_pixel_reco_time": 0}))
    with pytest.raises(ValueError, match="greater than 0"):
        LocalLauncher(settings(tmp_path), SCAN_ID).processes(spec, CREDENTIALS)
    with pytest.raises(ValueError):
        check_value(ServerSettings, "progress_interval_sec", "fast")
    assert check_value(ServerSettings, "progress_interval_sec", "1.5") == 1.5


def test_no_instance_variable_is_spelled_outside_the_contract() -> None:
    """`grep -rn '"SKYSCAN_' skydriver client_manager` finds nothing: the names come from the settings
    classes of `skyscan_contract.settings`."""
    pattern = re.compile(r"[\"'](SKYSCAN|CLIENT_MANAGER)_")
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for package in ("skydriver", "client_manager")
        for path in sorted((REPO / package).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


# ---------------------------------------------------------------- nsides, recos


def test_nside_progression_is_parsed_once_and_rendered_at_each_edge() -> None:
    p = NSideProgression.parse({"8": 0, "64": 12, "512": 24})
    assert p == NSideProgression.parse("8:0 64:12 512:24") == DEFAULT_NSIDES
    assert NSideProgression.parse("8:0,64:12") == NSideProgression.parse(["8:0", "64:12"])
    assert p.to_json_dict() == {"8": 0, "64": 12, "512": 24}
    assert p.argv() == ["8:0", "64:12", "512:24"] and str(p) == "8:0 64:12 512:24"
    stored = request().model_dump(mode="json")
    assert stored["nsides"] == {"8": 0, "64": 12}
    assert ScanRequestDoc.model_validate(stored).nsides == NSideProgression(((8, 0), (64, 12)))
    with pytest.raises(InvalidNsides, match="first nside's extension must be 0"):
        NSideProgression.parse("64:12")


def test_every_reconstruction_of_the_table_has_its_class_and_no_more() -> None:
    assert set(CLASSES) == set(RECOS)
    for name in RECOS:
        assert get_reco(name).name == name
    with pytest.raises(UnknownReco, match="available: crash_dummy, dummy"):
        reco_info("millipede_original")
    assert reco_info("pandel_mpe").needs_pulses and not reco_info("dummy").needs_pulses


# ---------------------------------------------------------------- layering


def test_import_contracts_hold() -> None:
    """The import-linter contracts of pyproject.toml (layers, independence, forbidden imports)."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_the_rest_application_loads_no_physics_simulation_or_products() -> None:
    code = "import json, sys; import skydriver.app, skydriver.cli; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    modules = json.loads(done.stdout)
    heavy = [
        m
        for m in modules
        if m.startswith(
            (
                "skymap_scanner.physics",
                "skymap_scanner.simulation",
                "skymap_scanner.products",
                "skymap_scanner.recos",
                "healpy",
                "matplotlib",
                "astropy",
                "kubernetes",
                "htcondor",
            )
        )
    ]
    assert heavy == []
    assert "skymap_scanner.events" in modules  # the one part SkyDriver uses: the event reader
