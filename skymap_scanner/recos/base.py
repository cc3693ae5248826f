"""The reconstruction interface that workers run, one pixel-variation at a time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from skyscan_contract.messages import PixelTask, RecoPixelVariation, Seed


class StartupData(BaseModel):
    """Everything a worker needs besides the pixel message: written once per scan by the server."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    scan_id: str
    reco_algo: str
    realtime_format_version: str = ""
    event: dict[str, Any]
    fallback_seed: Seed
    #: the algorithm's settings, read from the server's environment so that every worker runs the same
    reco_config: dict[str, Any] = {}


class Reconstruction(ABC):
    """One algorithm. `prepare` runs once on the server; `reconstruct` runs per pixel-variation on a worker."""

    name: ClassVar[str]
    #: position variations per pixel (the server sends this many messages per pixel)
    n_posvar: ClassVar[int] = 1

    def __init__(self, startup: StartupData) -> None:
        self.startup = startup

    @classmethod
    def config_from_env(cls) -> dict[str, Any]:
        """The algorithm's settings (server side), handed to workers in the startup data."""
        return {}

    @classmethod
    def fallback_seed(cls, event: dict[str, Any]) -> Seed:
        """The event-level seed used at the first nside (and when a parent pixel has none)."""
        return Seed(x=0.0, y=0.0, z=0.0, t=0.0)

    @abstractmethod
    def reconstruct(self, task: PixelTask) -> RecoPixelVariation:
        """Reconstruct one pixel-variation; raise on failure (the worker retries, then reports)."""
