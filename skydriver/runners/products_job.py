"""What the products runner's child process runs: build one result version's sky products, and answer a
position query from a stored multi-order map.

SkyDriver imports this module (standard library only at import time) to name the functions it submits to
its process pool; only the child process, on its first job, imports the scanner's products library
(`skymap_scanner.products.alert`, with healpy, astropy, mocpy and shapely). The REST process never loads
them (`tests/unit/test_contract.py` checks what `import skydriver.app` loads; the one import of the
products library is exempted in the import contract in `pyproject.toml` for this module alone).

Everything crossing the process boundary is plain data: a `BuildJob` of strings, numbers and dicts in,
`BuiltProducts` of bytes out.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any

#: event fields of the manifest's `event_metadata` written into every nside's result metadata
EVENT_FIELDS = ("run_id", "event_id", "event_type", "mjd", "is_real_event")


@dataclass(frozen=True)
class BuildJob:
    """One result version of one scan, and what the products need beyond the result."""

    scan_id: str
    version: int
    result_json: str
    """The stored SkyScanResult JSON text (parsed in the child)."""
    is_final: bool
    stored_at: float
    """When the result was stored [Unix s]: the notice's `alert_datetime` and the FITS `DATE`."""
    event_metadata: dict[str, Any] | None
    """The manifest's `event_metadata` (run, event, type, MJD, real or not); it wins over the result's."""
    reco_algo: str | None
    nside_progression: dict[int, int] | None
    classifiers: dict[str, Any] = field(default_factory=dict)
    alert_type: str = "initial"
    record_number: int = 1
    alert_tense: str = "test"
    convention: str = "calibrated"
    smoothing_deg: float | None = None
    flat_nside: int | None = None
    healpix_url: str | None = None


@dataclass(frozen=True)
class BuiltProduct:
    name: str
    content_type: str
    etag: str
    data: bytes


@dataclass(frozen=True)
class BuiltProducts:
    products: list[BuiltProduct]
    build_s: float
    """Wall time of the build in the child (imports excluded after the first job)."""


def with_scan_facts(
    result: dict[str, Any], event_metadata: dict[str, Any] | None, is_final: bool
) -> dict[str, Any]:
    """The result with the manifest's event fields and the PUT's `is_final` (as `complete`) in every
    nside's metadata, so that every product agrees with what the API says about the scan."""
    out: dict[str, Any] = {}
    given = event_metadata or {}
    event = {k: given[k] for k in EVENT_FIELDS if k in given}
    for key, entry in result.items():
        if isinstance(entry, dict):
            metadata = dict(entry.get("metadata") or {})
            metadata.update(event)
            metadata["complete"] = is_final
            entry = {**entry, "metadata": metadata}
        out[key] = entry
    return out


def build(job: BuildJob) -> BuiltProducts:
    """Every product of `job`'s result (runs in the child process). ValueError for an unreadable
    result, as `build_products` raises it."""
    from skymap_scanner.products.alert import build_products
    from skymap_scanner.products.info import AlertType, ProductOptions, ScanInfo
    from skymap_scanner.products.probability import Convention

    t0 = time.perf_counter()
    result = with_scan_facts(json.loads(job.result_json), job.event_metadata, job.is_final)
    scan = ScanInfo(
        scan_id=job.scan_id,
        reco_algo=job.reco_algo,
        classifiers=job.classifiers,
        nside_progression=job.nside_progression,
    )
    options = ProductOptions(
        convention=Convention(job.convention),
        smoothing_deg=job.smoothing_deg,
        flat_nside=job.flat_nside,
        alert_type=AlertType(job.alert_type),
        record_number=job.record_number,
        alert_tense=job.alert_tense,
        issued_at=dt.datetime.fromtimestamp(job.stored_at, dt.UTC) if job.stored_at else None,
        healpix_url=job.healpix_url,
    )
    products = build_products(result, scan=scan, options=options)
    return BuiltProducts(
        [BuiltProduct(p.name, p.content_type, p.etag, p.data) for p in products.values()],
        time.perf_counter() - t0,
    )


def position(
    multiorder_fits: bytes, ra_deg: float, dec_deg: float, radius_deg: float | None
) -> dict[str, Any]:
    """`position_query` on a stored multi-order map (runs in the child process)."""
    from skymap_scanner.products.alert import position_query

    return position_query(multiorder_fits, ra_deg, dec_deg, radius_deg=radius_deg)
