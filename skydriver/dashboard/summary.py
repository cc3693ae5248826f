"""What the dashboard shows of a scan, computed from its manifest (one row of the list; the scan page adds
the rate, the ETA range and the workforce).

The ETA is a range, and only once it can be measured: at least `MIN_PIXELS_FOR_RATE` pixels done over at
least `MIN_SECONDS_FOR_RATE` seconds since the first worker started (never from one pixel). The rate is
pixels done / time since the first reconstruction started (refinement pauses included, so it is what the
scan really does), with a band of ±2/√n for n pixels (Poisson-like arrivals). The pixels left are a range
too, because refinement decides later how many pixels finer nsides get: at least what is queued plus, for
each nside not yet started, the original's a-priori estimate; at most up to twice that estimate for every
unfinished nside (the demo's dummy scan needed 1.5 times it when its minimum moved). ETA = [least left /
highest rate, most left / lowest rate]."""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any

from skyscan_contract.documents import Manifest, ScanPhase

from ..status import deactivated, scan_phase, scan_state
from ..store.scans import WRITE_THROUGH_MAX_AGE_S

MIN_PIXELS_FOR_RATE = 10
#: the dashboard's reads of a manifest may answer from a copy this old: every write in this process
#: refreshes the copy at once (`ScanStore.get_manifest_cached`), and a database read of one manifest can take
#: a second on a busy FerretDB, which 50 viewers must not multiply
MAX_AGE_S = WRITE_THROUGH_MAX_AGE_S
MIN_SECONDS_FOR_RATE = 2.0

#: what each state means, for people on shift (README "Web dashboard")
PHASE_MEANING = {
    ScanPhase.PRESTARTUP: "queued: waiting in the backlog for its scan instance to be launched",
    ScanPhase.WAITING_ON_SCANNER_SERVER_STARTUP: "starting: the scanner server and workers are "
    "starting (reading the event, publishing the first pixels)",
    ScanPhase.WAITING_ON_FIRST_PIXEL_RECO: "scanning: pixels are out, no reconstruction has "
    "finished yet",
    ScanPhase.PARTIAL_RESULT_GENERATED: "scanning: pixels are being reconstructed; the skymap "
    "fills in",
    ScanPhase.HAS_FINAL_RESULT: "done: the final skymap is in",
}


def state_meaning(manifest: Manifest, phase: ScanPhase) -> str:
    text = PHASE_MEANING[phase]
    if phase is ScanPhase.HAS_FINAL_RESULT:
        return text
    stopped = deactivated(manifest)
    if stopped is None:
        return text
    instance = manifest.instance
    if manifest.is_deleted:
        why = f"deleted by {manifest.deleted_by}" if manifest.deleted_by else "deleted"
    elif instance is not None and instance.reason:
        why = instance.reason
    elif instance is not None and instance.exit_code not in (None, 0):
        why = f"its instance exited with code {instance.exit_code}"
    else:
        why = "its instance ended without a final result"
    return f"stopped ({why}) while {text.split(':', 1)[0]}"


def request_args(scanner_server_args: str) -> tuple[str | None, str | None]:
    """(reco_algo, nsides) from the manifest's `scanner_server_args` (no read of the request needed)."""
    words = scanner_server_args.split()
    reco = nsides = None
    for i, word in enumerate(words):
        if word == "--reco-algo" and i + 1 < len(words):
            reco = words[i + 1]
        elif word == "--nsides":
            taken = []
            for w in words[i + 1 :]:
                if w.startswith("--"):
                    break
                taken.append(w)
            nsides = " ".join(taken) or None
    return reco, nsides


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def nside_progress(manifest: Manifest) -> list[dict[str, Any]]:
    """Per nside: pixels done, queued so far ("generated"), the a-priori estimate, finished or not."""
    progress = manifest.progress
    tallies = progress.tallies.get("nsides") if progress else None
    if not isinstance(tallies, dict):
        return []
    rows: list[dict[str, Any]] = []
    for key, block in tallies.items():
        pixels = block.get("pixels") if isinstance(block, dict) else None
        if not (isinstance(pixels, dict) and key.isdigit()):
            continue
        rows.append(
            {
                "nside": int(key),
                "done": int(_num(pixels.get("done"))),
                "generated": int(_num(pixels.get("generated"))),
                "estimate": int(_num(pixels.get("initial approximation total"))),
            }
        )
    rows.sort(key=lambda r: int(r["nside"]))
    ended = bool(progress and progress.processing_stats.get("finished"))
    for i, row in enumerate(rows):
        later = any(r["generated"] > 0 for r in rows[i + 1 :])
        row["finished"] = bool(
            row["generated"] > 0 and row["done"] >= row["generated"] and (later or ended)
        )
    return rows


def _epoch(text: Any) -> float | None:
    """The scanner writes times as `str(datetime.fromtimestamp(t))` (its local time, no zone)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def rate_and_eta(manifest: Manifest, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The measured rate and the ETA range (see the module docstring), or why there is none yet."""
    progress = manifest.progress
    done = sum(r["done"] for r in rows)
    if progress is None or not rows:
        return {"eta": None, "why": "no progress report yet"}
    stats = progress.processing_stats
    if stats.get("finished"):
        return {"eta": None, "why": "finished"}
    first = _epoch((stats.get("start") or {}).get("reco start (on first worker)"))
    rates = stats.get("rate") or {}
    last = _epoch(((rates.get("all recos") or {}).get("wall time") or {}).get("end"))
    if first is None or last is None or done < MIN_PIXELS_FOR_RATE:
        return {
            "eta": None,
            "why": f"measuring: an ETA needs at least {MIN_PIXELS_FOR_RATE} pixels done",
        }
    span = last - first
    if span < MIN_SECONDS_FOR_RATE:
        return {"eta": None, "why": "measuring: too little time has passed"}
    rate = done / span
    band = min(0.9, 2.0 / math.sqrt(done))
    rate_low, rate_high = rate * (1 - band), rate * (1 + band)
    left_low = left_high = 0
    for r in rows:
        if r["finished"]:
            continue
        started = r["generated"] > 0
        left_low += max((r["generated"] if started else r["estimate"]) - r["done"], 0)
        left_high += max(max(r["generated"], 2 * r["estimate"]) - r["done"], 0)
    left_high = max(left_high, left_low)
    since_report = max(0.0, time.time() - last)
    return {
        "eta": {
            "low_s": max(left_low / rate_high - since_report, 0.0),
            "high_s": max(left_high / rate_low - since_report, 0.0),
            "as_of": last,
        },
        "rate_px_per_s": rate,
        "rate_band": [rate_low, rate_high],
        "measured_over_s": span,
        "measured_pixels": done,
        "pixels_left": [left_low, left_high],
    }


def row(manifest: Manifest, has_final_result: bool) -> dict[str, Any]:
    """One scan of the list."""
    phase = scan_phase(manifest, has_final_result)
    reco, nsides = request_args(manifest.scanner_server_args)
    per_nside = nside_progress(manifest)
    meta = manifest.event_metadata
    done = sum(r["done"] for r in per_nside)
    expected = sum(
        r["generated"] if r["finished"] else max(r["generated"], r["estimate"]) for r in per_nside
    )
    instance = manifest.instance
    return {
        "scan_id": manifest.scan_id,
        "state": scan_state(manifest, has_final_result),
        "phase": phase.value,
        "meaning": state_meaning(manifest, phase),
        "is_deleted": manifest.is_deleted,
        "has_final_result": has_final_result,
        "created": manifest.timestamp,
        "last_updated": manifest.last_updated,
        "priority": manifest.priority,
        "classifiers": manifest.classifiers,
        "event": None if meta is None else meta.model_dump(mode="json"),
        "reco_algo": reco,
        "nsides": nsides,
        "progress": {"nsides": per_nside, "done": done, "expected": max(expected, done)},
        "instance": None
        if instance is None
        else instance.model_dump(
            mode="json", include={"state", "reason", "exit_code"}, exclude_none=True
        ),
        "created_by": manifest.created_by,
        "replaced_by_scan_id": manifest.replaced_by_scan_id,
    }


def detail(manifest: Manifest, has_final_result: bool) -> dict[str, Any]:
    """The scan page: the row, the rate and ETA range, and the workforce."""
    out = row(manifest, has_final_result)
    out.update(rate_and_eta(manifest, out["progress"]["nsides"]) if not has_final_result else {})
    report = manifest.workforce
    out["workforce"] = (
        None
        if report is None
        else {
            "backend": report.backend,
            "n_running": report.n_running,
            "n_failed": report.n_failed,
            "n_requested": report.n_requested,
            "statuses": report.statuses,
            "top_errors": dict(sorted(report.top_errors.items(), key=lambda kv: -kv[1])[:5]),
            "stopped": report.stopped,
        }
    )
    progress = manifest.progress
    out["progress_summary"] = None if progress is None else progress.summary
    out["deleted_by"] = manifest.deleted_by
    out["scan_metadata"] = manifest.scan_metadata
    return out
