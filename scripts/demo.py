"""The demo: start SkyDriver, submit a scan of the bundled event through the REST API, show progress,
wait for the final result and save it under demo-output/."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from skyreader import SkyScanResult

REPO = Path(__file__).resolve().parents[1]
EVENT = REPO / "examples" / "demo_event.json"
OUT = REPO / "demo-output"
NSIDES = {"8": 0, "64": 12, "512": 24}


def start_skydriver() -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "SKYDRIVER_PORT": "0",
        "SKYDRIVER_BACKLOG_RUNNER_SHORT_DELAY_S": "1",
        "SKYDRIVER_SCANNER_PROGRESS_INTERVAL_S": "1",
        "SKYDRIVER_SCANNER_RESULT_INTERVAL_S": "5",
        "SKYDRIVER_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "skydriver", "serve"], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "SkyDriver listening on http://127.0.0.1:PORT"
    if "listening on" not in line:
        proc.kill()
        sys.exit(f"demo: SkyDriver did not start (exit code {proc.wait()})")
    return proc, line.strip().rsplit(" ", 1)[1]


def progress_line(manifest: dict) -> str:
    progress = manifest.get("progress") or {}
    nsides = (progress.get("tallies") or {}).get("nsides") or {}
    parts = []
    for nside in NSIDES:
        pix = (nsides.get(nside) or {}).get("pixels") or {}
        parts.append(f"nside {nside}: {pix.get('done', 0)}/{int(pix.get('generated', 0))}")
    return " | ".join(parts)


def main() -> int:
    OUT.mkdir(exist_ok=True)
    proc, url = start_skydriver()
    print(f"SkyDriver is up at {url}")
    token = subprocess.run(
        [
            sys.executable,
            "-m",
            "skydriver",
            "token",
            "issue",
            "--role",
            "user",
            "--subject",
            "demo",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        with httpx.Client(
            base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            body = {
                "docker_tag": "latest",
                "reco_algo": "dummy",
                "nsides": NSIDES,
                "real_or_simulated_event": "real",
                "max_pixel_reco_time": 60,
                "request_clusters": {"local": 2},
                "event_i3live_json": json.loads(EVENT.read_text()),
                "scanner_server_env": {"SKYSCAN_DUMMY_SLEEP_S": 0},
                "classifiers": {"demo": True},
            }
            resp = client.post("/scan", json=body)
            resp.raise_for_status()
            scan_id = resp.json()["scan_id"]
            print(f"submitted scan {scan_id} (dummy, nsides 8:0 64:12 512:24, 2 local workers)")
            start, last = time.monotonic(), ""
            while True:
                status = client.get(f"/scan/{scan_id}/status").json()
                manifest = client.get(f"/scan/{scan_id}/manifest").json()
                line = f"{status['scan_state']:45s} {progress_line(manifest)}"
                if line != last:
                    print(f"[{time.monotonic() - start:5.1f}s] {line}", flush=True)
                    last = line
                if status["scan_complete"]:
                    break
                if status["scan_state"].startswith("ABORTED") or time.monotonic() - start > 600:
                    print(f"demo: the scan did not finish: {status}", file=sys.stderr)
                    return 1
                time.sleep(0.5)
            for _ in range(50):  # the final progress report follows the final result
                manifest = client.get(f"/scan/{scan_id}/manifest").json()
                if (manifest.get("progress") or {}).get("processing_stats", {}).get("finished"):
                    print(
                        f"[{time.monotonic() - start:5.1f}s] {'finished':45s} {progress_line(manifest)}"
                    )
                    break
                time.sleep(0.2)
            result = client.get(f"/scan/{scan_id}/result").json()["skyscan_result"]
            for _ in range(
                100
            ):  # let the instance wind down (workers stopped) before SkyDriver stops
                status = client.get(f"/scan/{scan_id}/status").json()
                if status["instance"].get("state") != "running":
                    break
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)

    sky = SkyScanResult.deserialize(result)
    path = OUT / sky.get_filename(sky.get_event_metadata(), "json")
    path.write_text(json.dumps(result, indent=1))
    ra, dec = sky.best_dir
    print(f"result saved: {path}")
    print(f"best fit: RA {math.degrees(ra):.3f} deg, Dec {math.degrees(dec):.3f} deg")
    print(
        "pixels per nside: "
        + ", ".join(f"{k.split('-')[1]}: {len(v['data'])}" for k, v in result.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
