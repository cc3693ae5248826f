"""Scan documents: manifest, request, event, result and backlog entry, written and read together, as the
contract's typed documents (`skyscan_contract.documents`).

The database form is this module's business. FerretDB v1 (our one-machine database) cannot store nested
arrays or keys containing '.', which events (pulse rows), results (pixel rows) and the scanner's free-form
reports ("done est. percent") are made of: those are stored as JSON text (`json_text`,
`skyscan_result_json`, `<field>_json`), and `request_clusters` as a list of objects. The models are what
the rest of SkyDriver sees."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ReturnDocument

from skyscan_contract.documents import (
    NOT_YET_REQUESTED,
    InstanceRecord,
    InstanceState,
    Manifest,
    ResultDoc,
    ScanEventType,
    ScanRequestDoc,
    WorkerRequest,
)
from skyscan_contract.errors import InvalidRequest, ScanNotFound
from skyscan_contract.messages import (
    EventMetadataBody,
    ManifestPatchBody,
    ProgressBody,
    ResultPutBody,
    WorkforcePutBody,
)

from .db import Database, Doc
from .events import EventStore

#: manifest fields kept as JSON text: free-form objects from the scanner and client manager may hold keys
#: with '.' ("done est. percent", "0.1") or nested arrays, which FerretDB refuses
JSON_TEXT_FIELDS = ("progress", "scan_metadata", "workforce")


def _decode_manifest(doc: Doc | None) -> Manifest | None:
    if doc is None:
        return None
    doc.pop("_id", None)
    for key in JSON_TEXT_FIELDS:
        if f"{key}_json" in doc:
            text = doc.pop(f"{key}_json")
            doc[key] = None if text is None else json.loads(text)
    return Manifest.model_validate(doc)


def _encode_fields(fields: Doc) -> Doc:
    """Fields of a manifest as stored (JSON-text fields serialised, allowing NaN)."""
    out = dict(fields)
    for key in JSON_TEXT_FIELDS:
        if key in out:
            value = out.pop(key)
            out[f"{key}_json"] = None if value is None else json.dumps(value)
    return out


def _encode_manifest(manifest: Manifest) -> Doc:
    doc = manifest.model_dump(mode="json", exclude=set(JSON_TEXT_FIELDS))
    for key in JSON_TEXT_FIELDS:
        doc[key] = manifest.model_dump(include={key})[key]
    return _encode_fields(doc)


def finished_nsides(progress: ProgressBody) -> list[int]:
    """The nsides a progress report shows finished: all their pixels done, and the scan gone on to a
    finer nside (or ended)."""
    tallies = progress.tallies.get("nsides")
    if not isinstance(tallies, dict):
        return []
    counts: list[tuple[int, float, float]] = []
    for key, block in tallies.items():
        pixels = block.get("pixels") if isinstance(block, dict) else None
        if isinstance(pixels, dict) and key.isdigit():
            counts.append(
                (int(key), float(pixels.get("done", 0)), float(pixels.get("generated", 0)))
            )
    counts.sort()
    ended = bool(progress.processing_stats.get("finished"))
    out = []
    for i, (nside, done, generated) in enumerate(counts):
        later = any(g > 0 for _, _, g in counts[i + 1 :])
        if generated > 0 and done >= generated and (later or ended):
            out.append(nside)
    return out


def _decode_request(doc: Doc | None) -> ScanRequestDoc | None:
    if doc is None:
        return None
    doc.pop("_id", None)
    return ScanRequestDoc.model_validate(doc)


class ScanStore:
    def __init__(self, db: Database, read_cache_ttl_s: float = 1.0) -> None:
        self.db = db
        #: what happened, for the event streams and webhooks (written with the change it reports)
        self.events = EventStore(db)
        # Status polls (the scanner's kill switch, clients, dashboards) read the same manifest many times
        # a second. Reads through `get_manifest_cached` / `result_is_final` may be up to this old; every
        # write made through this store refreshes the entry at once. Cached models are shared: read only.
        self.read_cache_ttl_s = read_cache_ttl_s
        self._manifests: dict[str, tuple[float, Manifest]] = {}
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
        request: ScanRequestDoc | None,
        event: dict[str, Any] | None,
        i3_event_id: str,
        scanner_server_args: str,
        classifiers: dict[str, Any],
        priority: int,
        clusters: list[str],
        created_by: str | None = None,
        event_metadata: EventMetadataBody | None = None,
    ) -> Manifest:
        """Store event (if new), request (None for a rescan: it shares its origin's), manifest and
        backlog entry; returns the manifest. All or nothing."""
        new_event = event is not None
        if event is not None:
            i3_event_id = uuid.uuid4().hex
        elif not await self.db.i3_events.find_one({"i3_event_id": i3_event_id}, {"_id": 1}):
            raise InvalidRequest("i3 event not found")
        now = time.time()
        manifest = Manifest(
            scan_id=scan_id,
            timestamp=now,
            scanner_server_args=scanner_server_args,
            ewms_workflow_id=NOT_YET_REQUESTED,
            priority=priority,
            classifiers=classifiers,
            i3_event_id=i3_event_id,
            last_updated=now,
            created_by=created_by,
            event_metadata=event_metadata,
        )
        stored_request: Doc | None = None
        if request is not None:
            request = request.model_copy(update={"scan_id": scan_id, "i3_event_id": i3_event_id})
            stored_request = request.model_dump(mode="json")
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
            await self.db.manifests.insert_one(_encode_manifest(manifest))
            await self.db.backlog.insert_one(backlog_entry)
            await self.events.append(scan_id, ScanEventType.QUEUED, {"priority": priority})
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
    async def get_manifest(self, scan_id: str, *, include_deleted: bool = False) -> Manifest:
        manifest = _decode_manifest(await self.db.manifests.find_one({"scan_id": scan_id}))
        self._remember(scan_id, manifest)
        if manifest is None or (manifest.is_deleted and not include_deleted):
            raise ScanNotFound("Not Found")
        return manifest

    async def get_manifest_cached(self, scan_id: str, *, include_deleted: bool = False) -> Manifest:
        """Like get_manifest, but may answer from a copy at most `read_cache_ttl_s` old."""
        hit = self._manifests.get(scan_id)
        if hit is None or time.monotonic() - hit[0] > self.read_cache_ttl_s:
            await self._single_flight(f"manifest:{scan_id}", lambda: self._refresh(scan_id))
            hit = self._manifests.get(scan_id)
            if hit is None:
                raise ScanNotFound("Not Found")
        manifest = hit[1]
        if manifest.is_deleted and not include_deleted:
            raise ScanNotFound("Not Found")
        return manifest

    async def _refresh(self, scan_id: str) -> None:
        self._remember(
            scan_id, _decode_manifest(await self.db.manifests.find_one({"scan_id": scan_id}))
        )

    def _remember(self, scan_id: str, manifest: Manifest | None) -> None:
        if manifest is None:
            self._manifests.pop(scan_id, None)
        else:
            self._manifests[scan_id] = (time.monotonic(), manifest)

    async def get_request(self, scan_id: str) -> ScanRequestDoc:
        """The request of a scan, or of the scan a rescan id was made from."""
        request = _decode_request(
            await self.db.scan_requests.find_one(
                {"$or": [{"scan_id": scan_id}, {"rescan_ids": scan_id}]}
            )
        )
        if request is None:
            raise ScanNotFound("Scan request not found")
        return request

    async def get_event(self, i3_event_id: str) -> dict[str, Any] | None:
        doc = await self.db.i3_events.find_one({"i3_event_id": i3_event_id})
        return None if doc is None else dict(json.loads(doc["json_text"]))

    async def get_result(self, scan_id: str) -> ResultDoc | None:
        """The scan's Result, or None before the first one."""
        doc = await self.db.results.find_one({"scan_id": scan_id})
        if doc is None:
            return None
        return ResultDoc(
            scan_id=doc["scan_id"],
            skyscan_result=json.loads(doc["skyscan_result_json"]),
            is_final=doc["is_final"],
        )

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
    async def _set(
        self, scan_id: str, fields: Doc, *, filter_extra: Doc | None = None
    ) -> Manifest | None:
        """`$set` stored fields (already in their database form) on the manifest; caller holds the lock."""
        doc = await self.db.manifests.find_one_and_update(
            {"scan_id": scan_id, **(filter_extra or {})},
            {"$set": {**_encode_fields(fields), "last_updated": time.time()}},
            return_document=ReturnDocument.AFTER,
        )
        manifest = _decode_manifest(doc)
        if manifest is not None:
            self._remember(scan_id, manifest)
        return manifest

    async def set_instance(
        self, scan_id: str, instance: InstanceRecord, *, workflow: tuple[str, str] | None = None
    ) -> Manifest | None:
        """Record what the launcher did; `workflow` = (ewms_workflow_id, ewms_address) once started."""
        fields: Doc = {"instance": instance.model_dump(mode="json")}
        if workflow is not None:
            fields["ewms_workflow_id"], fields["ewms_address"] = workflow
        async with self._locks[scan_id]:
            manifest = await self._set(scan_id, fields)
        if instance.state is InstanceState.RUNNING:
            await self.events.append(
                scan_id, ScanEventType.STARTED, {"launcher": instance.launcher}
            )
        elif instance.state is InstanceState.FAILED:
            await self.events.append(scan_id, ScanEventType.FAILED, {"reason": instance.reason})
        return manifest

    async def end_instance(
        self, scan_id: str, exit_code: int, reason: str | None = None
    ) -> Manifest | None:
        """The running instance ended with `exit_code` (only a running instance is ended); `reason`: why,
        if it failed."""
        async with self._locks[scan_id]:
            return await self._set(
                scan_id,
                {
                    "instance.state": InstanceState.ENDED.value,
                    "instance.exit_code": exit_code,
                    "instance.ended_at": time.time(),
                    "instance.reason": reason,
                },
                filter_extra={"instance.state": InstanceState.RUNNING.value},
            )

    async def patch_manifest(self, scan_id: str, patch: ManifestPatchBody) -> Manifest:
        """Progress replaced wholesale; event_metadata and scan_metadata are write-once."""
        async with self._locks[scan_id]:
            manifest = await self.get_manifest(scan_id, include_deleted=True)
            fields: Doc = {}
            if patch.event_metadata is not None:
                new = patch.event_metadata.model_dump(mode="json")
                old = manifest.event_metadata
                if old is not None and old.model_dump(mode="json") != new:
                    raise InvalidRequest("Cannot change an existing event_metadata")
                if old is None:
                    fields["event_metadata"] = new
            if patch.scan_metadata:
                if manifest.scan_metadata and manifest.scan_metadata != patch.scan_metadata:
                    raise InvalidRequest("Cannot change an existing scan_metadata")
                if not manifest.scan_metadata:
                    fields["scan_metadata"] = patch.scan_metadata
            if patch.progress is not None:
                fields["progress"] = patch.progress.model_dump()
            if not fields:
                return manifest
            updated = await self._set(scan_id, fields)
        if updated is None:
            raise ScanNotFound("Not Found")
        if patch.progress is not None:
            announced = {
                e.data.get("nside")
                for e in await self.events.of_type(scan_id, ScanEventType.NSIDE_FINISHED)
            }
            for nside in finished_nsides(patch.progress):
                if nside not in announced:
                    await self.events.append(
                        scan_id, ScanEventType.NSIDE_FINISHED, {"nside": nside}
                    )
        return updated

    async def set_workforce(self, scan_id: str, report: WorkforcePutBody) -> Manifest | None:
        async with self._locks[scan_id]:
            return await self._set(scan_id, {"workforce": report.model_dump()})

    async def set_replaced_by(self, scan_id: str, new_scan_id: str) -> None:
        async with self._locks[scan_id]:
            await self._set(scan_id, {"replaced_by_scan_id": new_scan_id})

    async def put_result(self, scan_id: str, body: ResultPutBody) -> ResultDoc | None:
        """Store a partial or final result (None: an empty result is not stored)."""
        await self.get_manifest(scan_id, include_deleted=True)  # 404 for an unknown scan
        if not body.skyscan_result:
            return None
        stored = {
            "scan_id": scan_id,
            "skyscan_result_json": json.dumps(body.skyscan_result, allow_nan=True),
            "is_final": body.is_final,
        }
        async with self._locks[f"result:{scan_id}"]:
            await self.db.results.replace_one({"scan_id": scan_id}, stored, upsert=True)
            self._finals[scan_id] = (time.monotonic(), body.is_final)
        n_pixels = sum(
            len(block.get("data") or []) if isinstance(block, dict) else 0
            for block in body.skyscan_result.values()
        )
        await self.events.append(
            scan_id,
            ScanEventType.FINAL_RESULT if body.is_final else ScanEventType.PARTIAL_RESULT,
            {"n_pixels": n_pixels},
        )
        return ResultDoc(
            scan_id=scan_id, skyscan_result=body.skyscan_result, is_final=body.is_final
        )

    async def mark_deleted(self, scan_id: str, by: str | None = None) -> Manifest:
        async with self._locks[scan_id]:
            manifest = await self._set(scan_id, {"is_deleted": True, "deleted_by": by})
        if manifest is None:
            raise ScanNotFound("Not Found")
        await self.db.backlog.delete_one({"scan_id": scan_id})
        await self.events.append(scan_id, ScanEventType.DELETED, {"by": by})
        return manifest

    async def add_rescan_id(self, origin_scan_id: str, new_scan_id: str) -> ScanRequestDoc:
        """Append a rescan id to the request that `origin_scan_id` (a scan or rescan id) belongs to."""
        async with self._locks["scan-requests"]:
            doc = await self.db.scan_requests.find_one_and_update(
                {"$or": [{"scan_id": origin_scan_id}, {"rescan_ids": origin_scan_id}]},
                {"$push": {"rescan_ids": new_scan_id}},
                return_document=ReturnDocument.AFTER,
            )
        request = _decode_request(doc)
        if request is None:
            raise ScanNotFound("Not Found")
        return request

    async def request_workers(self, scan_id: str, request: WorkerRequest) -> None:
        """Record a request for more workers; the scan's client manager acts on it."""
        async with self._locks[scan_id]:
            self._manifests.pop(scan_id, None)
            await self.db.manifests.update_one(
                {"scan_id": scan_id},
                {"$push": {"worker_requests": request.model_dump(mode="json")}},
            )

    async def find_manifests(
        self, query: Doc, projection: Doc | None, limit: int
    ) -> list[Manifest]:
        """At most `limit` manifests matching `query`, newest first."""
        cursor = self.db.manifests.find(query, projection).sort("timestamp", -1).limit(limit)
        return [m for m in [_decode_manifest(d) async for d in cursor] if m is not None]

    # -- queries for runners ------------------------------------------------------------------
    async def active_instances(self) -> list[Manifest]:
        """Manifests whose instance was started and has not been recorded as ended."""
        cursor = self.db.manifests.find(
            {"instance.state": InstanceState.RUNNING.value}, {"progress_json": 0}
        )
        return [m for m in [_decode_manifest(d) async for d in cursor] if m is not None]
