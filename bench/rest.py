"""Benchmark: `GET /scan/{id}/status` throughput and latency with 50 concurrent clients, against a bare
Tornado handler (same JSON size, no auth, no database) on the same machine in the same run.

Both servers run as separate processes; the load generator is a small keep-alive HTTP/1.1 client on raw
asyncio streams (so that it costs less CPU than the servers). Run: `make up && .venv/bin/python bench/rest.py`."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers import scan_body  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "10"))

BARE_SERVER = """
import json, sys, tornado.ioloop, tornado.web
BODY = json.dumps(json.loads(sys.argv[1]))
class H(tornado.web.RequestHandler):
    def get(self, scan_id):
        self.set_header("Content-Type", "application/json")
        self.finish(BODY)
app = tornado.web.Application([(r"/scan/(\\w+)/status", H)])
sock = tornado.netutil.bind_sockets(0, "127.0.0.1")
server = tornado.httpserver.HTTPServer(app); server.add_sockets(sock)
print("listening on http://127.0.0.1:%d" % sock[0].getsockname()[1], flush=True)
tornado.ioloop.IOLoop.current().start()
"""


def start(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return proc, line.strip().rsplit(" ", 1)[1]


async def client(
    host: str, port: int, path: str, token: str, stop_at: float, lat: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    while time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        writer.write(request)
        length = 0
        status = await reader.readline()
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        assert b" 200 " in status, status
        lat.append(time.perf_counter() - t0)
    writer.close()


async def load(url: str, path: str, token: str) -> tuple[float, float, float]:
    host, port = url.removeprefix("http://").split(":")
    lat: list[float] = []
    stop_at = time.perf_counter() + DURATION_S
    start_t = time.perf_counter()
    await asyncio.gather(
        *(client(host, int(port), path, token, stop_at, lat) for _ in range(CLIENTS))
    )
    wall = time.perf_counter() - start_t
    lat.sort()
    return (
        len(lat) / wall,
        statistics.quantiles(lat, n=100)[98] * 1000,
        statistics.median(lat) * 1000,
    )


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    database = f"bench_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "SKYDRIVER_PORT": "0",
        "SKYDRIVER_MONGODB_DATABASE": database,
        "SKYDRIVER_STATE_DIR": str(tmp / "state"),
        "SKYDRIVER_AUTH_KEY_FILE": str(tmp / "key.pem"),
        "SKYDRIVER_MAX_RUNNING_SCANS_PER_CLUSTER": json.dumps({"local": 0}),  # launch nothing
        "SKYDRIVER_LOG_LEVEL": "WARNING",
    }
    sky, sky_url = start([sys.executable, "-m", "skydriver", "serve"], env)
    try:
        token = subprocess.run(
            [sys.executable, "-m", "skydriver", "token", "issue"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        scan_id = httpx.post(f"{sky_url}/scan", json=scan_body(), headers=headers).json()["scan_id"]
        status = httpx.get(f"{sky_url}/scan/{scan_id}/status", headers=headers).json()
        bare, bare_url = start(
            [sys.executable, "-c", BARE_SERVER, json.dumps(status)], dict(os.environ)
        )
        try:
            path = f"/scan/{scan_id}/status"
            b_rps, b_p99, b_med = asyncio.run(load(bare_url, path, token))
            s_rps, s_p99, s_med = asyncio.run(load(sky_url, path, token))
        finally:
            bare.terminate()
    finally:
        sky.terminate()
        sky.wait(30)
        from pymongo import MongoClient

        MongoClient(os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")).drop_database(
            database
        )
    print(f"{CLIENTS} concurrent keep-alive clients, {DURATION_S:g} s each, {os.cpu_count()} cores")
    print("| server | requests/s | median (ms) | p99 (ms) |")
    print("|---|---|---|---|")
    print(f"| bare Tornado handler | {b_rps:.0f} | {b_med:.1f} | {b_p99:.1f} |")
    print(f"| SkyDriver `GET /scan/{{id}}/status` | {s_rps:.0f} | {s_med:.1f} | {s_p99:.1f} |")
    print(f"ratio (SkyDriver / bare): {s_rps / b_rps:.2f}")


if __name__ == "__main__":
    main()
