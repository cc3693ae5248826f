"""The messages the three programs send each other.

- on the broker, between the scanner server and its workers: `PixelTask` (`to-clients-<scan_id>`) and
  `PixelResult` (`from-clients-<scan_id>`); JSON, never pickles (a worker cannot run code on the server),
  validated by pydantic at both ends;
- to SkyDriver's REST API, from the scanner server: `ManifestPatchBody` (progress and metadata, PATCH
  manifest) and `ResultPutBody` (PUT result); from the client manager: `WorkforcePutBody` (PUT workforce).

The REST bodies keep their `...Body` names: they are also the OpenAPI document's schema names."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


# -- scanner server <-> workers ------------------------------------------------------------------------
class Seed(_Message):
    """Where a pixel's fit starts: vertex (m), time (ns) and energy (GeV, NaN if unknown)."""

    x: float
    y: float
    z: float
    t: float
    energy: float = float("nan")


class PixelTask(_Message):
    """One pixel-variation to reconstruct (the message on `to-clients-<scan_id>`)."""

    scan_id: str
    reco_algo: str
    realtime_format_version: str = ""
    nside: int = Field(ge=1)
    pixel: int = Field(ge=0)
    posvar: int = Field(ge=0)
    ra: float
    dec: float
    seed: Seed
    attempt: int = Field(default=1, ge=1)
    sent_at: float = 0.0

    @property
    def id_tuple(self) -> tuple[int, int, int]:
        return (self.nside, self.pixel, self.posvar)


class RecoPixelVariation(_Message):
    """The reconstruction of one pixel-variation (llh is the minimised negative log-likelihood)."""

    nside: int
    pixel: int
    posvar: int
    llh: float
    e_in: float
    e_tot: float
    x: float
    y: float
    z: float
    t: float
    energy: float

    @property
    def id_tuple(self) -> tuple[int, int, int]:
        return (self.nside, self.pixel, self.posvar)


class PixelResult(_Message):
    """The message on `from-clients-<scan_id>`: a reconstruction, or the report that a pixel failed for
    good."""

    reco_pixel_variation: RecoPixelVariation
    runtime: float = Field(ge=0, description="worker-side wall seconds of the reconstruction")
    sent_at: float = 0.0
    attempts: int = Field(default=1, ge=1)
    failed: bool = False
    error: str | None = None
    worker: str = ""


# -- scanner server -> SkyDriver -----------------------------------------------------------------------
# (the four REST bodies' docstrings are their OpenAPI descriptions: the committed document has them as is)
class ProgressBody(BaseModel):
    # the progress report ("scan stats") in the original's structure; free-form beyond these fields

    model_config = ConfigDict(extra="allow")

    summary: str
    epilogue: str
    tallies: dict[str, Any]
    processing_stats: dict[str, Any]
    predictive_scanning_threshold: float
    last_updated: str
    start: int | None = None
    end: int | None = None


class EventMetadataBody(_Message):
    # what the scanner read of the event: run, event, type, time (MJD) and whether it is real

    run_id: int
    event_id: int
    event_type: str
    mjd: float
    is_real_event: bool


class ManifestPatchBody(_Message):
    """PATCH /scan/{id}/manifest (the scanner server)."""

    model_config = ConfigDict(populate_by_name=True)

    progress: ProgressBody | None = None
    event_metadata: EventMetadataBody | None = None
    scan_metadata: dict[str, Any] = Field(default_factory=dict)


class ResultPutBody(_Message):
    """PUT /scan/{id}/result (the scanner server)."""

    model_config = ConfigDict(populate_by_name=True)

    skyscan_result: dict[str, Any]
    is_final: bool


# -- client manager -> SkyDriver -----------------------------------------------------------------------
class WorkforcePutBody(_Message):
    """PUT /scan/{id}/workforce (the client manager): what its workers are doing."""

    model_config = ConfigDict(populate_by_name=True)

    backend: str
    statuses: dict[str, int]
    n_running: int = Field(ge=0)
    n_failed: int = Field(ge=0)
    n_requested: int = Field(ge=0)
    top_errors: dict[str, int] = Field(default_factory=dict)
    stopped: bool = False
