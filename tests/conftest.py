"""Shared fixtures: SkyDriver started in-process on a free port, against the real FerretDB and RabbitMQ that
`make test` starts (scripts/services.sh). Every test gets its own database, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from skydriver.app import SkyDriver, start
from skydriver.auth import AuthSettings, Role
from skydriver.launch.base import Launcher
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


def auth_settings(tmp_path: Path) -> AuthSettings:
    return AuthSettings(key_file=tmp_path / "auth" / "signing-key.pem")


def headers(sky: SkyDriver, role: Role = Role.USER, scan_id: str | None = None) -> dict[str, str]:
    """A real token, signed by the test SkyDriver's local key."""
    assert sky.token_issuer is not None
    token = sky.token_issuer.issue_token(role, subject=f"test-{role}", ttl_s=3600, scan_id=scan_id)
    return {"Authorization": f"Bearer {token}"}


async def start_test_skydriver(
    tmp_path: Path, launchers: dict[str, type[Launcher]] | None = None, **overrides: object
) -> SkyDriver:
    return await start(test_settings(tmp_path, **overrides), launchers, auth_settings(tmp_path))


@asynccontextmanager
async def running_skydriver(
    tmp_path: Path, launchers: dict[str, type[Launcher]] | None = None, **overrides: object
) -> AsyncIterator[SkyDriver]:
    """A test SkyDriver on a database of its own; stopped, and the database dropped, afterwards."""
    sky = await start_test_skydriver(tmp_path, launchers, **overrides)
    try:
        yield sky
    finally:
        await sky.stop()
        await drop_database(sky.settings.mongodb_database)


async def drop_database(name: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(MONGODB_URI)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@pytest.fixture
async def skydriver(tmp_path: Path) -> AsyncIterator[SkyDriver]:
    async with running_skydriver(tmp_path) as sky:
        yield sky


@pytest.fixture
async def rest(skydriver: SkyDriver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=skydriver.settings.url, timeout=30, headers=headers(skydriver)
    ) as client:
        yield client


@pytest.fixture
async def held_skydriver(tmp_path: Path) -> AsyncIterator[SkyDriver]:
    """SkyDriver whose launcher starts nothing: for route tests, scans stay where the test puts them."""
    from tests.doubles import HeldLauncher

    HeldLauncher.started = []
    async with running_skydriver(tmp_path, {"held": HeldLauncher}, launcher="held") as sky:
        yield sky


@pytest.fixture
async def api(held_skydriver: SkyDriver) -> AsyncIterator[httpx.AsyncClient]:
    """A user's client."""
    async with httpx.AsyncClient(
        base_url=held_skydriver.settings.url, timeout=30, headers=headers(held_skydriver)
    ) as client:
        yield client


@pytest.fixture
async def sys_api(held_skydriver: SkyDriver) -> AsyncIterator[httpx.AsyncClient]:
    """A system client (what the scanner server and client manager use), not scoped to a scan."""
    async with httpx.AsyncClient(
        base_url=held_skydriver.settings.url,
        timeout=30,
        headers=headers(held_skydriver, Role.SYSTEM),
    ) as client:
        yield client
