"""The sky products' storage (`skydriver/store/products.py`) on the real database: bytes larger than a
chunk, versions replaced whole, a stale version never served over a newer one, and the build states."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from skydriver.store.db import Database, connect
from skydriver.store.products import CHUNK_BYTES, BuildState, ProductStore
from tests.conftest import MONGODB_URI, drop_database

SCAN = "s1"


@pytest.fixture
async def store() -> AsyncIterator[ProductStore]:
    db: Database = connect(MONGODB_URI, f"test_products_{uuid.uuid4().hex[:12]}")
    await db.ensure_indexes()
    try:
        yield ProductStore(db)
    finally:
        await db.close()
        await drop_database(db.db.name)


def products(tag: bytes, big: int = 10) -> list[tuple[str, str, str, bytes]]:
    return [
        ("big.bin", "application/octet-stream", f'"{tag.decode()}-big"', tag * big),
        ("empty.txt", "text/plain", f'"{tag.decode()}-empty"', b""),
    ]


async def test_products_larger_than_a_chunk_are_read_back_whole(store: ProductStore) -> None:
    data = os.urandom(2 * CHUNK_BYTES + 12345)
    await store.result_stored(SCAN, 1, is_final=False)
    assert await store.publish(
        SCAN,
        version=1,
        is_final=False,
        build_s=0.1,
        products=[
            ("map.fits", "application/fits", '"e"', data),
            ("none", "text/plain", '"0"', b""),
        ],
    )
    index = await store.get_index(SCAN)
    assert index is not None and index.current is not None and index.state is BuildState.READY
    big, empty = index.current.products
    assert (big.size, big.chunks, empty.size, empty.chunks) == (len(data), 3, 0, 1)
    assert await store.read_product(SCAN, 1, big) == data
    assert await store.read_product(SCAN, 1, empty) == b""
    assert await store.db.products.count_documents({"scan_id": SCAN}) == 4


async def test_a_newer_version_replaces_the_older_whole_and_a_stale_one_is_never_served(
    store: ProductStore,
) -> None:
    await store.result_stored(SCAN, 1, is_final=False)
    await store.result_stored(SCAN, 2, is_final=True)
    await store.building(SCAN, 2)
    assert await store.publish(SCAN, version=2, is_final=True, build_s=0.1, products=products(b"b"))
    # version 1's build ended after version 2 was served: it is dropped, 2 stays
    assert not await store.publish(
        SCAN, version=1, is_final=False, build_s=0.1, products=products(b"a")
    )
    index = await store.get_index(SCAN)
    assert index is not None and index.current is not None
    assert index.current.version == 2 and index.state is BuildState.READY
    assert await store.db.products.distinct("version", {"scan_id": SCAN}) == [2]
    entry = index.current.products[0]
    assert await store.read_product(SCAN, 2, entry) == b"b" * 10
    # a reader still holding version 2's entry after version 3 replaced it gets None (and re-reads)
    await store.result_stored(SCAN, 3, is_final=True)
    assert await store.publish(SCAN, version=3, is_final=True, build_s=0.1, products=products(b"c"))
    assert await store.read_product(SCAN, 2, entry) is None
    assert await store.db.products.distinct("version", {"scan_id": SCAN}) == [3]


async def test_states_queued_building_failed_ready(store: ProductStore) -> None:
    assert await store.get_index(SCAN) is None
    await store.result_stored(SCAN, 1, is_final=False)
    index = await store.get_index(SCAN)
    assert index is not None and index.state is BuildState.QUEUED and index.result_version == 1
    assert await store.pending_scans() == [SCAN]
    await store.building(SCAN, 1)
    await store.result_stored(SCAN, 2, is_final=False)  # arrives during the build: still building
    index = await store.get_index(SCAN)
    assert index is not None and index.state is BuildState.BUILDING
    assert (index.building_version, index.result_version) == (1, 2)
    await store.failed(SCAN, 1, "ValueError: no")  # a newer version waits: queued, error kept
    index = await store.get_index(SCAN)
    assert index is not None and index.state is BuildState.QUEUED
    assert index.error is not None and (index.error.version, index.error.message) == (
        1,
        "ValueError: no",
    )
    await store.building(SCAN, 2)
    await store.failed(SCAN, 2, "ValueError: again")
    index = await store.get_index(SCAN)
    assert index is not None and index.state is BuildState.FAILED and index.current is None
    assert await store.pending_scans() == []
    await store.result_stored(SCAN, 2, is_final=False)  # a repeated notice changes nothing
    assert (await store.get_index(SCAN)).state is BuildState.FAILED  # type: ignore[union-attr]
    await store.result_stored(SCAN, 3, is_final=True)
    await store.building(SCAN, 3)
    assert await store.publish(SCAN, version=3, is_final=True, build_s=0.1, products=products(b"x"))
    index = await store.get_index(SCAN)
    assert index is not None and index.state is BuildState.READY and index.error is None
    assert index.building_version is None
