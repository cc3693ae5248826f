"""Credible regions as IVOA MOCs (Multi-Order Coverage maps, MOC 2.0), through mocpy.

A region's MOC is exactly its tiles (``credible.CredibleRegion.tiles``), each at its own order, so
its area is their summed area. It is written in the MOC 2.0 FITS serialisation that MOC 1.x readers
also read (``ORDERING = 'NUNIQ'``, mocpy's ``v1_compatible``), with a few cards saying what region
it is. The bytes are deterministic.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import numpy as np
from mocpy import MOC  # type: ignore[import-untyped]

from .fits import Card
from .probability import ProbabilityMap

__all__ = ["moc_fits_bytes", "region_moc"]


def region_moc(pmap: ProbabilityMap, tiles: np.ndarray) -> MOC:
    """The MOC of ``tiles`` (positions into ``pmap``'s arrays).

    Parameters
    ----------
    pmap
        The map the tiles belong to.
    tiles
        Positions of the region's tiles.

    Returns
    -------
    mocpy.MOC
        Its coverage, at the map's finest order at most.
    """
    return MOC.from_healpix_cells(
        pmap.nest[tiles].astype(np.uint64),
        pmap.order[tiles].astype(np.uint8),
        max_depth=pmap.max_order,
    )


def moc_fits_bytes(moc: MOC, cards: Iterable[Card] = ()) -> bytes:
    """The MOC as FITS bytes (NUNIQ, readable by MOC 1 and 2 parsers), with extra ``cards``."""
    hdus = moc.serialize(format="fits", v1_compatible=True)
    for key, value, comment in cards:
        if value is not None:
            hdus[1].header[key] = (value, comment)
    buffer = io.BytesIO()
    hdus.writeto(buffer)
    return buffer.getvalue()
