"""The scanner server's bookkeeping: what was sent, what came back, which pixels are final, and when the
predictive-scanning thresholds say to refine (reference §2.4 and §3.3). Pure logic: no I/O."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from skyscan_contract.messages import PixelResult, RecoPixelVariation
from skyscan_contract.nsides import NSideProgression

from ..pixels import NSidesDict, PixelReco, choose_pixels_to_reconstruct

LOG = logging.getLogger(__name__)

BASE_THRESHOLDS = [round(0.1 * i, 1) for i in range(1, 11)]


def _float(value: Any) -> float:
    if value is None or value == "<skyreader.nan>":
        return math.nan
    return float(value)


class DuplicateResult(Exception):
    """A result for a pixel-variation that was already collected (a redelivered message); ignored."""


class UnknownResult(Exception):
    """A result for a pixel-variation that this server never sent."""


def thresholds_for(progression: NSideProgression, threshold: float) -> dict[int, list[float]]:
    """Per nside, the completion fractions at which refinement is (re)computed."""
    if not 0.1 < threshold <= 1.0:
        raise ValueError(f"predictive_scanning_threshold must be in (0.1, 1.0], got {threshold}")
    out: dict[int, list[float]] = {}
    for nside in progression.nsides[:-1]:
        out[nside] = [threshold] + [b for b in BASE_THRESHOLDS if b > threshold]
    out[progression.max_nside] = [1.0]
    return out


@dataclass
class ScanState:
    progression: NSideProgression
    n_posvar: int = 1
    predictive_scanning_threshold: float = 1.0
    nsides_dict: NSidesDict = field(default_factory=dict)
    sent: dict[int, set[tuple[int, int]]] = field(default_factory=lambda: defaultdict(set))
    received: set[tuple[int, int, int]] = field(default_factory=set)
    #: pixels whose every variation failed: (nside, pixel) -> (attempts, last error)
    failed: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)
    _cache: dict[tuple[int, int], list[RecoPixelVariation]] = field(default_factory=dict)
    _cache_failed: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)
    _bins: dict[int, float] = field(default_factory=dict)
    #: resumed from a stored result: what the previous server sent is known only through what it stored
    resumed: bool = False

    def __post_init__(self) -> None:
        self.thresholds = thresholds_for(self.progression, self.predictive_scanning_threshold)

    # -- resuming -----------------------------------------------------------------------------
    def resume(self, result: dict[str, Any]) -> int:
        """Take over the pixels of a partial result (a restarted server continues where the last one
        stopped). Returns the number of pixels taken over."""
        n = 0
        for key, entry in result.items():
            nside = int(key.split("-")[1])
            columns = entry["columns"]
            for row in entry["data"]:
                values = dict(zip(columns, row, strict=True))
                llh = _float(values["llh"])
                pixel = int(values["index"])
                reco = PixelReco(
                    nside=nside,
                    pixel=pixel,
                    llh=llh,
                    e_in=_float(values.get("E_in")),
                    e_tot=_float(values.get("E_tot")),
                    x=_float(values.get("X")),
                    y=_float(values.get("Y")),
                    z=_float(values.get("Z")),
                    t=_float(values.get("T")),
                    energy=math.nan,
                    failed=math.isnan(llh),
                )
                self.nsides_dict.setdefault(nside, {})[pixel] = reco
                self.sent[nside].add((nside, pixel))
                self.received.update((nside, pixel, v) for v in range(self.n_posvar))
                if reco.failed:
                    self.failed[(nside, pixel)] = (0, "failed before the server restarted")
                n += 1
        self._newly_thresholded()  # remember the bins reached
        self.resumed = n > 0
        return n

    def _took_over(self, reco: RecoPixelVariation) -> bool:
        """A resumed server takes a result of a task its predecessor sent (redelivered: it was not
        acknowledged, so not persisted) instead of ignoring it and reconstructing the pixel again."""
        known = reco.nside in self.progression.nsides and 0 <= reco.pixel < 12 * reco.nside**2
        if not (self.resumed and known and 0 <= reco.posvar < self.n_posvar):
            return False
        self.sent[reco.nside].add((reco.nside, reco.pixel))
        LOG.info("took over %s, sent before the restart", reco.id_tuple)
        return True

    # -- sending ------------------------------------------------------------------------------
    def next_pixels(self, last_thresholded: int | None) -> list[tuple[int, int]]:
        """Pixels to send next (not yet sent at any variation), sorted for reproducibility. With no
        threshold crossed yet, that is the whole first nside (minus what a resumed scan already has)."""
        if last_thresholded is None:
            n0 = self.progression.min_nside
            chosen = {(n0, p) for p in range(12 * n0 * n0)}
        else:
            steps = self.progression.slice_plus_one(last_thresholded)
            chosen = choose_pixels_to_reconstruct(self.nsides_dict, steps)
        return sorted((n, p) for n, p in chosen if (n, p) not in self.sent[n])

    @property
    def refines_on_whole_batches(self) -> bool:
        """Without predictive scanning (threshold 1.0) the server chooses every batch with
        ``next_batch``, once the batch before has all come back: the pixels a scan reconstructs
        then depend neither on the order results arrive in nor on a restart."""
        return self.predictive_scanning_threshold >= 1.0

    def next_batch(self) -> list[tuple[int, int]]:
        """The pixels of the first batch of the refinement not all sent yet, minus those sent
        (empty: every batch is complete, or the first one not complete is still coming back).

        The batches are replayed from the whole first nside, each chosen (around the global
        minimum, as ``next_pixels``) from the pixels of the batches before it only. A fault-free
        scan refining on whole batches gets the batch ``next_pixels`` would give; a resumed one, or
        one that took over results its predecessor had sent, gets the same batches again: results
        that came in later do not move the global minimum of an earlier choice (they would add
        pixels the scan never reconstructs)."""
        n0 = self.progression.min_nside
        batch = {(n0, p) for p in range(12 * n0 * n0)}
        chosen = set(batch)
        while True:
            missing = sorted((n, p) for n, p in batch if (n, p) not in self.sent[n])
            if missing:
                return missing
            if any(p not in self.nsides_dict.get(n, {}) for n, p in batch):
                return []  # the batch is not all back: the next one cannot be chosen yet
            before: NSidesDict = {
                n: {p: reco for p, reco in pixels.items() if (n, p) in chosen}
                for n, pixels in self.nsides_dict.items()
            }
            steps = self.progression.slice_plus_one(max(n for n, _ in batch))
            batch = choose_pixels_to_reconstruct(before, steps) - chosen
            if not batch:
                return []
            chosen |= batch

    def register_sent(self, pixels: list[tuple[int, int]]) -> None:
        for nside, pixel in pixels:
            self.sent[nside].add((nside, pixel))
        # the bins drop with what was sent, so completing it crosses a threshold again: else an
        # nside that looked complete (a one-pixel batch of it, or stored pixels on resume) would
        # never cross one, and the scan would wait until its clients time out
        self._newly_thresholded()

    @property
    def n_sent(self) -> int:
        return sum(len(s) for s in self.sent.values()) * self.n_posvar

    def n_sent_nside(self, nside: int) -> int:
        return len(self.sent.get(nside, ())) * self.n_posvar

    def n_received_nside(self, nside: int) -> int:
        return sum(1 for n, _, _ in self.received if n == nside)

    # -- collecting ---------------------------------------------------------------------------
    def collect(self, result: PixelResult) -> int | None:
        """Record one result; return the largest nside that just crossed a threshold, if any."""
        reco = result.reco_pixel_variation
        key = (reco.nside, reco.pixel)
        if reco.id_tuple in self.received or reco.pixel in self.nsides_dict.get(reco.nside, {}):
            raise DuplicateResult(f"already collected {reco.id_tuple}")
        sent = key in self.sent.get(reco.nside, ()) and 0 <= reco.posvar < self.n_posvar
        if not sent and not self._took_over(reco):
            raise UnknownResult(f"result for {reco.id_tuple}, which was never sent")
        self.received.add(reco.id_tuple)
        variations = self._cache.setdefault(key, [])
        variations.append(reco)
        if result.failed:
            self._cache_failed[key] = (result.attempts, result.error or "")
        if len(variations) >= self.n_posvar:
            self._finish_pixel(key)
        return self._newly_thresholded()

    def _finish_pixel(self, key: tuple[int, int]) -> None:
        variations = self._cache.pop(key)
        best = variations[0]  # the original's quirk: first arrival is the initial best
        for cand in variations[1:]:
            if not math.isnan(cand.llh) and (math.isnan(best.llh) or cand.llh < best.llh):
                best = cand
        failure = self._cache_failed.pop(key, None)
        failed = failure is not None and all(math.isnan(v.llh) for v in variations)
        if failed and failure is not None:
            self.failed[key] = failure
        self.nsides_dict.setdefault(key[0], {})[key[1]] = PixelReco(
            nside=best.nside,
            pixel=best.pixel,
            llh=best.llh,
            e_in=best.e_in,
            e_tot=best.e_tot,
            x=best.x,
            y=best.y,
            z=best.z,
            t=best.t,
            energy=best.energy,
            failed=failed,
        )

    def percent_done(self, nside: int) -> float:
        sent = self.n_sent_nside(nside)
        if not sent:
            return 0.0
        return len(self.nsides_dict.get(nside, {})) * self.n_posvar / sent

    def _bin(self, nside: int, fraction: float) -> float:
        passed = [t for t in self.thresholds[nside] if t <= fraction + 1e-12]
        return max(passed) if passed else 0.0

    def _newly_thresholded(self) -> int | None:
        newly: list[int] = []
        for nside in self.progression.nsides:
            current = self._bin(nside, self.percent_done(nside))
            if current > self._bins.get(nside, 0.0):
                newly.append(nside)
            self._bins[nside] = current
        return max(newly) if newly else None

    def has_collected_all_sent(self) -> bool:
        return len(self.received) == self.n_sent

    @property
    def n_finished_pixels(self) -> int:
        return sum(len(p) for p in self.nsides_dict.values())
