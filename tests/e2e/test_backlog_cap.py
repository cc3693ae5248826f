"""With a cap of 2 running scan instances, five real scans (local launcher, real processes) run two at a
time and all finish."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import headers, running_skydriver
from tests.helpers import scan_body, wait_for


async def test_five_scans_two_at_a_time(tmp_path: Path) -> None:
    async with running_skydriver(tmp_path, max_running_scans=2) as sky:
        async with httpx.AsyncClient(
            base_url=sky.settings.url, headers=headers(sky), timeout=30
        ) as client:
            ids = []
            for _ in range(5):
                body = scan_body(
                    nsides={"1": 0},
                    request_clusters={"local": 1},
                    scanner_server_env={"SKYSCAN_DUMMY_SLEEP_S": 0.1},
                )
                resp = await client.post("/scan", json=body)
                assert resp.status_code == 200, resp.text
                ids.append(resp.json()["scan_id"])

            async def all_ended() -> list[dict[str, object]] | None:
                manifests = [(await client.get(f"/scan/{i}/manifest")).json() for i in ids]
                instances = [m.get("instance") or {} for m in manifests]
                return instances if all(i.get("state") == "ended" for i in instances) else None

            instances = await wait_for(all_ended, 240, "all five scans to end", interval_s=0.5)
            for scan_id in ids:
                status = (await client.get(f"/scan/{scan_id}/status")).json()
                assert status["scan_state"] == "SCAN_HAS_FINAL_RESULT", status
            # never more than two instances alive at once, and two did run together
            events = sorted(
                [(float(i["started_at"]), 1) for i in instances]
                + [(float(i["ended_at"]), -1) for i in instances]
            )
            alive, peak = 0, 0
            for _, step in events:
                alive += step
                peak = max(peak, alive)
            assert peak == 2
