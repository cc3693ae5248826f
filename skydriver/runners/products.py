"""Builds the sky products of every stored result version, off the REST event loop, and answers position
queries on them.

`PUT /scan/{id}/result` stores the result as the scan's next version and marks it queued in the products
index (`store/products.py`); `submit()` wakes this runner. The runner takes queued scans one at a time, in
the order they were queued, reads the scan's *latest* stored result (so a version superseded while it
waited is never built), and builds it in a child process (`ProductWorkers`: a one-process pool started
with `spawn` at the first job, so the REST process never imports healpy, astropy or mocpy). A version
that arrives while an older one is being built waits for that build to end (it is not cut short: its
products are served until the newer ones are ready), then only the newest stored version is built.

A failed build (an unreadable result, a build over `SKYDRIVER_PRODUCTS_BUILD_TIMEOUT_S`, a dead builder
process) is logged and recorded in the index (`state: failed`, `error`), what was served stays served,
and the scan goes on: products never block a result. After a restart, scans whose products were queued or
being built are built again.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from skyscan_contract.errors import ScanNotFound, SkyDriverError

from ..settings import Settings
from ..store.products import ProductStore
from ..store.scans import ScanStore, StoredResultText
from . import products_job
from .products_job import BuildJob

LOG = logging.getLogger(__name__)
T = TypeVar("T")

#: a position query waits at most this long for the builder process (it may be busy with a build)
QUERY_TIMEOUT_S = 60.0
#: seconds between attempts when the runner itself fails (e.g. the database is unreachable)
RETRY_DELAY_S = 5.0


class ProductsBusy(SkyDriverError):
    """The builder process cannot take a position query now (503; retry shortly)."""

    status = 503


class BuildTimeout(Exception):
    pass


class ProductWorkers:
    """A pool of one `spawn`ed process, made at the first call and kept; replaced if it dies or a call
    with `kill_on_timeout` overruns (its process is killed)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def call(
        self, fn: Callable[..., T], *args: Any, timeout_s: float, kill_on_timeout: bool
    ) -> T:
        """`fn(*args)` in the child; TimeoutError after `timeout_s` (the child is killed if
        `kill_on_timeout`), BrokenProcessPool if the child died (the next call starts a new one)."""
        pool = self._executor()
        future = asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            if kill_on_timeout:
                self._discard(pool)
            raise
        except BrokenProcessPool:
            self._discard(pool)
            raise

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
        _terminate(pool)
        pool.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Stop the child now (a build in progress is abandoned: it is queued again at the next start)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            _terminate(pool)
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    def pids(self) -> list[int]:
        """The child's pid, if it runs (for tests)."""
        if self._pool is None:
            return []
        return [p.pid for p in (self._pool._processes or {}).values() if p.pid is not None]


def _terminate(pool: ProcessPoolExecutor) -> None:
    # the executor has no public way to stop a running call: end its process (the pool is then broken
    # and every waiting call fails with BrokenProcessPool)
    for process in list((pool._processes or {}).values()):
        if process.is_alive():
            process.terminate()
    # A child killed while it wrote a result leaves part of a message in the result pipe. The pool's
    # manager thread then waits for the rest for ever: this process holds the pipe's write end too,
    # so no end of file comes. That thread hung `close()` (SkyDriver's shutdown) and would hang the
    # interpreter's exit, which joins it. Closing our write end gives it the end of file: the pool
    # is broken, as it should be. (CPython 3.11 `ProcessPoolExecutor._result_queue`.)
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
    if writer is not None:
        writer.close()


class ProductsRunner:
    def __init__(self, settings: Settings, scans: ScanStore, products: ProductStore) -> None:
        self.settings = settings
        self.scans = scans
        self.products = products
        self.workers = ProductWorkers()
        self._queued: dict[str, None] = {}  # scan ids, in the order they were queued
        self._wake = asyncio.Event()
        self._waiting_queries = 0

    def submit(self, scan_id: str) -> None:
        """A new result version of `scan_id` is stored (and marked queued in the index)."""
        self._queued[scan_id] = None
        self._wake.set()

    async def run_forever(self) -> None:
        resumed = False
        while True:
            try:
                if not resumed:  # what a previous SkyDriver left queued or half built
                    for scan_id in await self.products.pending_scans():
                        self.submit(scan_id)
                    resumed = True
                await self._wake.wait()
                self._wake.clear()
                while self._queued:
                    scan_id = next(iter(self._queued))
                    del self._queued[scan_id]
                    await self.build_latest(scan_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                LOG.exception("products runner failed; retrying in %g s", RETRY_DELAY_S)
                await asyncio.sleep(RETRY_DELAY_S)

    async def build_latest(self, scan_id: str) -> None:
        """Build and serve the products of the scan's latest stored result, unless they are served."""
        stored = await self.scans.get_result_text(scan_id)
        index = await self.products.get_index(scan_id)
        if stored is None or index is None:
            return
        if index.current is not None and index.current.version >= stored.version:
            return
        try:
            job = await self._job(scan_id, stored)
        except ScanNotFound:
            LOG.warning("scan %s: no manifest; its products are not built", scan_id)
            return
        version = stored.version
        await self.products.building(scan_id, version)
        timeout_s = self.settings.products_build_timeout_s
        try:
            built = await self.workers.call(
                products_job.build, job, timeout_s=timeout_s, kill_on_timeout=True
            )
        except TimeoutError:
            await self._failed(
                scan_id,
                version,
                f"the build took longer than SKYDRIVER_PRODUCTS_BUILD_TIMEOUT_S ({timeout_s:g} s)",
            )
            return
        except BrokenProcessPool:
            await self._failed(
                scan_id, version, "the builder process died (out of memory or killed?)"
            )
            return
        except Exception as e:  # what the build raised in the child (ValueError: unreadable result)
            await self._failed(scan_id, version, f"{type(e).__name__}: {e}")
            return
        served = await self.products.publish(
            scan_id,
            version=version,
            is_final=stored.is_final,
            build_s=built.build_s,
            products=[(p.name, p.content_type, p.etag, p.data) for p in built.products],
        )
        LOG.info(
            "scan %s: products of result version %d (%s) %s: %d files, %.1f kB, built in %.2f s",
            scan_id,
            version,
            "final" if stored.is_final else "partial",
            "served" if served else "not served (a newer version is)",
            len(built.products),
            sum(len(p.data) for p in built.products) / 1000,
            built.build_s,
        )

    async def _failed(self, scan_id: str, version: int, message: str) -> None:
        LOG.error("scan %s: products of result version %d failed: %s", scan_id, version, message)
        await self.products.failed(scan_id, version, message)

    async def _job(self, scan_id: str, stored: StoredResultText) -> BuildJob:
        """What the build needs beyond the result: the manifest's event and classifiers, the request's
        reconstruction and nsides, and the notice's sequence (initial for a scan, update for its n-th
        rescan with record number n + 1)."""
        manifest = await self.scans.get_manifest(scan_id, include_deleted=True)
        try:
            request = await self.scans.get_request(scan_id)
        except ScanNotFound:
            request = None
        alert_type, record = "initial", 1
        if request is not None and scan_id in request.rescan_ids:
            alert_type, record = "update", request.rescan_ids.index(scan_id) + 2
        s = self.settings
        return BuildJob(
            scan_id=scan_id,
            version=stored.version,
            result_json=stored.json_text,
            is_final=stored.is_final,
            stored_at=stored.stored_at,
            event_metadata=None
            if manifest.event_metadata is None
            else manifest.event_metadata.model_dump(mode="json"),
            reco_algo=None if request is None else request.reco_algo,
            nside_progression=None
            if request is None
            else {int(k): int(v) for k, v in request.nsides.to_json_dict().items()},
            classifiers=dict(manifest.classifiers),
            alert_type=alert_type,
            record_number=record,
            alert_tense=s.products_alert_tense,
            convention=s.products_convention,
            smoothing_deg=s.products_smoothing_deg,
            flat_nside=s.products_flat_nside,
            healpix_url=f"{s.url}/scan/{scan_id}/products/skymap.multiorder.fits",
        )

    async def position(
        self, multiorder_fits: bytes, ra_deg: float, dec_deg: float, radius_deg: float | None
    ) -> dict[str, Any]:
        """`position_query` in the builder process (ProductsBusy if too many wait, or it is too slow)."""
        limit = self.settings.products_max_waiting_queries
        if self._waiting_queries >= limit:
            raise ProductsBusy(
                f"{limit} position queries are waiting already; try again in a few seconds"
            )
        self._waiting_queries += 1
        try:
            return await self.workers.call(
                products_job.position,
                multiorder_fits,
                ra_deg,
                dec_deg,
                radius_deg,
                timeout_s=QUERY_TIMEOUT_S,
                kill_on_timeout=False,
            )
        except (TimeoutError, BrokenProcessPool) as e:
            raise ProductsBusy(
                "the products process could not answer the position query now; try again shortly"
            ) from e
        finally:
            self._waiting_queries -= 1

    async def close(self) -> None:
        await self.workers.close()
