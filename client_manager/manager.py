"""The client manager: one per scan, beside the scanner server. Starts the scan's workers on a backend,
keeps them going, reports them to SkyDriver, and stops them when the scan has its final result or is
deleted."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import httpx

from skyscan_contract.documents import WorkerRequest
from skyscan_contract.messages import WorkforcePutBody
from skyscan_contract.settings import ManagerSettings

from .backends.base import WorkerBackend, Workforce

LOG = logging.getLogger(__name__)


class SkyDriverLink:
    def __init__(self, settings: ManagerSettings, scan_id: str) -> None:
        token = settings.skydriver_auth.get_secret_value()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(
            base_url=settings.skydriver_address.rstrip("/"), headers=headers, timeout=10.0
        )
        self.scan_id = scan_id

    async def status(self) -> dict[str, Any] | None:
        try:
            resp = await self.client.get(f"/scan/{self.scan_id}/status")
            resp.raise_for_status()
            data: dict[str, Any] = resp.json()
            return data
        except httpx.HTTPError as e:
            LOG.warning("could not read the scan status: %s", e)
            return None

    async def worker_requests(self) -> list[WorkerRequest]:
        """Requests for more workers made through SkyDriver (`actions/add-workers`)."""
        try:
            resp = await self.client.get(f"/scan/{self.scan_id}/workforce")
            resp.raise_for_status()
            return [
                WorkerRequest.model_validate(r) for r in resp.json().get("worker_requests") or []
            ]
        except (httpx.HTTPError, ValueError) as e:
            LOG.warning("could not read worker requests: %s", e)
            return []

    async def report(self, backend: str, workforce: Workforce, *, stopped: bool = False) -> None:
        body = WorkforcePutBody(
            backend=backend,
            statuses={str(k): v for k, v in workforce.statuses.items()},
            n_running=workforce.n_running,
            n_failed=workforce.n_failed,
            n_requested=workforce.n_requested,
            top_errors=dict(workforce.top_errors.most_common(10)),
            stopped=stopped,
        )
        try:
            resp = await self.client.put(
                f"/scan/{self.scan_id}/workforce", json=body.model_dump(mode="json")
            )
            resp.raise_for_status()
        except httpx.HTTPError as e:
            LOG.warning("could not report the workforce: %s", e)

    async def aclose(self) -> None:
        await self.client.aclose()


async def wait_for_file(
    path: Path, timeout_s: float, stop_event: asyncio.Event, poll_s: float = 0.2
) -> bool:
    """Until `path` exists (True) or `stop_event` is set (False: a server that never starts, e.g. of a
    scan deleted meanwhile, must not keep a stopped client manager waiting)."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the scanner server did not write {path} within {timeout_s:g}s")
        try:
            await asyncio.wait_for(stop_event.wait(), poll_s)
            return False
        except TimeoutError:
            pass
    return True


async def manage(
    settings: ManagerSettings,
    scan_id: str,
    backend: WorkerBackend,
    n_workers: int,
    startup_json: Path,
    poll_interval_s: float,
    stop_event: asyncio.Event,
) -> int:
    """Run until the scan is complete/deleted or `stop_event` is set; returns the exit code."""
    link = SkyDriverLink(settings, scan_id) if settings.skydriver_address else None
    try:
        if not await wait_for_file(startup_json, settings.startup_timeout_s, stop_event):
            LOG.info("stopped before the scanner server wrote its startup data")
            return 0
        await backend.start(n_workers)
        honoured: set[str] = set()
        last_contact = time.monotonic()
        while not stop_event.is_set():
            if link is not None:
                for request in await link.worker_requests():
                    if request.id not in honoured:
                        honoured.add(request.id)
                        LOG.info("adding %d workers (request %s)", request.n_workers, request.id)
                        await backend.add_workers(request.n_workers)
            workforce = await backend.poll()
            if link is not None:
                await link.report(backend.name, workforce)
                status = await link.status()
                if status is not None:
                    last_contact = time.monotonic()
                elif time.monotonic() - last_contact > settings.skydriver_unreachable_timeout_s:
                    LOG.error(
                        "SkyDriver unreachable for %.0fs: stopping the workers",
                        time.monotonic() - last_contact,
                    )
                    break
                if status and (status.get("scan_complete") or status.get("is_deleted")):
                    LOG.info(
                        "scan %s is %s: stopping workers",
                        scan_id,
                        "complete" if status.get("scan_complete") else "deleted",
                    )
                    break
            if workforce.n_active == 0:
                LOG.error("no worker is left (%s)", dict(workforce.statuses))
                break
            try:
                await asyncio.wait_for(stop_event.wait(), poll_interval_s)
            except TimeoutError:
                pass
        await backend.stop()
        final = await backend.poll()
        if link is not None:
            await link.report(backend.name, final, stopped=True)
        return 0
    finally:
        await backend.stop()
        if link is not None:
            await link.aclose()
