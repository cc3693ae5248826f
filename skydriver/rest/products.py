"""A scan's sky products (`runners/products.py` builds them for every result version): the index, each
product with its own content type and a strong ETag, and a position query on the stats.

Before the scan's first result there are none (404); between the first result and its products being
ready, 409 (`state` in the index says `queued`/`building`, or `failed` with the error); afterwards the
latest built version is served while a newer one is built.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from skyscan_contract.errors import InvalidRequest, ScanConflict, ScanNotFound

from ..auth import Role, requires
from ..runners.products import ProductsBusy
from ..store.products import BuildState, ProductEntry, ProductIndex, ProductVersion
from .base import BaseHandler
from .openapi import Op

#: a reader re-reads the index this often if the version it read was replaced while it read the bytes
READ_ATTEMPTS = 3
#: the content types products are served with (for the OpenAPI document)
PRODUCT_TYPES = (
    "application/fits",
    "application/gzip",
    "application/geo+json",
    "application/json",
    "text/plain; charset=utf-8",
)
STATS = "stats.json"
MULTIORDER = "skymap.multiorder.fits"


def index_answer(scan_id: str, index: ProductIndex | None, base_url: str) -> dict[str, Any]:
    """`GET /scan/{id}/products`: what is served (version, finality, each product) and the build state."""
    current = index.current if index is not None else None
    return {
        "scan_id": scan_id,
        "state": (index.state if index is not None else BuildState.NONE).value,
        "version": None if current is None else current.version,
        "is_final": None if current is None else current.is_final,
        "built_at": None if current is None else current.built_at,
        "build_s": None if current is None else current.build_s,
        "products": []
        if current is None
        else [
            {
                "name": p.name,
                "content_type": p.content_type,
                "etag": p.etag,
                "size": p.size,
                "url": f"{base_url}/scan/{scan_id}/products/{p.name}",
            }
            for p in current.products
        ],
        "result_version": 0 if index is None else index.result_version,
        "building_version": None if index is None else index.building_version,
        "error": None if index is None or index.error is None else index.error.model_dump(),
    }


def served(scan_id: str, index: ProductIndex | None) -> ProductVersion:
    """The version being served, or the error that says why there is none."""
    if index is None:
        raise ScanNotFound(
            f"scan {scan_id} has no result yet: its sky products are made from its first result"
        )
    if index.current is not None:
        return index.current
    if index.state is BuildState.FAILED and index.error is not None:
        raise ScanConflict(
            f"the sky products of scan {scan_id} could not be made from its result (version "
            f"{index.error.version}): {index.error.message}"
        )
    raise ScanConflict(
        f"the sky products of scan {scan_id} are being made from its first result (version "
        f"{index.result_version}); try again in a few seconds"
    )


def _entry(scan_id: str, version: ProductVersion, name: str) -> ProductEntry:
    entry = version.entry(name)
    if entry is None:
        names = ", ".join(p.name for p in version.products)
        raise ScanNotFound(f"scan {scan_id} has no product {name!r} (it has: {names})")
    return entry


def _degrees(
    name: str, raw: str | None, low: float, high: float, *, low_open: bool = False
) -> float:
    what = f"a number of degrees in {'(' if low_open else '['}{low:g}, {high:g}]"
    if raw is None:
        raise InvalidRequest(f"'{name}': required for a position query ({what})")
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequest(f"'{name}': must be {what}, got {raw!r}") from None
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        raise InvalidRequest(f"'{name}': must be {what}, got {raw!r}")
    return value


def _json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode()


class ProductIndexHandler(BaseHandler):
    API = {
        "get": Op(
            "The scan's sky products: the version served, each product's name, content type, ETag, "
            "size and URL, and the build state (none, queued, building, ready, failed)",
            query=("include_deleted", "no_redirect"),
            responses={404: "unknown scan"},
        )
    }

    @requires(Role.USER, Role.SYSTEM)
    async def get(self, scan_id: str) -> None:
        if await self.redirected(scan_id):
            return
        await self.ctx.scans.get_manifest(scan_id, include_deleted=self.bool_arg("include_deleted"))
        index = await self.ctx.products.get_index(scan_id)
        self.send(index_answer(scan_id, index, self.ctx.settings.url))


class ProductHandler(BaseHandler):
    API = {
        "get": Op(
            "One sky product of the version served, with its content type and a strong ETag "
            "(If-None-Match: 304). stats.json?ra=&dec=[&radius=] adds `position`: the searched "
            "area and probability of that position, whether it is inside the 50/90% regions, and "
            "the probability in a cone of `radius` degrees around it",
            query=("include_deleted", "no_redirect", "ra", "dec", "radius"),
            responses={
                304: "not modified (If-None-Match)",
                404: "unknown scan, no result yet, or no such product",
                409: "the first products are being made, or could not be made (the message says)",
                503: "too many position queries waiting; try again",
            },
            produces=PRODUCT_TYPES,
        )
    }

    @requires(Role.USER, Role.SYSTEM)
    async def get(self, scan_id: str, name: str) -> None:
        if await self.redirected(scan_id):
            return
        position = self._position(name)
        await self.ctx.scans.get_manifest(scan_id, include_deleted=self.bool_arg("include_deleted"))
        wanted = [name] if position is None else [STATS, MULTIORDER]
        for _ in range(READ_ATTEMPTS):
            version = served(scan_id, await self.ctx.products.get_index(scan_id))
            entries = [_entry(scan_id, version, n) for n in wanted]
            if position is None and self._not_modified(entries[0].content_type, entries[0].etag):
                return
            found = [
                await self.ctx.products.read_product(scan_id, version.version, e) for e in entries
            ]
            if all(data is not None for data in found):
                break
        else:  # replaced while read, every time: a new version every few milliseconds is not expected
            raise ProductsBusy(f"the sky products of scan {scan_id} keep changing; try again")
        data = found[0]
        assert data is not None
        if position is not None:
            fits = found[1]
            assert fits is not None
            stats = json.loads(data)
            stats["position"] = await self.ctx.product_builds.position(fits, *position)
            data = _json_bytes(stats)
            if self._not_modified(entries[0].content_type, f'"{hashlib.sha256(data).hexdigest()}"'):
                return
        self.finish(data)

    def _not_modified(self, content_type: str, etag: str) -> bool:
        """Set the product's headers; answer 304 (and True) if the client has these bytes."""
        self.set_header("Content-Type", content_type)
        self.set_header("Etag", etag)
        self.set_header("Cache-Control", "no-cache")  # a new result version replaces the bytes
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return True
        return False

    def _position(self, name: str) -> tuple[float, float, float | None] | None:
        """(ra, dec, radius) of a position query, None without one; 400 naming a bad parameter."""
        raw = {k: self.get_query_argument(k, None) for k in ("ra", "dec", "radius")}
        if all(v is None for v in raw.values()):
            return None
        if name != STATS:
            raise InvalidRequest(f"'ra', 'dec' and 'radius' are parameters of {STATS} only")
        ra = _degrees("ra", raw["ra"], 0.0, 360.0)
        dec = _degrees("dec", raw["dec"], -90.0, 90.0)
        radius = raw["radius"]
        return (
            ra,
            dec,
            None if radius is None else _degrees("radius", radius, 0, 180, low_open=True),
        )
