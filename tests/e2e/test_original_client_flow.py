"""The original's client flow, unchanged (reference §8): rest_tools' RestClient, the event as a JSON string,
the `cluster` alias, `scanner_server_memory: "1G"`, polling /status until `scan_complete`, then the result
through skyreader."""

from __future__ import annotations

import asyncio
import time

from rest_tools.client import RestClient
from skyreader import SkyScanResult

from skydriver.app import SkyDriver
from tests.conftest import headers
from tests.helpers import DEMO_EVENT


def original_flow(url: str, token: str) -> tuple[dict[str, object], list[str]]:
    rc = RestClient(url, token=token, retries=0, timeout=30)
    manifest = rc.request_seq(
        "POST",
        "/scan",
        {
            "reco_algo": "dummy",
            "event_i3live_json": DEMO_EVENT.read_text(),  # a string, as prod_tester sends it
            "nsides": {1: 0},
            "real_or_simulated_event": "real",
            "predictive_scanning_threshold": 1,
            "cluster": {"local": 2},
            "docker_tag": "latest",
            "max_pixel_reco_time": 1800,
            "scanner_server_memory": "1G",
            "priority": 0,
            "scanner_server_env": {"SKYSCAN_MINI_TEST": True, "SKYSCAN_DUMMY_SLEEP_S": 0.05},
            "classifiers": {"_TEST": True},
        },
    )
    scan_id = manifest["scan_id"]
    states: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = rc.request_seq("GET", f"/scan/{scan_id}/status")
        states.append(status["scan_state"])
        if status["scan_complete"]:
            break
        time.sleep(0.2)
    result = rc.request_seq("GET", f"/scan/{scan_id}/result")
    return result, states


async def test_original_client_flow(skydriver: SkyDriver) -> None:
    token = headers(skydriver)["Authorization"].removeprefix("Bearer ")
    result, states = await asyncio.to_thread(original_flow, skydriver.settings.url, token)
    assert states[-1] == "SCAN_HAS_FINAL_RESULT", states
    assert result["is_final"] is True
    sky = SkyScanResult.deserialize(result["skyscan_result"])
    assert sky.has_minimal_metadata()
    assert len(result["skyscan_result"]["nside-1"]["data"]) == 12
