"""Build the icecube-skyreader `SkyScanResult` JSON (v1 columns, full metadata) from collected pixels.

Written directly as the serialised dict (the format of `SkyScanResult.serialize()`), so the server needs
neither pandas nor skyreader at run time; tests load every result with `SkyScanResult.deserialize`."""

from __future__ import annotations

import math
from typing import Any

from ..events import EventMetadata
from ..pixels import NSidesDict, PixelReco

COLUMNS = ["index", "llh", "E_in", "E_tot", "X", "Y", "Z", "T"]
NAN_SENTINEL = "<skyreader.nan>"


def _json_float(value: float) -> float | str:
    return NAN_SENTINEL if math.isnan(value) else value


def _row(reco: PixelReco) -> list[Any]:
    values = (reco.llh, reco.e_in, reco.e_tot, reco.x, reco.y, reco.z, reco.t)
    return [reco.pixel, *(_json_float(v) for v in values)]


class RowCache:
    """Rows already made, per pixel: a server persists a partial result every few hundred results (its
    results are acknowledged only then), and a finished pixel's row never changes."""

    def __init__(self) -> None:
        self._rows: dict[tuple[int, int], tuple[PixelReco, list[Any]]] = {}

    def row(self, reco: PixelReco) -> list[Any]:
        key = (reco.nside, reco.pixel)
        cached = self._rows.get(key)
        if cached is None or cached[0] is not reco:
            cached = (reco, _row(reco))
            self._rows[key] = cached
        return cached[1]


def build_result(
    nsides_dict: NSidesDict,
    meta: EventMetadata,
    *,
    complete: bool,
    cache: RowCache | None = None,
) -> dict[str, Any]:
    """The serialised result; `{}` while nothing has been collected."""
    make_row = cache.row if cache is not None else _row
    out: dict[str, Any] = {}
    for nside in sorted(nsides_dict):
        pixels = nsides_dict[nside]
        rows = [make_row(pixels[p]) for p in sorted(pixels)]
        out[f"nside-{nside}"] = {
            "columns": COLUMNS,
            "data": rows,
            "metadata": {
                "nside": nside,
                "complete": complete,
                "run_id": meta.run_id,
                "event_id": meta.event_id,
                "event_type": meta.event_type,
                "mjd": meta.mjd,
                "is_real_event": meta.is_real_event,
                "version": 1,
            },
        }
    return out


def result_filename(meta: EventMetadata, nsides: list[int]) -> str:
    """The original's file name: `run%08d.evt%012d.<type>_<nsides>.json`."""
    joined = "_".join(str(n) for n in sorted(nsides))
    return f"run{meta.run_id:08d}.evt{meta.event_id:012d}.{meta.event_type}_{joined}.json"
