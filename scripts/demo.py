"""The demo: start SkyDriver, submit a scan through the REST API, show its progress, wait for the final
result, save it under demo-output/ and summarise it.

    demo.py            a simulated 100 TeV muon track, reconstructed with pandel_mpe (8:0 64:12 512:24);
                       prints the truth, the best fit, the angular error, the 90 % area and the plots
    demo.py --dummy    the bundled event with the dummy reconstruction (fast: a plumbing check)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from skyreader import SkyScanResult

REPO = Path(__file__).resolve().parents[1]
DUMMY_EVENT = REPO / "examples" / "demo_event.json"
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


def progress_line(manifest: dict[str, Any]) -> str:
    progress = manifest.get("progress") or {}
    nsides = (progress.get("tallies") or {}).get("nsides") or {}
    parts = []
    for nside in NSIDES:
        pix = (nsides.get(nside) or {}).get("pixels") or {}
        parts.append(f"nside {nside}: {pix.get('done', 0)}/{int(pix.get('generated', 0))}")
    return " | ".join(parts)


def simulated_event() -> dict[str, Any]:
    from skymap_scanner.simulation import simulate_events

    return simulate_events(1, seed=2026, energy_range_gev=(1e5, 1e5), zenith_range=(1.75, 2.6))[0]


def run_scan(client: httpx.Client, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    resp = client.post("/scan", json=body)
    resp.raise_for_status()
    scan_id = resp.json()["scan_id"]
    print(
        f"submitted scan {scan_id} ({body['reco_algo']}, nsides 8:0 64:12 512:24, 2 local workers)"
    )
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
        if status["scan_state"].startswith("ABORTED") or time.monotonic() - start > 900:
            sys.exit(f"demo: the scan did not finish: {status}")
        time.sleep(0.5)
    for _ in range(50):  # the final progress report follows the final result
        manifest = client.get(f"/scan/{scan_id}/manifest").json()
        if (manifest.get("progress") or {}).get("processing_stats", {}).get("finished"):
            print(f"[{time.monotonic() - start:5.1f}s] {'finished':45s} {progress_line(manifest)}")
            break
        time.sleep(0.2)
    result = client.get(f"/scan/{scan_id}/result").json()["skyscan_result"]
    for _ in range(100):  # let the instance wind down (workers stopped) before SkyDriver stops
        if client.get(f"/scan/{scan_id}/status").json()["instance"].get("state") != "running":
            break
        time.sleep(0.2)
    return scan_id, result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--dummy", action="store_true", help="the fast dummy scan of the bundled event"
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.dummy:
        event = json.loads(DUMMY_EVENT.read_text())
        body_extra: dict[str, Any] = {
            "reco_algo": "dummy",
            "real_or_simulated_event": "real",
            "scanner_server_env": {"SKYSCAN_DUMMY_SLEEP_S": 0},
        }
    else:
        event = simulated_event()
        (OUT / "simulated_event.json").write_text(json.dumps(event))
        body_extra = {"reco_algo": "pandel_mpe", "real_or_simulated_event": "simulated"}
    proc, url = start_skydriver()
    print(f"SkyDriver is up at {url}")
    link = subprocess.run(
        [sys.executable, "-m", "skydriver", "dashboard", "--url", url, "--subject", "demo"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"watch it in a browser (sign-in link, works once within 2 minutes): {link}")
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
    body = {
        "docker_tag": "latest",
        "nsides": NSIDES,
        "max_pixel_reco_time": 600,
        "request_clusters": {"local": 2},
        "event_i3live_json": event,
        "classifiers": {"demo": True},
        **body_extra,
    }
    try:
        with httpx.Client(
            base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            _, result = run_scan(client, body)
    finally:
        proc.terminate()
        proc.wait(30)

    sky = SkyScanResult.deserialize(result)
    path = OUT / sky.get_filename(sky.get_event_metadata(), "json")
    path.write_text(json.dumps(result, indent=1))
    ra, dec = sky.best_dir
    print(f"result saved: {path}")
    print(
        "pixels per nside: "
        + ", ".join(f"{k.split('-')[1]}: {len(v['data'])}" for k, v in result.items())
    )
    if args.dummy:
        print(f"best fit: RA {math.degrees(ra):.3f} deg, Dec {math.degrees(dec):.3f} deg")
        return 0
    from skymap_scanner.cli import truth_radec
    from skymap_scanner.products.calibration import CALIBRATED_DELTA_LLH_90
    from skymap_scanner.products.summarize_cli import run_summarize

    truth = event["truth"]
    print(
        f"truth: zenith {math.degrees(truth['zenith']):.2f} deg, azimuth {math.degrees(truth['azimuth']):.2f} "
        f"deg, {truth['energy_gev'] / 1e3:.0f} TeV"
    )
    print(
        run_summarize(
            path, OUT / "plots", truth_radec(event), calibrated_delta_llh_90=CALIBRATED_DELTA_LLH_90
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
