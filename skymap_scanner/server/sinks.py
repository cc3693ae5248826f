"""Where the server's reports go: SkyDriver's REST API, and/or files in an output directory."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from pathlib import Path
from typing import Any, Protocol

import httpx

from skyscan_contract.messages import ManifestPatchBody, ResultPutBody

LOG = logging.getLogger(__name__)


class NotDelivered(Exception):
    """A partial result did not reach its sink (no answer, a 5xx): its results stay unacknowledged and
    the next partial result carries them."""


class Refused(Exception):
    """SkyDriver refused a result (a 4xx): trying again will not help, so the server stops (a crash: its
    queues stay, and a restarted server resumes)."""


class ReportSink(Protocol):
    async def progress(self, body: ManifestPatchBody, *, urgent: bool) -> None: ...

    async def result(self, result: dict[str, Any], *, is_final: bool, urgent: bool) -> None:
        """Deliver a result; returns only once it is stored (raises NotDelivered or Refused if not)."""
        ...


class SkyDriverSink:
    """PATCH /scan/{id}/manifest and PUT /scan/{id}/result. Non-urgent calls: one retry; a failed progress
    report is logged and ignored (the next one supersedes it), a failed partial result raises NotDelivered
    or Refused (its results must stay unacknowledged); urgent ones (the final result) retry with backoff
    for up to `urgent_retry_s`."""

    def __init__(
        self, address: str, token: str, scan_id: str, urgent_retry_s: float = 3600.0
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(base_url=address.rstrip("/"), headers=headers)
        self.scan_id = scan_id
        self.urgent_retry_s = urgent_retry_s

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self, method: str, path: str, *, json_body: Any = None, urgent: bool, quiet: bool = True
    ) -> Any:
        deadline = time.monotonic() + (self.urgent_retry_s if urgent else 0)
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await self._client.request(
                    method, path, json=json_body, timeout=60.0 if urgent else 10.0
                )
                if resp.status_code < 500:
                    resp.raise_for_status()
                    return resp.json()
                raise httpx.HTTPStatusError(
                    f"{resp.status_code} from SkyDriver", request=resp.request, response=resp
                )
            except (httpx.TransportError, httpx.HTTPStatusError) as e:
                client_error = isinstance(e, httpx.HTTPStatusError) and e.response.status_code < 500
                out_of_time = time.monotonic() > deadline and attempt >= 2
                if client_error or out_of_time:
                    if urgent:
                        raise
                    if not quiet:
                        failure = Refused if client_error else NotDelivered
                        raise failure(f"SkyDriver {method} {path}: {e}") from e
                    LOG.warning("SkyDriver %s %s failed (ignored): %s", method, path, e)
                    return None
                delay = min(30.0, 0.5 * 2**attempt) * (0.5 + random.random())
                if urgent:  # a final result waits on this: say so, or the server looks hung
                    LOG.warning(
                        "SkyDriver %s %s failed (attempt %d; again in %.1f s, for up to %.0f s "
                        "more): %s",
                        method,
                        path,
                        attempt,
                        delay,
                        max(0.0, deadline - time.monotonic()),
                        str(e) or type(e).__name__,
                    )
                await asyncio.sleep(delay)

    async def get_event(self) -> dict[str, Any]:
        """The scan's event (GET /scan/{id}/i3-event)."""
        doc: dict[str, Any] = await self.request(
            "GET", f"/scan/{self.scan_id}/i3-event", urgent=True
        )
        return dict(doc["i3_event"])

    async def get_result(self) -> dict[str, Any]:
        """The stored Result (`{}` before the first)."""
        doc: dict[str, Any] = await self.request("GET", f"/scan/{self.scan_id}/result", urgent=True)
        return doc

    async def get_status(self) -> dict[str, Any] | None:
        status: dict[str, Any] | None = await self.request(
            "GET", f"/scan/{self.scan_id}/status", urgent=False
        )
        return status

    async def progress(self, body: ManifestPatchBody, *, urgent: bool) -> None:
        await self.request(
            "PATCH", f"/scan/{self.scan_id}/manifest", json_body=body.model_dump(), urgent=urgent
        )

    async def result(self, result: dict[str, Any], *, is_final: bool, urgent: bool) -> None:
        await self.request(
            "PUT",
            f"/scan/{self.scan_id}/result",
            json_body=ResultPutBody(skyscan_result=result, is_final=is_final).model_dump(),
            urgent=urgent,
            quiet=False,
        )


class FileSink:
    """`<out>/scan-manifest.json` at each progress report and `<out>/<result file>` at each result."""

    def __init__(self, output_dir: Path, result_name: str) -> None:
        self.output_dir = output_dir
        self.result_name = result_name
        output_dir.mkdir(parents=True, exist_ok=True)

    def _write(self, name: str, data: Any) -> None:
        tmp = self.output_dir / f".{name}.tmp"
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        tmp.replace(self.output_dir / name)

    async def progress(self, body: ManifestPatchBody, *, urgent: bool) -> None:
        self._write("scan-manifest.json", body.model_dump())

    async def result(self, result: dict[str, Any], *, is_final: bool, urgent: bool) -> None:
        if result:
            self._write(self.result_name, result)
