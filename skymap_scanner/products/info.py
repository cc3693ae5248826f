"""What the products need beyond the result: scan identifiers, options, and who made them."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import metadata
from typing import Any

from .calibration import CALIBRATED_DELTA_LLH_90
from .probability import Convention

__all__ = [
    "ALERT_TENSES",
    "CREATOR",
    "AlertType",
    "ProductOptions",
    "ScanInfo",
    "creator_version",
    "mjd_to_datetime",
]

ALERT_TENSES = ("current", "archival", "planned", "injection", "commanded", "test")
"""The GCN schema's ``alert_tense`` values."""

CREATOR = "skydriver-reimpl"
"""Name of the distribution that made the products (its version is ``creator_version()``)."""


@cache
def creator_version() -> str:
    """Version of the installed ``skydriver-reimpl`` distribution ('unknown' if not installed)."""
    try:
        return metadata.version(CREATOR)
    except metadata.PackageNotFoundError:
        return "unknown"


class AlertType(StrEnum):
    """GCN ``alert_type``: the first notice of an event, then updates (rescans, final results)."""

    INITIAL = "initial"
    UPDATE = "update"


@dataclass(frozen=True)
class ScanInfo:
    """Facts about the scan that the result itself does not hold."""

    scan_id: str | None = None
    reco_algo: str | None = None
    """Reconstruction name, e.g. ``pandel_mpe``."""
    classifiers: Mapping[str, Any] = field(default_factory=dict)
    """The scan's classifiers; ``notice`` reads a few documented keys from them."""
    nside_progression: Mapping[int, int] | None = None
    """The requested progression (nside → pixel extension), e.g. {8: 0, 64: 12, 512: 24}."""


@dataclass(frozen=True)
class ProductOptions:
    """Choices that change the products (all have defaults).

    Attributes
    ----------
    convention
        Probability map convention of the FITS maps, the notice, the circular and the stats'
        summary (regions are made for both conventions anyway).
    smoothing_deg
        Sigma [deg] of an optional Gaussian smoothing of the probability maps; None for none.
    calibrated_delta_llh_90
        The calibrated 90 % 2ΔLLH level.
    flat_nside
        Resolution of the flattened FITS map; None: the scan's finest nside.
    alert_type, record_number, alert_tense
        GCN notice sequencing (``initial`` with record 1, then ``update`` 2, 3, ...) and tense
        (``test`` unless told otherwise).
    issued_at
        Notice creation time (``alert_datetime``, FITS ``DATE``); None leaves them out, which
        keeps the bytes a function of the result alone.
    healpix_url
        Where the multi-order map will be served, for the notice.
    embed_healpix
        Put the multi-order FITS into the notice (``healpix_file``, base64).
    position
        (RA, Dec) [deg] to report searched area / probability for in the stats (e.g. the truth
        of a simulated event); ``position_radius_deg`` adds the probability in a cone around it.
    """

    convention: Convention = Convention.CALIBRATED
    smoothing_deg: float | None = None
    calibrated_delta_llh_90: float = CALIBRATED_DELTA_LLH_90
    flat_nside: int | None = None
    alert_type: AlertType = AlertType.INITIAL
    record_number: int = 1
    alert_tense: str = "test"
    issued_at: dt.datetime | None = None
    healpix_url: str | None = None
    embed_healpix: bool = False
    position: tuple[float, float] | None = None
    position_radius_deg: float | None = None

    def __post_init__(self) -> None:
        if self.record_number < 1:
            raise ValueError(f"record_number {self.record_number} must be ≥ 1")
        if self.flat_nside is not None and (
            self.flat_nside < 1 or self.flat_nside & (self.flat_nside - 1) or self.flat_nside > 4096
        ):
            raise ValueError(f"flat_nside {self.flat_nside}: give a power of two up to 4096")
        if self.alert_tense not in ALERT_TENSES:
            raise ValueError(f"alert_tense {self.alert_tense!r}: one of {', '.join(ALERT_TENSES)}")
        if self.issued_at is not None and self.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware (UTC)")


def mjd_to_datetime(mjd: float) -> dt.datetime | None:
    """UTC datetime of an MJD (UTC scale), or None when the MJD is missing or not finite."""
    if not isinstance(mjd, int | float) or not math.isfinite(mjd):
        return None
    from astropy.time import Time

    value = Time(float(mjd), format="mjd", scale="utc").to_datetime(timezone=dt.UTC)
    assert isinstance(value, dt.datetime)
    return value
