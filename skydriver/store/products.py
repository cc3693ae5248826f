"""The sky products of each scan's latest result version: stored, versioned, replaced without a reader
ever seeing two versions mixed.

Two collections:

- `ProductIndex`, one document per scan (`ProductIndex` below): the latest result version stored
  (`result_version`), the build state, the version being served (`current`: its products' names, content
  types, ETags, sizes) and the last build error. It is the only place a reader learns which version to
  read, and it changes in one single-document update.
- `Products`, the bytes: one document per scan, version, product and chunk (`data`, BSON binary, at most
  `CHUNK_BYTES`: FerretDB and MongoDB refuse documents over 16 MiB, and a dummy scan's GeoJSON alone can
  be several MB).

A new version is published by writing all its chunks first, then pointing `current` at it (only if it is
newer than what is served), then deleting the older versions' chunks. A reader that read the index just
before a flip may find its version's chunks gone: `read_product` then answers None and the reader reads
the index again (`rest/products.py`). Writes to one scan's index are serialised in this process (FerretDB
loses concurrent updates of one document; see `store/scans.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from enum import StrEnum
from typing import Any

from bson.binary import Binary
from pydantic import BaseModel

from .db import Database, Doc

#: largest chunk of a product's bytes in one document
CHUNK_BYTES = 4 * 1024 * 1024


class BuildState(StrEnum):
    """Where a scan's products are (`none`: no result yet, never stored)."""

    NONE = "none"  # no result stored yet
    QUEUED = "queued"  # a result version newer than `current` waits for the builder
    BUILDING = "building"  # the builder works on `building_version`
    READY = "ready"  # `current` is the latest result version
    FAILED = "failed"  # the latest result version could not be built (`error`)


class ProductEntry(BaseModel):
    name: str
    content_type: str
    etag: str
    size: int
    chunks: int


class ProductVersion(BaseModel):
    """The products of one result version."""

    version: int
    is_final: bool
    built_at: float
    build_s: float
    products: list[ProductEntry]

    def entry(self, name: str) -> ProductEntry | None:
        return next((p for p in self.products if p.name == name), None)


class BuildError(BaseModel):
    version: int
    message: str
    at: float


class ProductIndex(BaseModel):
    """The `ProductIndex` document of one scan."""

    scan_id: str
    state: BuildState = BuildState.NONE
    result_version: int = 0
    result_is_final: bool = False
    building_version: int | None = None
    current: ProductVersion | None = None
    error: BuildError | None = None
    updated_at: float = 0.0


def _decode(doc: Doc | None) -> ProductIndex | None:
    if doc is None:
        return None
    doc.pop("_id", None)
    return ProductIndex.model_validate(doc)


class ProductStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def get_index(self, scan_id: str) -> ProductIndex | None:
        """The scan's index, or None if no result was ever stored for it."""
        return _decode(await self.db.product_index.find_one({"scan_id": scan_id}))

    async def pending_scans(self) -> list[str]:
        """Scans with a result version waiting to be built (for the runner after a restart)."""
        states = [BuildState.QUEUED.value, BuildState.BUILDING.value]
        cursor = self.db.product_index.find({"state": {"$in": states}}, {"scan_id": 1})
        return [doc["scan_id"] async for doc in cursor]

    async def _update(self, scan_id: str, fields: Doc, *, upsert: bool = False) -> None:
        await self.db.product_index.update_one(
            {"scan_id": scan_id},
            {"$set": {**fields, "updated_at": time.time()}},
            upsert=upsert,
        )

    # -- the build's states --------------------------------------------------------------------
    async def result_stored(self, scan_id: str, version: int, is_final: bool) -> None:
        """A result version was stored: it waits for the builder."""
        async with self._locks[scan_id]:
            index = await self.get_index(scan_id)
            if index is not None and index.result_version >= version:
                return
            fields: Doc = {"result_version": version, "result_is_final": is_final}
            if index is None or index.state is not BuildState.BUILDING:
                fields["state"] = BuildState.QUEUED.value
            await self._update(scan_id, fields, upsert=True)

    async def building(self, scan_id: str, version: int) -> None:
        async with self._locks[scan_id]:
            await self._update(
                scan_id, {"state": BuildState.BUILDING.value, "building_version": version}
            )

    async def failed(self, scan_id: str, version: int, message: str) -> None:
        """Building `version` failed: recorded in `error`; what is served stays."""
        async with self._locks[scan_id]:
            index = await self.get_index(scan_id)
            newer_waits = index is not None and index.result_version > version
            error = BuildError(version=version, message=message, at=time.time())
            await self._update(
                scan_id,
                {
                    "state": (BuildState.QUEUED if newer_waits else BuildState.FAILED).value,
                    "building_version": None,
                    "error": error.model_dump(),
                },
            )

    async def publish(
        self,
        scan_id: str,
        *,
        version: int,
        is_final: bool,
        build_s: float,
        products: list[tuple[str, str, str, bytes]],
    ) -> bool:
        """Store `products` (name, content type, ETag, bytes) as `version` and serve them, unless a
        version at least as new is served already (False). Chunks first, then the index, then the older
        versions' chunks go."""
        chunks = self.db.products
        await chunks.delete_many({"scan_id": scan_id, "version": version})  # an interrupted attempt
        entries: list[ProductEntry] = []
        docs: list[Doc] = []
        for name, content_type, etag, data in products:
            pieces = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
            entries.append(
                ProductEntry(
                    name=name,
                    content_type=content_type,
                    etag=etag,
                    size=len(data),
                    chunks=len(pieces),
                )
            )
            docs += [
                {
                    "scan_id": scan_id,
                    "version": version,
                    "name": name,
                    "chunk": i,
                    "data": Binary(p),
                }
                for i, p in enumerate(pieces)
            ]
        if docs:  # PyMongo splits the batch at the server's message size limit
            await chunks.insert_many(docs)
        served = ProductVersion(
            version=version,
            is_final=is_final,
            built_at=time.time(),
            build_s=build_s,
            products=entries,
        )
        async with self._locks[scan_id]:
            index = await self.get_index(scan_id)
            if index is not None and index.current is not None and index.current.version >= version:
                await chunks.delete_many({"scan_id": scan_id, "version": version})
                return False
            newer_waits = index is not None and index.result_version > version
            fields: Doc = {
                "current": served.model_dump(),
                "state": (BuildState.QUEUED if newer_waits else BuildState.READY).value,
                "building_version": None,
            }
            if index is not None and index.error is not None and index.error.version <= version:
                fields["error"] = None
            await self._update(scan_id, fields, upsert=True)
        await chunks.delete_many({"scan_id": scan_id, "version": {"$ne": version}})
        return True

    # -- reading the bytes ------------------------------------------------------------------------
    async def read_product(self, scan_id: str, version: int, entry: ProductEntry) -> bytes | None:
        """The bytes of one product of `version`, or None if that version is gone (replaced meanwhile)."""
        cursor = self.db.products.find(
            {"scan_id": scan_id, "version": version, "name": entry.name}, {"chunk": 1, "data": 1}
        ).sort("chunk", 1)
        pieces: list[Any] = [doc["data"] async for doc in cursor]
        data = b"".join(bytes(p) for p in pieces)
        if len(pieces) != entry.chunks or len(data) != entry.size:
            return None
        return data
