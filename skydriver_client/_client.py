"""`Client` and `AsyncClient`: twins with the same methods, both driving the I/O-free core in `_core`."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from skyscan_contract.nsides import DEFAULT_NSIDES

from . import _core
from ._models import Manifest, ScanProgress, ScanRequest, ScanStatus
from ._types import ClustersInput, EventInput, Filter, NSidesInput, TimeoutInput

if TYPE_CHECKING:
    from skyreader import SkyScanResult

T = TypeVar("T")
#: called by `wait()` with each new progress; an `AsyncClient` also awaits what it returns, if awaitable
ProgressCallback = Callable[[ScanProgress], object]


def _deserialize(pydict: dict[str, Any]) -> SkyScanResult:
    from skyreader import SkyScanResult  # imported on use: it pulls in healpy

    return SkyScanResult.deserialize(pydict)


class _Base:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        timeout: TimeoutInput,
        retries: int,
        backoff_s: float,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self._options = _core.http_options(base_url, token, timeout)
        self._policy = _core.RetryPolicy(retries=retries, backoff_s=backoff_s)
        self.base_url = str(self._options["base_url"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"


class Client(_Base):
    """A blocking SkyDriver client.

    ```python
    with Client("https://skydriver.example", token=TOKEN) as sd:
        scan = sd.launch("event.json", real_event=True, nsides="8:0 64:12", cluster="osg:100")
        sd.wait(scan.scan_id, on_progress=print)
        result = sd.result(scan.scan_id)  # a skyreader.SkyScanResult
    ```

    `timeout` applies to each request (seconds, an `httpx.Timeout`, or None for none). Failed requests are
    retried `retries` times with exponential backoff from `backoff_s`, with jitter: connection failures before
    the request was sent always, and timeouts, broken connections and 5xx answers for idempotent calls only
    (not for launch, rescan, add-workers). Pass `transport` (e.g. `httpx.MockTransport`) to test against a
    fake. Errors are `SkyDriverError`s; see `skydriver_client` for the tree.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: TimeoutInput = _core.DEFAULT_TIMEOUT_S,
        retries: int = _core.DEFAULT_RETRIES,
        transport: httpx.BaseTransport | None = None,
        *,
        backoff_s: float = _core.DEFAULT_BACKOFF_S,
    ) -> None:
        super().__init__(base_url, token, timeout, retries, backoff_s)
        self._http = httpx.Client(transport=transport, **self._options)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: _core.Call[T]) -> T:
        steps = _core.exchange(call, self._policy, self._http.base_url)
        reply: _core.Reply = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as done:
                return cast(T, done.value)
            if isinstance(step, _core.Sleep):
                time.sleep(step.seconds)
                reply = None
                continue
            try:
                reply = self._http.request(
                    step.method, step.url, params=step.params, json=step.body
                )
            except httpx.TransportError as e:
                reply = e

    # -- launching ------------------------------------------------------------------------------
    def launch(
        self,
        event: EventInput,
        *,
        real_event: bool,
        reco_algo: str,
        nsides: NSidesInput = str(DEFAULT_NSIDES),
        cluster: ClustersInput = "local:2",
        docker_tag: str = "latest",
        max_pixel_reco_time: int = 3600,
        predictive_scanning_threshold: float = 1.0,
        priority: int = 0,
        classifiers: dict[str, Any] | None = None,
        scanner_server_env: dict[str, Any] | None = None,
        **extra: Any,
    ) -> Manifest:
        """Launch a scan of `event` (a dict, JSON text, or a JSON file's path); returns its manifest, whose
        `scan_id` names the scan. Other `POST /scan` fields go in `extra`. The scan starts in the background:
        follow it with `status()`, `progress()` or `wait()`."""
        request = ScanRequest.build(
            event,
            real_event=real_event,
            reco_algo=reco_algo,
            nsides=nsides,
            cluster=cluster,
            docker_tag=docker_tag,
            max_pixel_reco_time=max_pixel_reco_time,
            predictive_scanning_threshold=predictive_scanning_threshold,
            priority=priority,
            classifiers=classifiers,
            scanner_server_env=scanner_server_env,
            **extra,
        )
        return self.submit(request)

    def submit(self, request: ScanRequest) -> Manifest:
        """Launch the scan a `ScanRequest` describes; returns its manifest."""
        return self._run(_core.submit(request))

    # -- following --------------------------------------------------------------------------------
    def status(self, scan_id: str) -> ScanStatus:
        """The scan's state (deleted scans included)."""
        return self._run(_core.status(scan_id))

    def manifest(self, scan_id: str, include_deleted: bool = False) -> Manifest:
        return self._run(_core.manifest(scan_id, include_deleted))

    def progress(self, scan_id: str) -> ScanProgress:
        """Pixels done and sent per nside, rate and ETA, from the scanner's last report."""
        return self._run(_core.progress(scan_id))

    def wait(
        self,
        scan_id: str,
        *,
        poll_s: float = 2.0,
        timeout_s: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ScanStatus:
        """Poll every `poll_s` until the scan has its final result; returns the final status. Calls
        `on_progress` whenever the progress changed. Raises ScanFailed if the scan ends without a final
        result, WaitTimeout after `timeout_s` (the scan goes on)."""
        waiter = _core.Waiter(scan_id, poll_s, timeout_s)
        while True:
            status = self.status(scan_id)
            if on_progress is not None:
                news = waiter.news(self.progress(scan_id), status)
                if news is not None:
                    on_progress(news)
            if waiter.finished(status):
                return status
            time.sleep(waiter.sleep_s())

    def result(self, scan_id: str, include_deleted: bool = False) -> SkyScanResult:
        """The scan's result (final, or partial while it runs) as a `skyreader.SkyScanResult`; ResultNotReady
        before the first partial result. `result_json()` tells final from partial (`is_final`)."""
        document = self.result_json(scan_id, include_deleted)
        return _deserialize(_core.skyscan_result(scan_id, document))

    def result_json(self, scan_id: str, include_deleted: bool = False) -> dict[str, Any]:
        """The result document `{scan_id, skyscan_result, is_final}`, or `{}` before the first result."""
        return self._run(_core.result_json(scan_id, include_deleted))

    # -- finding ----------------------------------------------------------------------------------
    def find(
        self, filter: Filter, include_deleted: bool = False, projection: list[str] | None = None
    ) -> list[Manifest]:
        """Manifests matching a MongoDB query, e.g. `{"event_metadata.run_id": 138632}`; `projection`
        lists the manifest fields wanted (default: all but the large legacy ones)."""
        return self._run(_core.find(filter, include_deleted, projection))

    def find_by_event(
        self, run_id: int, event_id: int, include_deleted: bool = False
    ) -> list[Manifest]:
        """Manifests of the scans of one event (known once each scanner has read the event)."""
        query = {"event_metadata.run_id": run_id, "event_metadata.event_id": event_id}
        return self.find(query, include_deleted)

    def backlog(self) -> list[dict[str, Any]]:
        """Scans waiting to start: `{scan_id, timestamp, priority, ...}`, oldest first."""
        return self._run(_core.backlog())

    def scan_request(self, scan_id: str) -> dict[str, Any]:
        """The stored request of a scan (a rescan id gives the request it was made from)."""
        return self._run(_core.scan_request(scan_id))

    # -- acting -----------------------------------------------------------------------------------
    def delete(self, scan_id: str, delete_completed_scan: bool = False) -> Manifest:
        """Abort the scan (its instance and workers stop) and hide it; returns its manifest. A scan with a
        final result is only deleted with `delete_completed_scan=True` (else InvalidRequest)."""
        return self._run(_core.delete(scan_id, delete_completed_scan))

    def rescan(
        self, scan_id: str, abort_first: bool = False, replace_scan: bool = False
    ) -> Manifest:
        """Launch the same request again as a new scan; returns the new manifest. `abort_first` deletes the
        old scan first; `replace_scan` makes the old id redirect to the new scan."""
        return self._run(_core.rescan(scan_id, abort_first, replace_scan))

    def add_workers(self, scan_id: str, n_workers: int, cluster_location: str) -> dict[str, Any]:
        """Ask for `n_workers` more workers on `cluster_location`; returns `{taskforce_uuid, n_workers}`."""
        return self._run(_core.add_workers(scan_id, n_workers, cluster_location))


class AsyncClient(_Base):
    """The asyncio twin of `Client`: the same methods, awaited. Use `async with AsyncClient(...)`."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: TimeoutInput = _core.DEFAULT_TIMEOUT_S,
        retries: int = _core.DEFAULT_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        backoff_s: float = _core.DEFAULT_BACKOFF_S,
    ) -> None:
        super().__init__(base_url, token, timeout, retries, backoff_s)
        self._http = httpx.AsyncClient(transport=transport, **self._options)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: _core.Call[T]) -> T:
        steps = _core.exchange(call, self._policy, self._http.base_url)
        reply: _core.Reply = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as done:
                return cast(T, done.value)
            if isinstance(step, _core.Sleep):
                await asyncio.sleep(step.seconds)
                reply = None
                continue
            try:
                reply = await self._http.request(
                    step.method, step.url, params=step.params, json=step.body
                )
            except httpx.TransportError as e:
                reply = e

    async def launch(
        self,
        event: EventInput,
        *,
        real_event: bool,
        reco_algo: str,
        nsides: NSidesInput = str(DEFAULT_NSIDES),
        cluster: ClustersInput = "local:2",
        docker_tag: str = "latest",
        max_pixel_reco_time: int = 3600,
        predictive_scanning_threshold: float = 1.0,
        priority: int = 0,
        classifiers: dict[str, Any] | None = None,
        scanner_server_env: dict[str, Any] | None = None,
        **extra: Any,
    ) -> Manifest:
        """See `Client.launch`."""
        request = ScanRequest.build(
            event,
            real_event=real_event,
            reco_algo=reco_algo,
            nsides=nsides,
            cluster=cluster,
            docker_tag=docker_tag,
            max_pixel_reco_time=max_pixel_reco_time,
            predictive_scanning_threshold=predictive_scanning_threshold,
            priority=priority,
            classifiers=classifiers,
            scanner_server_env=scanner_server_env,
            **extra,
        )
        return await self.submit(request)

    async def submit(self, request: ScanRequest) -> Manifest:
        return await self._run(_core.submit(request))

    async def status(self, scan_id: str) -> ScanStatus:
        return await self._run(_core.status(scan_id))

    async def manifest(self, scan_id: str, include_deleted: bool = False) -> Manifest:
        return await self._run(_core.manifest(scan_id, include_deleted))

    async def progress(self, scan_id: str) -> ScanProgress:
        return await self._run(_core.progress(scan_id))

    async def wait(
        self,
        scan_id: str,
        *,
        poll_s: float = 2.0,
        timeout_s: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ScanStatus:
        """See `Client.wait`; `on_progress` may also be a coroutine function."""
        waiter = _core.Waiter(scan_id, poll_s, timeout_s)
        while True:
            status = await self.status(scan_id)
            if on_progress is not None:
                news = waiter.news(await self.progress(scan_id), status)
                if news is not None:
                    outcome = on_progress(news)
                    if inspect.isawaitable(outcome):
                        await outcome
            if waiter.finished(status):
                return status
            await asyncio.sleep(waiter.sleep_s())

    async def result(self, scan_id: str, include_deleted: bool = False) -> SkyScanResult:
        document = await self.result_json(scan_id, include_deleted)
        return _deserialize(_core.skyscan_result(scan_id, document))

    async def result_json(self, scan_id: str, include_deleted: bool = False) -> dict[str, Any]:
        return await self._run(_core.result_json(scan_id, include_deleted))

    async def find(
        self, filter: Filter, include_deleted: bool = False, projection: list[str] | None = None
    ) -> list[Manifest]:
        return await self._run(_core.find(filter, include_deleted, projection))

    async def find_by_event(
        self, run_id: int, event_id: int, include_deleted: bool = False
    ) -> list[Manifest]:
        query = {"event_metadata.run_id": run_id, "event_metadata.event_id": event_id}
        return await self.find(query, include_deleted)

    async def backlog(self) -> list[dict[str, Any]]:
        return await self._run(_core.backlog())

    async def scan_request(self, scan_id: str) -> dict[str, Any]:
        return await self._run(_core.scan_request(scan_id))

    async def delete(self, scan_id: str, delete_completed_scan: bool = False) -> Manifest:
        return await self._run(_core.delete(scan_id, delete_completed_scan))

    async def rescan(
        self, scan_id: str, abort_first: bool = False, replace_scan: bool = False
    ) -> Manifest:
        return await self._run(_core.rescan(scan_id, abort_first, replace_scan))

    async def add_workers(
        self, scan_id: str, n_workers: int, cluster_location: str
    ) -> dict[str, Any]:
        return await self._run(_core.add_workers(scan_id, n_workers, cluster_location))
