"""Reconstructions registered by name (`--reco-algo`)."""

from __future__ import annotations

from .base import Reconstruction, StartupData
from .dummy import CrashDummy, Dummy

RECOS: dict[str, type[Reconstruction]] = {cls.name: cls for cls in (Dummy, CrashDummy)}


class UnknownReco(ValueError):
    pass


def get_reco(name: str) -> type[Reconstruction]:
    try:
        return RECOS[name]
    except KeyError:
        raise UnknownReco(
            f"unknown reco_algo {name!r} (available: {', '.join(sorted(RECOS))})"
        ) from None


__all__ = ["RECOS", "Reconstruction", "StartupData", "UnknownReco", "get_reco"]
