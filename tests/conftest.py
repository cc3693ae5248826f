"""Shared fixtures: SkyDriver started in-process on a free port, against the real FerretDB and RabbitMQ that
`make test` starts (scripts/services.sh). Every test gets its own database, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from skydriver.app import SkyDriver, start
from skydriver.settings import Settings

MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
BROKER_ADDRESS = os.environ.get("SKYSCAN_BROKER_ADDRESS", "localhost")


def test_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "mongodb_uri": MONGODB_URI,
        "mongodb_database": f"test_{uuid.uuid4().hex[:12]}",
        "state_dir": tmp_path / "state",
        "broker_address": BROKER_ADDRESS,
        "backlog_runner_short_delay_s": 0.5,
        "instance_poll_interval_s": 0.3,
        "scanner_progress_interval_s": 0.5,
        "scanner_result_interval_s": 1.0,
        "scanner_kill_switch_check_interval_s": 1.0,
        "client_manager_poll_interval_s": 0.3,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def drop_database(name: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(MONGODB_URI)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@pytest.fixture
async def skydriver(tmp_path: Path) -> AsyncIterator[SkyDriver]:
    sky = await start(test_settings(tmp_path))
    try:
        yield sky
    finally:
        await sky.stop()
        await drop_database(sky.settings.mongodb_database)


@pytest.fixture
async def rest(skydriver: SkyDriver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=skydriver.settings.url, timeout=30) as client:
        yield client


@pytest.fixture
async def held_skydriver(tmp_path: Path) -> AsyncIterator[SkyDriver]:
    """SkyDriver whose launcher starts nothing: for route tests, scans stay where the test puts them."""
    from tests.doubles import HeldLauncher

    HeldLauncher.started = []
    sky = await start(test_settings(tmp_path, launcher="held"), {"held": HeldLauncher})
    try:
        yield sky
    finally:
        await sky.stop()
        await drop_database(sky.settings.mongodb_database)


@pytest.fixture
async def api(held_skydriver: SkyDriver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=held_skydriver.settings.url, timeout=30) as client:
        yield client
