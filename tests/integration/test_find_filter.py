"""`POST /scans/find` refuses the query operators that would run code on the database ($where, $function,
$accumulator) wherever they sit in the filter, itself and before the database is asked: its message names the
place in the filter, and it refuses a filter the database would run (a `$where` key inside an `$eq` value is
data to FerretDB, which answers such a query with no match)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.mark.parametrize(
    "query, path, operator",
    [
        ({"$where": "1"}, "filter", "$where"),
        ({"$and": [{"scan_id": "a"}, {"$where": "true"}]}, "filter.$and[1]", "$where"),
        ({"$nor": [{"$or": [{"$where": "1"}]}]}, "filter.$nor[0].$or[0]", "$where"),
        (
            {"$expr": {"$function": {"body": "function(){return true}", "args": [], "lang": "js"}}},
            "filter.$expr",
            "$function",
        ),
        ({"$expr": {"$accumulator": {}}}, "filter.$expr", "$accumulator"),
        # FerretDB takes this one (a document compared for equality) and answers it: only we refuse it
        ({"classifiers": {"$eq": {"$where": "1"}}}, "filter.classifiers.$eq", "$where"),
    ],
)
async def test_code_running_operators_are_refused_where_they_are(
    api: httpx.AsyncClient, query: dict[str, Any], path: str, operator: str
) -> None:
    resp = await api.post("/scans/find", json={"filter": query})
    message = f"'{path}': operator {operator} is not allowed"
    assert (resp.status_code, resp.json()) == (400, {"code": 400, "error": message})
    assert resp.reason_phrase == message


async def test_other_operators_reach_the_database(api: httpx.AsyncClient) -> None:
    query = {"$or": [{"scan_id": {"$in": ["a", "b"]}}, {"classifiers.x": {"$exists": True}}]}
    resp = await api.post("/scans/find", json={"filter": query})
    assert (resp.status_code, resp.json()) == (200, {"manifests": []})
