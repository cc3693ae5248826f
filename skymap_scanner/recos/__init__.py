"""Reconstructions registered by name (`--reco-algo`), imported on first use so that a worker loads only
the algorithm its scan runs."""

from __future__ import annotations

import importlib

from .base import Reconstruction, StartupData

RECOS: dict[str, str] = {
    "dummy": "skymap_scanner.recos.dummy:Dummy",
    "crash_dummy": "skymap_scanner.recos.dummy:CrashDummy",
    "pandel_spe": "skymap_scanner.recos.pandel:PandelSPE",
    "pandel_mpe": "skymap_scanner.recos.pandel:PandelMPE",
}


class UnknownReco(ValueError):
    pass


def get_reco(name: str) -> type[Reconstruction]:
    try:
        module, cls = RECOS[name].split(":")
    except KeyError:
        raise UnknownReco(
            f"unknown reco_algo {name!r} (available: {', '.join(sorted(RECOS))})"
        ) from None
    reco: type[Reconstruction] = getattr(importlib.import_module(module), cls)
    return reco


__all__ = ["RECOS", "Reconstruction", "StartupData", "UnknownReco", "get_reco"]
