"""Reconstructions by name (`--reco-algo`): the names and what each needs are the contract's table
(`skyscan_contract.recos`); here each name gets its class, imported on first use so that a worker loads
only the algorithm its scan runs."""

from __future__ import annotations

import importlib

from skyscan_contract.recos import RECOS, UnknownReco, reco_info

from .base import Reconstruction, StartupData

#: the class of each name of the contract's table (a test checks both list the same names)
CLASSES: dict[str, str] = {
    "dummy": "skymap_scanner.recos.dummy:Dummy",
    "crash_dummy": "skymap_scanner.recos.dummy:CrashDummy",
    "pandel_spe": "skymap_scanner.recos.pandel:PandelSPE",
    "pandel_mpe": "skymap_scanner.recos.pandel:PandelMPE",
}


def get_reco(name: str) -> type[Reconstruction]:
    """The reconstruction class of `name`; `UnknownReco` names the choices."""
    reco_info(name)  # UnknownReco for a name the contract does not know
    module, cls = CLASSES[name].split(":")
    reco: type[Reconstruction] = getattr(importlib.import_module(module), cls)
    return reco


__all__ = ["RECOS", "Reconstruction", "StartupData", "UnknownReco", "get_reco"]
