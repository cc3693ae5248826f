"""The full physics path through REST: a simulated pulse event, `pandel_mpe` workers, a result that
skyreader loads, and a best fit near the truth (coarse progression: this checks the plumbing; the
accuracy is measured by bench/accuracy.py)."""

from __future__ import annotations

import math

import httpx
from skyreader import SkyScanResult

from skymap_scanner.cli import truth_radec
from skymap_scanner.products.contours import angular_distance_deg, summarize_result
from skymap_scanner.simulation import simulate_events
from tests.helpers import scan_body, wait_for


async def test_pandel_mpe_scan_through_rest(rest: httpx.AsyncClient) -> None:
    event = simulate_events(1, seed=11, energy_range_gev=(2e5, 2e5), zenith_range=(1.7, 2.6))[0]
    body = scan_body(
        reco_algo="pandel_mpe",
        nsides={"8": 0, "32": 4},
        real_or_simulated_event="simulated",
        event_i3live_json=event,
        scanner_server_env={},
    )
    resp = await rest.post("/scan", json=body)
    assert resp.status_code == 200, resp.text
    scan_id = resp.json()["scan_id"]

    async def complete() -> bool:
        return bool((await rest.get(f"/scan/{scan_id}/status")).json()["scan_complete"])

    await wait_for(complete, 300, "the pandel_mpe scan to finish", interval_s=0.5)
    result = (await rest.get(f"/scan/{scan_id}/result")).json()["skyscan_result"]
    sky = SkyScanResult.deserialize(result)
    ra, dec = sky.best_dir
    summary = summarize_result(result)
    assert math.isclose(summary.best_fit.ra_rad, ra, abs_tol=1e-9)
    truth_ra, truth_dec = truth_radec(event)
    # nside 32 pixels are ~1.8 deg wide: the best one must be near the truth
    assert angular_distance_deg(ra, dec, truth_ra, truth_dec) < 3.0
    assert all(isinstance(row[1], float) for row in result["nside-32"]["data"])  # no failed pixel
