"""JSON messages between the scanner server and its workers (never pickles: a worker cannot run code on the
server). Validated by pydantic at both ends."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Seed(BaseModel):
    """Where a pixel's fit starts: vertex (m), time (ns) and energy (GeV, NaN if unknown)."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    x: float
    y: float
    z: float
    t: float
    energy: float = float("nan")


class PixelTask(BaseModel):
    """One pixel-variation to reconstruct (the message on `to-clients-<scan_id>`)."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

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


class RecoPixelVariation(BaseModel):
    """The reconstruction of one pixel-variation (llh is the minimised negative log-likelihood)."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

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


class PixelResult(BaseModel):
    """The message on `from-clients-<scan_id>`: a reconstruction, or the report that a pixel failed for good."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    reco_pixel_variation: RecoPixelVariation
    runtime: float = Field(ge=0, description="worker-side wall seconds of the reconstruction")
    sent_at: float = 0.0
    attempts: int = Field(default=1, ge=1)
    failed: bool = False
    error: str | None = None
    worker: str = ""
