"""The progress report ("scan stats") in the original's exact structure (reference §1.7)."""

from __future__ import annotations

import datetime as dt
import math
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from skyscan_contract.nsides import NSideProgression

from .state import ScanState

TIMELINE_POINTS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999, 0.99999, 1.0]
WINDOW_RATIO = 0.25
WINDOW_MIN = 400
#: the least evidence for an ETA: this many recos received over at least this many seconds
MIN_RECOS_FOR_ETA = 8
MIN_SECONDS_FOR_ETA = 2.0


def _td(seconds: float) -> str:
    return str(dt.timedelta(seconds=seconds))


def _dt(epoch: float) -> str:
    return str(dt.datetime.fromtimestamp(epoch))


def _stats(values: list[float]) -> dict[str, str]:
    return {
        "mean": _td(statistics.fmean(values)),
        "median": _td(statistics.median(values)),
        "slowest": _td(max(values)),
        "fastest": _td(min(values)),
    }


def estimated_total_recos(progression: NSideProgression, n_posvar: int) -> dict[int, int]:
    """The original's a-priori estimate of recos per nside (reporting only)."""
    out: dict[int, int] = {}
    prev: int | None = None
    for nside, ext in progression.steps:
        if prev is None:
            out[nside] = n_posvar * 12 * nside**2
        else:
            out[nside] = int(n_posvar * ext * (nside / prev) ** 2)
        prev = nside
    return out


@dataclass
class ProgressTracker:
    progression: NSideProgression
    n_posvar: int
    threshold: float
    progress_interval_sec: float
    start: float = field(default_factory=time.time)
    end: float | None = None
    # per received reco: (nside, worker runtime, round trip, receipt time)
    recos: list[tuple[int, float, float, float]] = field(default_factory=list)

    def record(self, nside: int, runtime: float, sent_at: float) -> None:
        now = time.time()
        self.recos.append((nside, runtime, max(0.0, now - sent_at) if sent_at else 0.0, now))

    def _tally(self, state: ScanState, estimates: dict[int, int]) -> dict[str, Any]:
        def block(done: float, generated: float, initial: float) -> dict[str, Any]:
            pct = f"{done}/{generated} ({done / generated:.2f})" if generated else "N/A"
            return {
                "done": done,
                "done est. percent": pct,
                "generated": generated,
                "initial approximation total": initial,
            }

        nsides: dict[str, Any] = {}
        totals: dict[str, float] = defaultdict(float)
        for nside in self.progression.nsides:
            recos_done = state.n_received_nside(nside)
            recos_gen = state.n_sent_nside(nside)
            pix_done = len(state.nsides_dict.get(nside, {}))
            pix_gen = recos_gen / self.n_posvar
            est = estimates[nside]
            nsides[str(nside)] = {
                "recos": block(recos_done, recos_gen, est),
                "pixels": block(pix_done, pix_gen, est / self.n_posvar),
            }
            for k, v in (
                ("rd", recos_done),
                ("rg", recos_gen),
                ("pd", pix_done),
                ("pg", pix_gen),
                ("e", est),
            ):
                totals[k] += v
        return {
            "nsides": nsides,
            "overall": {
                "recos": block(int(totals["rd"]), int(totals["rg"]), int(totals["e"])),
                "pixels": block(int(totals["pd"]), totals["pg"], totals["e"] / self.n_posvar),
            },
        }

    def predicted_total(self, state: ScanState, estimates: dict[int, int]) -> int:
        if self.end is not None:
            return state.n_sent
        per_nside = [state.n_sent_nside(n) or estimates[n] for n in self.progression.nsides]
        return max(sum(per_nside), sum(estimates.values()))

    def time_left_range(self, remaining: int, window: int) -> tuple[float, float] | None:
        """(low, high) seconds for `remaining` recos at the rate measured between the receipts of the last
        `window` recos (start-up excluded), widened by two standard deviations of a Poisson count; None
        until MIN_RECOS_FOR_ETA recos over MIN_SECONDS_FOR_ETA have arrived: no ETA from one pixel."""
        k = min(len(self.recos) - 1, window)
        if k < MIN_RECOS_FOR_ETA:
            return None
        span = self.recos[-1][3] - self.recos[-1 - k][3]
        if span < MIN_SECONDS_FOR_ETA:
            return None
        rate = k / span
        spread = 2 / math.sqrt(k)
        high_rate, low_rate = rate * (1 + spread), rate * max(1 - spread, 0.25)
        return remaining / high_rate, remaining / low_rate

    def report(self, state: ScanState, summary: str) -> dict[str, Any]:
        estimates = estimated_total_recos(self.progression, self.n_posvar)
        now = time.time()
        tallies = self._tally(state, estimates)
        predicted = self.predicted_total(state, estimates)
        timeline: dict[str, str] = {}
        if self.recos:
            ends = [r[3] for r in self.recos]
            timeline[f"{1 / max(predicted, 1):.5f}"] = _td(int(ends[0] - self.start))
            for p in TIMELINE_POINTS:
                n = math.ceil(predicted * p)
                if 0 < n <= len(ends):
                    timeline[str(p)] = _td(int(ends[n - 1] - self.start))
        tallies["est. scan timeline"] = timeline

        stats: dict[str, Any] = {
            "start": {"scanner start": _dt(self.start)},
            "runtime": {"elapsed": _td(now - self.start)},
            "rate": {},
            "end": "",
            "finished": False,
            "predictions": {},
        }
        if self.recos:
            first = self.recos[0]
            stats["start"]["reco start (on first worker)"] = _dt(first[3] - first[1])
            stats["runtime"]["reco start delay (on first worker)"] = _td(
                max(0.0, first[3] - first[1] - self.start)
            )
            groups: dict[str, list[tuple[int, float, float, float]]] = {"all recos": self.recos}
            for nside in self.progression.nsides:
                sel = [r for r in self.recos if r[0] == nside]
                if sel:
                    groups[f"nside-{nside}"] = sel
            for name, sel in groups.items():
                wall = sel[-1][3] - self.start
                stats["rate"][name] = {
                    "worker time": _stats([r[1] for r in sel]),
                    "round-trip time": _stats([r[2] for r in sel]),
                    "wall time": {
                        "start": _dt(self.start),
                        "end": _dt(sel[-1][3]),
                        "runtime": _td(wall),
                        "mean reco": _td(wall / len(sel)),
                    },
                }
        if self.end is not None:
            stats["end"] = _dt(self.end)
            stats["finished"] = True
        elif self.recos:
            n = len(self.recos)
            window = max(int(predicted * WINDOW_RATIO), WINDOW_MIN)
            if n >= window:
                sec_per = (self.recos[-1][3] - self.recos[-window][3]) / window
                technique = f"simple moving average (window={window})"
            else:
                sec_per = (self.recos[-1][3] - self.start) / n
                technique = (
                    "simple average over entire scan runtime (a moving average with a window of "
                    f"{WINDOW_RATIO} will be used after {window} recos have finished)"
                )
            left = sec_per * max(predicted - n, 0)
            stats["predictions"] = {
                "time left": _td(left),
                "total runtime at finish": _td(now - self.start + left),
                "total # of reconstructions": predicted,
                "end": _dt(now + left),
                "technique": technique,
            }
            if (span := self.time_left_range(max(predicted - n, 0), window)) is not None:
                low, high = span
                stats["predictions"]["time left range"] = {"low": _td(low), "high": _td(high)}
        epilogue = (
            "I will report back when I start getting recos."
            if not self.recos
            else f"I will report back again in {self.progress_interval_sec:g} seconds if I have an update."
        )
        return {
            "summary": summary,
            "epilogue": epilogue,
            "tallies": tallies,
            "processing_stats": stats,
            "predictive_scanning_threshold": self.threshold,
            "last_updated": dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "start": int(self.start),
            "end": int(self.end) if self.end is not None else None,
        }
