"""Scan documents: manifest, request, event, result and backlog entry, written and read together.

FerretDB v1 (our one-machine database) cannot store nested arrays, which events (pulse rows) and results
(pixel rows) are made of; those two are therefore stored as JSON text (`json_text`, `skyscan_result_json`),
and `request_clusters` as a list of objects. The API returns them in the original's shapes."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ReturnDocument

from ..errors import InvalidRequest, ScanNotFound
from .db import Database, Doc

NOT_YET_REQUESTED = "not-yet-requested"


#: manifest fields kept as JSON text: free-form objects from the scanner and client manager may hold keys
#: with '.' ("done est. percent", "0.1") or nested arrays, which FerretDB refuses
JSON_TEXT_FIELDS = ("progress", "scan_metadata", "workforce")


def _clean(doc: Doc | None) -> Doc | None:
    if doc is not None:
        doc.pop("_id", None)
        for key in JSON_TEXT_FIELDS:
            if f"{key}_json" in doc:
                text = doc.pop(f"{key}_json")
                doc[key] = None if text is None else json.loads(text)
    return doc


def _encode(fields: Doc) -> Doc:
    out = dict(fields)
    for key in JSON_TEXT_FIELDS:
        if key in out:
            value = out.pop(key)
            out[f"{key}_json"] = None if value is None else json.dumps(value)
    return out


class ScanStore:
    def __init__(self, db: Database, read_cache_ttl_s: float = 1.0) -> None:
        self.db = db
        # Status polls (the scanner's kill switch, clients, dashboards) read the same manifest many times
        # a second. Reads through `get_manifest_cached` / `result_is_final` may be up to this old; every
        # write made through this store refreshes the entry at once.
        self.read_cache_ttl_s = read_cache_ttl_s
        self._manifests: dict[str, tuple[float, Doc]] = {}
        self._finals: dict[str, tuple[float, bool]] = {}
        self._refreshing: dict[str, asyncio.Future[None]] = {}
        # FerretDB v1 loses concurrent updates to one document (measured: 13 of 50 concurrent $set kept),
        # so every write to a scan's documents is serialised here. Enough for one SkyDriver process;
        # several replicas need a real MongoDB, whose single-document updates are atomic.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # -- create -------------------------------------------------------------------------------
    async def create_scan(
        self,
        *,
        scan_id: str,
        request_doc: Doc | None,
        event: dict[str, Any] | None,
        i3_event_id: str,
        scanner_server_args: str,
        classifiers: dict[str, Any],
        priority: int,
        clusters: list[str],
    ) -> Doc:
        """Store event (if new), request (None for a rescan: it shares its origin's), manifest and
        backlog entry; returns the manifest. All or nothing."""
        new_event = event is not None
        if event is not None:
            i3_event_id = uuid.uuid4().hex
        elif not await self.db.i3_events.find_one({"i3_event_id": i3_event_id}, {"_id": 1}):
            raise InvalidRequest("i3 event not found")
        now = time.time()
        manifest: Doc = {
            "scan_id": scan_id,
            "timestamp": now,
            "is_deleted": False,
            "scanner_server_args": scanner_server_args,
            "ewms_workflow_id": NOT_YET_REQUESTED,
            "ewms_address": None,
            "ewms_task": "use 'ewms_workflow_id'",
            "priority": priority,
            "classifiers": classifiers,
            "i3_event_id": i3_event_id,
            "event_i3live_json_dict": "use 'i3_event_id'",
            "event_i3live_json_dict__hash": None,
            "event_metadata": None,
            "scan_metadata": None,
            "progress": None,
            "replaced_by_scan_id": None,
            "instance": None,
            "workforce": None,
            "last_updated": time.time(),
        }
        stored_request = None
        if request_doc is not None:
            stored_request = {
                **request_doc,
                "request_clusters": [
                    {"cluster": name, "n_workers": n} for name, n in request_doc["request_clusters"]
                ],
                "scan_id": scan_id,
                "i3_event_id": i3_event_id,
            }
        backlog_entry = {
            "scan_id": scan_id,
            "timestamp": now,
            "priority": priority,
            "pending_timestamp": 0.0,
            "next_attempt": 0,
            "clusters": sorted(set(clusters)),
        }
        try:  # no transactions on FerretDB: undo what was written if a later write fails
            if new_event:
                await self.db.i3_events.insert_one(
                    {"i3_event_id": i3_event_id, "json_text": json.dumps(event)}
                )
            if stored_request is not None:
                await self.db.scan_requests.insert_one(stored_request)
            await self.db.manifests.insert_one(_encode(manifest))
            await self.db.backlog.insert_one(backlog_entry)
        except Exception:
            await self.db.backlog.delete_one({"scan_id": scan_id})
            await self.db.manifests.delete_one({"scan_id": scan_id})
            if stored_request is not None:
                await self.db.scan_requests.delete_one({"scan_id": scan_id})
            if new_event:
                await self.db.i3_events.delete_one({"i3_event_id": i3_event_id})
            raise
        return manifest

    # -- read ---------------------------------------------------------------------------------
    async def get_manifest(self, scan_id: str, *, include_deleted: bool = False) -> Doc:
        doc = _clean(await self.db.manifests.find_one({"scan_id": scan_id}))
        self._remember(scan_id, doc)
        if doc is None or (doc["is_deleted"] and not include_deleted):
            raise ScanNotFound("Not Found")
        return doc

    async def get_manifest_cached(self, scan_id: str, *, include_deleted: bool = False) -> Doc:
        """Like get_manifest, but may answer from a copy at most `read_cache_ttl_s` old. The returned
        document is shared: callers only read it."""
        hit = self._manifests.get(scan_id)
        if hit is None or time.monotonic() - hit[0] > self.read_cache_ttl_s:
            await self._single_flight(f"manifest:{scan_id}", lambda: self._refresh(scan_id))
            hit = self._manifests.get(scan_id)
            if hit is None:
                raise ScanNotFound("Not Found")
        doc = hit[1]
        if doc["is_deleted"] and not include_deleted:
            raise ScanNotFound("Not Found")
        return doc

    async def _refresh(self, scan_id: str) -> None:
        self._remember(scan_id, _clean(await self.db.manifests.find_one({"scan_id": scan_id})))

    def _remember(self, scan_id: str, doc: Doc | None) -> None:
        if doc is None:
            self._manifests.pop(scan_id, None)
        else:
            self._manifests[scan_id] = (time.monotonic(), copy.deepcopy(doc))

    async def get_request(self, scan_id: str) -> Doc:
        """The request of a scan, or of the scan a rescan id was made from."""
        doc = _clean(
            await self.db.scan_requests.find_one(
                {"$or": [{"scan_id": scan_id}, {"rescan_ids": scan_id}]}
            )
        )
        if doc is None:
            raise ScanNotFound("Scan request not found")
        doc["request_clusters"] = [[c["cluster"], c["n_workers"]] for c in doc["request_clusters"]]
        return doc

    async def get_event(self, i3_event_id: str) -> dict[str, Any] | None:
        doc = await self.db.i3_events.find_one({"i3_event_id": i3_event_id})
        return None if doc is None else dict(json.loads(doc["json_text"]))

    async def get_result(self, scan_id: str) -> Doc:
        """The Result `{scan_id, skyscan_result, is_final}`, or `{}` before the first one."""
        doc = await self.db.results.find_one({"scan_id": scan_id})
        if doc is None:
            return {}
        return {
            "scan_id": doc["scan_id"],
            "skyscan_result": json.loads(doc["skyscan_result_json"]),
            "is_final": doc["is_final"],
        }

    async def result_is_final(self, scan_id: str) -> bool:
        """Whether the scan has its final result (cached like manifests; a final result stays final)."""
        hit = self._finals.get(scan_id)
        if hit is not None and (hit[1] or time.monotonic() - hit[0] <= self.read_cache_ttl_s):
            return hit[1]
        await self._single_flight(f"final:{scan_id}", lambda: self._refresh_final(scan_id))
        return self._finals[scan_id][1]

    async def _refresh_final(self, scan_id: str) -> None:
        doc = await self.db.results.find_one({"scan_id": scan_id}, {"is_final": 1})
        self._finals[scan_id] = (time.monotonic(), bool(doc and doc.get("is_final")))

    async def _single_flight(self, key: str, read: Callable[[], Awaitable[None]]) -> None:
        """Run `read` once for everyone waiting on `key` at the same time (no thundering herd)."""
        flight = self._refreshing.get(key)
        if flight is None:
            flight = asyncio.ensure_future(read())
            self._refreshing[key] = flight
            flight.add_done_callback(lambda _: self._refreshing.pop(key, None))
        await asyncio.shield(flight)

    # -- update -------------------------------------------------------------------------------
    async def update_manifest(
        self, scan_id: str, fields: Doc, *, filter_extra: Doc | None = None
    ) -> Doc | None:
        async with self._locks[scan_id]:
            return await self._update_manifest(scan_id, fields, filter_extra=filter_extra)

    async def _update_manifest(
        self, scan_id: str, fields: Doc, *, filter_extra: Doc | None = None
    ) -> Doc | None:
        doc = await self.db.manifests.find_one_and_update(
            {"scan_id": scan_id, **(filter_extra or {})},
            {"$set": {**_encode(fields), "last_updated": time.time()}},
            return_document=ReturnDocument.AFTER,
        )
        cleaned = _clean(doc)
        self._remember(scan_id, cleaned)
        return cleaned

    async def patch_manifest(self, scan_id: str, patch: Doc) -> Doc:
        """Progress replaced wholesale; event_metadata and scan_metadata are write-once."""
        async with self._locks[scan_id]:
            return await self._patch_manifest(scan_id, patch)

    async def _patch_manifest(self, scan_id: str, patch: Doc) -> Doc:
        manifest = await self.get_manifest(scan_id, include_deleted=True)
        fields: Doc = {}
        for key in ("event_metadata", "scan_metadata"):
            new = patch.get(key)
            if not new:
                continue
            old = manifest.get(key)
            if old and old != new:
                raise InvalidRequest(f"Cannot change an existing {key}")
            if not old:
                fields[key] = new
        if patch.get("progress"):
            fields["progress"] = patch["progress"]
        if not fields:
            return manifest
        updated = await self._update_manifest(scan_id, fields)
        if updated is None:
            raise ScanNotFound("Not Found")
        return updated

    async def put_result(self, scan_id: str, skyscan_result: Doc, is_final: bool) -> Doc:
        await self.get_manifest(scan_id, include_deleted=True)  # 404 for an unknown scan
        if not skyscan_result:
            return {}
        stored = {
            "scan_id": scan_id,
            "skyscan_result_json": json.dumps(skyscan_result, allow_nan=True),
            "is_final": is_final,
        }
        async with self._locks[f"result:{scan_id}"]:
            await self.db.results.replace_one({"scan_id": scan_id}, stored, upsert=True)
            self._finals[scan_id] = (time.monotonic(), is_final)
        return {"scan_id": scan_id, "skyscan_result": skyscan_result, "is_final": is_final}

    async def mark_deleted(self, scan_id: str) -> Doc:
        doc = await self.update_manifest(scan_id, {"is_deleted": True})
        if doc is None:
            raise ScanNotFound("Not Found")
        await self.db.backlog.delete_one({"scan_id": scan_id})
        return doc

    async def add_rescan_id(self, origin_scan_id: str, new_scan_id: str) -> Doc:
        """Append a rescan id to the request that `origin_scan_id` (a scan or rescan id) belongs to."""
        async with self._locks["scan-requests"]:
            doc = await self.db.scan_requests.find_one_and_update(
                {"$or": [{"scan_id": origin_scan_id}, {"rescan_ids": origin_scan_id}]},
                {"$push": {"rescan_ids": new_scan_id}},
                return_document=ReturnDocument.AFTER,
            )
        if doc is None:
            raise ScanNotFound("Not Found")
        doc = _clean(doc)
        assert doc is not None
        doc["request_clusters"] = [[c["cluster"], c["n_workers"]] for c in doc["request_clusters"]]
        return doc

    async def request_workers(
        self, scan_id: str, cluster: str, n_workers: int, request_id: str
    ) -> None:
        """Record a request for more workers; the scan's client manager acts on it."""
        async with self._locks[scan_id]:
            self._manifests.pop(scan_id, None)
            await self.db.manifests.update_one(
                {"scan_id": scan_id},
                {
                    "$push": {
                        "worker_requests": {
                            "id": request_id,
                            "cluster": cluster,
                            "n_workers": n_workers,
                            "at": time.time(),
                        }
                    }
                },
            )

    async def find_manifests(self, query: Doc, projection: Doc | None) -> list[Doc]:
        cursor = self.db.manifests.find(query, projection)
        return [d for d in [_clean(m) async for m in cursor] if d is not None]

    # -- queries for runners ------------------------------------------------------------------
    async def active_instances(self) -> list[Doc]:
        """Manifests whose instance was started and has not been recorded as ended."""
        cursor = self.db.manifests.find({"instance.state": "running"}, {"progress_json": 0})
        return [d async for d in cursor]
