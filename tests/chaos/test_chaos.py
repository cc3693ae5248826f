"""The chaos test (`make chaos`): concurrent scans through SkyDriver while everything around them fails.

Five scans of the seeded `dummy` reconstruction run at once through SkyDriver as a whole process, with the
scan instances it starts (scanner server, client manager, workers), against a FerretDB and a RabbitMQ node
of the test's own (`services.py`: free ports, own data; the shared services are never touched). At
seeded-random moments, one after another, it injects: worker SIGKILLs, scanner-server SIGKILLs, a scanner
server's death by an exception (the relay in front of SkyDriver refuses one of its result PUTs: the server
raises and exits non-zero), a malformed message on each queue of every scan (published with the scan's own
broker account), a SkyDriver SIGKILL and restart, a FerretDB SIGKILL and restart, and a RabbitMQ restart.

Then every scan must reach its final result, with exactly the rows (pixels and every value of each pixel)
of a fault-free run of the same seed, no pixel missing or twice; and nothing of the scans may be left: no
process, queue, per-scan vhost or broker user. The summary is printed and written to
`bench/results/chaos.json`. `SKYDRIVER_CHAOS_SEED` replays another schedule."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from skymap_scanner.mq import open_publisher
from skyscan_contract.queues import scan_queues
from skyscan_contract.settings import BrokerSettings
from tests.chaos.relay import Relay
from tests.chaos.services import (
    REPO,
    FerretDB,
    RabbitMQ,
    SkyDriverProcess,
    processes_mentioning,
)
from tests.helpers import DEMO_EVENT, check_pixel_selection, scan_body

pytestmark = [pytest.mark.chaos, pytest.mark.restarts_services, pytest.mark.timeout(900)]
LOG = logging.getLogger(__name__)

SEED = int(os.environ.get("SKYDRIVER_CHAOS_SEED", "20261202"))
SCANS = 5
NSIDES = "1:0 2:12 4:12"
WORKERS = 2
#: seconds per pixel (mean): long enough that every fault lands in the middle of the scans
DUMMY_SLEEP_S = 1.0
#: the faults of one run (each per-scan fault picks a running scan at its moment); `poison` is one per scan
FAULTS = {
    "worker_sigkill": 3,
    "server_sigkill": 2,
    "server_exception": 2,
    "poison": SCANS,
    "skydriver_sigkill_restart": 1,
    "ferretdb_sigkill_restart": 1,
    "rabbitmq_restart": 1,
}
#: a scan's server is hit at most this often (the launcher restarts a crashed server 3 times)
MAX_SERVER_FAULTS_PER_SCAN = 2
RESULT_FILE = REPO / "bench" / "results" / "chaos.json"


def reference_rows(seed: int, out: Path) -> dict[int, dict[int, list[Any]]]:
    """{nside: {pixel: row}} of a fault-free scan of the seed: the server's own send/collect loop with the
    dummy reconstruction called in-process (no broker, no SkyDriver, no fault)."""
    from tests.unit.test_physics_scan import scan

    result, _ = scan(
        json.loads(DEMO_EVENT.read_text()),
        "dummy",
        NSIDES,
        out,
        reco_config={"dummy_sleep_s": 0.0, "dummy_seed": seed},
    )
    return rows_of(result)


def rows_of(result: dict[str, Any]) -> dict[int, dict[int, list[Any]]]:
    out: dict[int, dict[int, list[Any]]] = {}
    for key, entry in result.items():
        rows = out.setdefault(int(key.split("-")[1]), {})
        for row in entry["data"]:
            assert int(row[0]) not in rows, f"pixel {row[0]} twice at {key}"
            rows[int(row[0])] = row
    return out


def _running(pid: int, scan_id: str) -> bool:
    """Alive, not a zombie, and a process of this scan (its environment names the scan)."""
    proc = Path(f"/proc/{pid}")
    try:
        if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
        return scan_id.encode() in (proc / "environ").read_bytes()
    except OSError:
        return False


@dataclass
class Chaos:
    """The running system and the record of what was done to it."""

    ferretdb: FerretDB
    rabbitmq: RabbitMQ
    skydriver: SkyDriverProcess
    relay: Relay
    rest: httpx.AsyncClient
    rng: random.Random
    scans: dict[str, int] = field(default_factory=dict)  # scan id -> dummy seed
    injected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    server_faults: Counter[str] = field(default_factory=Counter)
    poisoned: set[str] = field(default_factory=set)
    log: list[dict[str, Any]] = field(default_factory=list)
    final: set[str] = field(default_factory=set)

    @property
    def scans_dir(self) -> Path:
        return self.skydriver.state_dir.resolve() / "scans"

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A REST call that waits out SkyDriver's and the database's restarts (5xx, refused)."""
        deadline = time.monotonic() + 120
        while True:
            try:
                resp = await self.rest.request(method, path, **kwargs)
                if resp.status_code < 500:
                    assert resp.status_code == 200, f"{method} {path}: {resp.text}"
                    return resp.json()
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{method} {path}: SkyDriver did not answer"
            await asyncio.sleep(0.3)

    def running_scans(self) -> list[str]:
        return sorted(s for s in self.scans if s not in self.final)

    def pids(self, scan_id: str) -> dict[str, int]:
        path = self.scans_dir / scan_id / "instance.json"
        try:
            pids = json.loads(path.read_text()).get("pids") or {}
        except (OSError, ValueError):
            return {}
        return {role: int(pid) for role, pid in pids.items()}

    def server_pid(self, scan_id: str) -> int | None:
        pid = self.pids(scan_id).get("server")
        return pid if pid and _running(pid, scan_id) else None

    def worker_pids(self, scan_id: str) -> list[int]:
        log = self.scans_dir / scan_id / "client-manager.log"
        text = log.read_text() if log.exists() else ""
        pids = [int(p) for p in re.findall(r"started worker \d+ \(pid (\d+)\)", text)]
        return [p for p in pids if _running(p, scan_id)]

    def broker_of(self, scan_id: str) -> BrokerSettings:
        env = json.loads((self.scans_dir / scan_id / "server.launch.json").read_text())["env"]
        return BrokerSettings(
            broker_address=env["SKYSCAN_BROKER_ADDRESS"], broker_auth=env["SKYSCAN_BROKER_AUTH"]
        )

    def record(self, kind: str, target: str | None = None, **detail: Any) -> None:
        self.injected[kind] += 1
        self.log.append({"kind": kind, "scan": target, **detail})
        LOG.warning("chaos: %s %s %s", kind, target or "", detail or "")

    async def refresh_final(self) -> None:
        for scan_id in self.running_scans():
            status = await self.call("GET", f"/scan/{scan_id}/status")
            assert not status["scan_state"].startswith("ABORTED"), status
            if status["scan_complete"]:
                self.final.add(scan_id)

    # -- the faults ---------------------------------------------------------------------------------
    async def inject(self, kind: str) -> None:
        await self.refresh_final()
        if kind in ("skydriver_sigkill_restart", "ferretdb_sigkill_restart", "rabbitmq_restart"):
            await getattr(self, kind)()
            return
        candidates = self.running_scans()
        if kind == "poison":
            candidates = [s for s in candidates if s not in self.poisoned]
        if kind.startswith("server_"):
            candidates = [
                s for s in candidates if self.server_faults[s] < MAX_SERVER_FAULTS_PER_SCAN
            ]
        self.rng.shuffle(candidates)
        for scan_id in candidates:
            if await getattr(self, kind)(scan_id):
                return
        self.skipped[kind] += 1
        LOG.warning("chaos: %s skipped (no scan to inject it into)", kind)

    async def worker_sigkill(self, scan_id: str) -> bool:
        workers = self.worker_pids(scan_id)
        if not workers:
            return False
        pid = self.rng.choice(workers)
        os.kill(pid, signal.SIGKILL)
        self.record("worker_sigkill", scan_id, pid=pid)
        return True

    async def server_sigkill(self, scan_id: str) -> bool:
        pid = self.server_pid(scan_id)
        if pid is None:
            return False
        os.kill(pid, signal.SIGKILL)
        self.server_faults[scan_id] += 1
        self.record("server_sigkill", scan_id, pid=pid)
        return True

    async def server_exception(self, scan_id: str) -> bool:
        """Armed, the relay refuses the scan's next result PUT (partial results come every second)."""
        pid = self.server_pid(scan_id)
        if pid is None:
            return False
        self.relay.arm(scan_id)
        deadline = time.monotonic() + 30
        while scan_id not in self.relay.refused or _running(pid, scan_id):
            if time.monotonic() > deadline:
                self.relay.armed.discard(scan_id)
                assert scan_id not in self.relay.refused, f"{scan_id}: the server lived on a 409"
                return False  # no result PUT came: the scan had ended meanwhile
            await asyncio.sleep(0.05)
        self.server_faults[scan_id] += 1
        self.record("server_exception", scan_id, pid=pid)
        return True

    async def poison(self, scan_id: str) -> bool:
        """One malformed message on each of the scan's queues, with the scan's own broker account."""
        if not (self.scans_dir / scan_id / "server.launch.json").exists():
            return False
        from tests.integration.test_broker_path import poison_bodies

        bodies = poison_bodies(scan_id)
        broker = self.broker_of(scan_id)
        sent = {}
        for queue in scan_queues(scan_id):
            kind = self.rng.choice(sorted(k for k in bodies if len(bodies[k]) < 100_000))
            async with open_publisher(broker, queue) as pub:
                await pub.send_raw(bodies[kind], {})
            sent[queue] = kind
        self.poisoned.add(scan_id)
        self.record("poison", scan_id, messages=sent)
        return True

    async def skydriver_sigkill_restart(self) -> None:
        self.skydriver.kill()
        await asyncio.sleep(self.rng.uniform(0.5, 3.0))  # down for a while: instances keep trying
        await self.skydriver.start()
        self.record("skydriver_sigkill_restart")

    async def ferretdb_sigkill_restart(self) -> None:
        self.ferretdb.kill()
        await asyncio.sleep(self.rng.uniform(0.5, 3.0))
        await self.ferretdb.start()
        self.record("ferretdb_sigkill_restart")

    async def rabbitmq_restart(self) -> None:
        started = time.monotonic()
        await self.rabbitmq.restart()
        self.record("rabbitmq_restart", down_s=round(time.monotonic() - started, 1))


def schedule(rng: random.Random) -> list[tuple[float, str]]:
    """(pause before it in seconds, fault kind) in order; the poison comes in the first half, so that it
    finds every scan still running."""
    others = [k for k, n in FAULTS.items() if k != "poison" for _ in range(n)]
    rng.shuffle(others)
    half = len(others) // 2
    for _ in range(FAULTS["poison"]):
        others.insert(rng.randint(0, half), "poison")
    return [(round(rng.uniform(0.5, 4.0), 2), kind) for kind in others]


@asynccontextmanager
async def chaos_system(tmp_path: Path, rng: random.Random) -> AsyncIterator[Chaos]:
    ferretdb, rabbitmq, relay = FerretDB(tmp_path), RabbitMQ(tmp_path), Relay()
    skydriver = SkyDriverProcess(
        tmp_path,
        ferretdb.uri,
        rabbitmq,
        public_url=relay.url,
        SKYDRIVER_BACKLOG_RUNNER_SHORT_DELAY_S="0.5",
        SKYDRIVER_INSTANCE_POLL_INTERVAL_S="0.3",
        SKYDRIVER_SCANNER_PROGRESS_INTERVAL_S="1",
        SKYDRIVER_SCANNER_RESULT_INTERVAL_S="1",
        SKYDRIVER_SCANNER_KILL_SWITCH_CHECK_INTERVAL_S="2",
        SKYDRIVER_CLIENT_MANAGER_POLL_INTERVAL_S="0.5",
    )
    relay.target = skydriver.url
    try:
        await asyncio.gather(ferretdb.start(), rabbitmq.start())
        await skydriver.start()
        token = await asyncio.to_thread(skydriver.token)
        async with httpx.AsyncClient(
            base_url=skydriver.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as rest:
            yield Chaos(ferretdb, rabbitmq, skydriver, relay, rest, rng)
    finally:
        # whatever a failed run left: the scans' processes, then the services
        for pid in processes_mentioning(str(skydriver.state_dir.resolve() / "scans")):
            os.kill(pid, signal.SIGKILL)
        skydriver.stop()
        await relay.close()
        rabbitmq.stop()
        ferretdb.stop()


async def test_chaos_every_scan_completes_identically(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    seeds = [rng.randrange(1, 1_000_000) for _ in range(SCANS)]
    references = await asyncio.to_thread(
        lambda: [reference_rows(s, tmp_path / f"reference-{s}") for s in seeds]
    )
    plan = schedule(rng)
    async with chaos_system(tmp_path, rng) as chaos:
        for seed in seeds:
            body = scan_body(
                nsides={n: int(r) for n, r in (i.split(":") for i in NSIDES.split())},
                request_clusters={"local": WORKERS},
                scanner_server_env={
                    "SKYSCAN_DUMMY_SLEEP_S": DUMMY_SLEEP_S,
                    "SKYSCAN_DUMMY_SEED": seed,
                },
            )
            chaos.scans[(await chaos.call("POST", "/scan", json=body))["scan_id"]] = seed

        async def all_serving() -> bool:
            return all(chaos.server_pid(s) for s in chaos.scans)

        deadline = time.monotonic() + 180
        while not await all_serving():
            assert time.monotonic() < deadline, "the scans' servers did not all start"
            await asyncio.sleep(0.2)
        chaos_started = time.monotonic()
        for pause, kind in plan:
            await asyncio.sleep(pause)
            await chaos.inject(kind)
        chaos_s = time.monotonic() - chaos_started

        deadline = time.monotonic() + 400
        while chaos.running_scans():
            assert time.monotonic() < deadline, f"not final: {chaos.running_scans()}"
            await asyncio.sleep(0.5)
            await chaos.refresh_final()

        lost = duplicated = mismatched = expected = dead_letters = 0
        for (scan_id, seed), reference in zip(chaos.scans.items(), references, strict=True):
            result = (await chaos.call("GET", f"/scan/{scan_id}/result"))["skyscan_result"]
            manifest = await chaos.call("GET", f"/scan/{scan_id}/manifest")
            # what the last server process counted (a restarted server counts from 0)
            dead_letters += manifest["progress"].get("dead_letters", {}).get("count", 0)
            check_pixel_selection(result, NSIDES)
            got: dict[int, dict[int, list[Any]]] = {}
            for key, entry in result.items():
                rows = got.setdefault(int(key.split("-")[1]), {})
                for row in entry["data"]:
                    duplicated += int(row[0]) in rows
                    rows[int(row[0])] = row
            for nside, want in reference.items():
                expected += len(want)
                have = got.get(nside, {})
                lost += len(set(want) - set(have))
                mismatched += sum(1 for p, row in want.items() if p in have and have[p] != row)
            extra = {(n, p) for n, r in got.items() for p in r} - {
                (n, p) for n, r in reference.items() for p in r
            }
            assert not extra, f"scan {scan_id} (seed {seed}): pixels not in the reference {extra}"

        async def leftovers() -> dict[str, Any]:
            scans_dir = str(chaos.scans_dir)
            return {
                "processes": processes_mentioning(scans_dir),
                **await chaos.rabbitmq.leftovers(),
            }

        deadline = time.monotonic() + 120
        while True:  # the instance watcher removes each scan's broker account once it ended
            left = await leftovers()
            if not any(left.values()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        resumed = sum(
            "resuming scan" in (chaos.scans_dir / s / "server.log").read_text()
            for s in chaos.server_faults
        )
        summary = {
            "seed": SEED,
            "scans": SCANS,
            "scans_completed": len(chaos.final),
            "nsides": NSIDES,
            "workers_per_scan": WORKERS,
            "dummy_sleep_s": DUMMY_SLEEP_S,
            "faults_injected": dict(sorted(chaos.injected.items())),
            "faults_skipped": dict(sorted(chaos.skipped.items())),
            "servers_hit_that_resumed": f"{resumed}/{len(chaos.server_faults)}",
            "pixels_expected": expected,
            "pixels_lost": lost,
            "pixels_duplicated": duplicated,
            "pixels_with_other_values": mismatched,
            "dead_letters_counted_by_last_servers": dead_letters,
            "leftovers": left,
            "chaos_window_s": round(chaos_s, 1),
            "duration_s": round(time.monotonic() - started, 1),
            "faults": chaos.log,
        }
    RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(json.dumps(summary, indent=2) + "\n")
    print("\nchaos summary: " + json.dumps({k: v for k, v in summary.items() if k != "faults"}))

    assert summary["scans_completed"] == SCANS
    assert dict(chaos.injected) == FAULTS, f"not every fault was injected: {summary}"
    assert (lost, duplicated, mismatched) == (0, 0, 0), summary
    assert resumed == len(chaos.server_faults), summary
    assert not any(left.values()), f"left behind: {left}"
