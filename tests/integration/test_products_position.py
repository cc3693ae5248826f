"""The position query of the sky products (`GET /scan/{id}/products/stats.json?ra=&dec=[&radius=]`) against
the real SkyDriver (held launcher, real database, real products process): it agrees with the library on
the served multi-order map, is cacheable, names a bad parameter in its 400, and answers 503 beyond the
waiting queries' bound."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from skydriver.app import SkyDriver
from skymap_scanner.products.alert import position_query
from tests.helpers import wait_for
from tests.integration.test_products_rest import (
    etag_of,
    final_result,
    held_sky,
    new_scan,
    products_process_held,
    put_result,
    served_version,
    user,
)


async def test_position_query_agrees_with_the_library_and_names_bad_parameters(
    held_skydriver: SkyDriver,
) -> None:
    sky = held_skydriver
    async with user(sky) as client:
        scan_id = await new_scan(client)
        await put_result(sky, scan_id, final_result(), is_final=True)
        await served_version(client, scan_id, 1)
        base = f"/scan/{scan_id}/products/stats.json"
        plain = await client.get(base)
        fits = (await client.get(f"/scan/{scan_id}/products/skymap.multiorder.fits")).content
        best = json.loads(plain.content)["summary"]
        ra, dec, radius = best["ra_deg"], best["dec_deg"], best["radius_90_deg"]

        resp = await client.get(base, params={"ra": ra, "dec": dec, "radius": radius})
        assert resp.status_code == 200, resp.text
        answer = json.loads(resp.content)
        assert answer["position"] == position_query(fits, ra, dec, radius_deg=radius)
        assert answer["position"]["inside"] == {"50": True, "90": True}
        # the circle around the best fit that holds 90 % (the notice's error radius)
        assert answer["position"]["cone"]["probability"] == pytest.approx(0.9, abs=0.02)
        assert {k: v for k, v in answer.items() if k != "position"} == json.loads(plain.content)
        assert resp.headers["Etag"] == etag_of(resp.content) != plain.headers["Etag"]
        assert resp.headers["Content-Type"] == "application/json"
        again = await client.get(
            base,
            params={"ra": ra, "dec": dec, "radius": radius},
            headers={"If-None-Match": resp.headers["Etag"]},
        )
        assert again.status_code == 304

        far = await client.get(base, params={"ra": (ra + 180) % 360, "dec": -dec})
        assert json.loads(far.content)["position"]["inside"] == {"50": False, "90": False}
        assert "cone" not in json.loads(far.content)["position"]

        for params, named in [
            ({"ra": "abc", "dec": 0}, "'ra'"),
            ({"ra": 361, "dec": 0}, "'ra'"),
            ({"ra": "nan", "dec": 0}, "'ra'"),
            ({"dec": 0}, "'ra'"),
            ({"ra": 10}, "'dec'"),
            ({"ra": 10, "dec": 90.5}, "'dec'"),
            ({"ra": 10, "dec": "inf"}, "'dec'"),
            ({"ra": 10, "dec": 0, "radius": 0}, "'radius'"),
            ({"ra": 10, "dec": 0, "radius": 181}, "'radius'"),
        ]:
            resp = await client.get(base, params=params)
            assert resp.status_code == 400, params
            assert resp.json()["error"].startswith(named), (params, resp.json())
        resp = await client.get(f"/scan/{scan_id}/products/notice.json", params={"ra": 1, "dec": 2})
        assert resp.status_code == 400 and "stats.json only" in resp.json()["error"]


async def test_position_queries_beyond_the_limit_are_503(tmp_path: Path) -> None:
    async with held_sky(tmp_path, products_max_waiting_queries=1) as sky, user(sky) as client:
        assert sky.products is not None
        scan_id = await new_scan(client)
        await put_result(sky, scan_id, final_result(), is_final=True)
        await served_version(client, scan_id, 1)
        query = f"/scan/{scan_id}/products/stats.json?ra=10&dec=20"
        async with products_process_held(sky, tmp_path):
            waiting = asyncio.create_task(client.get(query))
            runner = sky.products

            async def one_waits() -> bool:
                return runner._waiting_queries == 1

            await wait_for(one_waits, 30, "the first query to wait for the products process")
            resp = await client.get(query)
            assert resp.status_code == 503
            assert "1 position queries are waiting" in resp.json()["error"]
        assert (await asyncio.wait_for(waiting, 60)).status_code == 200
