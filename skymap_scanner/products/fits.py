"""Probability sky maps as FITS bytes: multi-order (LVK/GCN convention) and flattened.

Multi-order (``skymap.multiorder.fits``), one BINTABLE (``EXTNAME = 'SKYMAP'``) as ligo.skymap
writes and reads it:

- ``UNIQ`` (K): ``4 * nside**2 + nest`` of each tile; ``PROBDENSITY`` (D, ``sr-1``): the density
  of ``probability.ProbabilityMap`` (Σ PROBDENSITY · Ω = 1);
- ``PIXTYPE = 'HEALPIX'``, ``ORDERING = 'NUNIQ'``, ``COORDSYS = 'C'``, ``MOCORDER`` (finest order),
  ``INDXSCHM = 'EXPLICIT'``, plus the cards of ``header_cards``.

Flattened (``skymap.flat.fits.gz``): one BINTABLE ``PROB`` (D, probability per pixel) at one nside,
``ORDERING = 'NESTED'``, ``INDXSCHM = 'IMPLICIT'`` (as ``ligo-skymap-flatten`` writes),
gzip-compressed (level 1: in NESTED order the map is mostly long runs of equal values).

Both are deterministic: the same map and cards give the same bytes (no date unless one is given,
gzip without a timestamp).
"""

from __future__ import annotations

import gzip
import io
import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from astropy.io import fits as afits
from astropy.io.fits.verify import VerifyWarning

from .probability import ProbabilityMap

__all__ = ["Card", "flat_fits_bytes", "multiorder_fits_bytes", "read_multiorder_fits"]

_BLOCK = 2880
"""FITS block size (bytes)."""

Card = tuple[str, Any, str]
"""(keyword, value, comment); keywords longer than 8 characters become HIERARCH cards."""


def _add_cards(header: afits.Header, cards: Iterable[Card]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)  # HIERARCH for long keys
        for key, value, comment in cards:
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                continue
            header[key] = (value, comment)


def _to_bytes(hdu: afits.BinTableHDU) -> bytes:
    buffer = io.BytesIO()
    afits.HDUList([afits.PrimaryHDU(), hdu]).writeto(buffer)
    return buffer.getvalue()


def multiorder_fits_bytes(pmap: ProbabilityMap, cards: Iterable[Card] = ()) -> bytes:
    """The multi-order FITS file of ``pmap`` (see the module docstring).

    Parameters
    ----------
    pmap
        The probability map (density in sr⁻¹).
    cards
        Extra header cards (identifiers, best fit, errors, areas, ...).

    Returns
    -------
    bytes
        The FITS file.
    """
    columns = [
        afits.Column(name="UNIQ", format="K", array=pmap.uniq.astype(np.int64)),
        afits.Column(name="PROBDENSITY", format="D", unit="sr-1", array=pmap.density),
    ]
    hdu = afits.BinTableHDU.from_columns(columns, name="SKYMAP")
    header = hdu.header
    header["PIXTYPE"] = ("HEALPIX", "HEALPix pixelisation")
    header["ORDERING"] = ("NUNIQ", "multi-order: UNIQ = 4 * nside**2 + nest index")
    header["COORDSYS"] = ("C", "equatorial (ICRS, J2000)")
    header["MOCORDER"] = (pmap.max_order, "finest HEALPix order (nside = 2**MOCORDER)")
    header["INDXSCHM"] = ("EXPLICIT", "pixels listed explicitly")
    _add_cards(header, cards)
    return _to_bytes(hdu)


def flat_fits_bytes(pmap: ProbabilityMap, nside: int, cards: Iterable[Card] = ()) -> bytes:
    """The map flattened to ``nside`` (probability per NESTED pixel), gzip-compressed FITS.

    Parameters
    ----------
    pmap
        The probability map.
    nside
        Resolution of the flat map (a power of two); coarser than the finest tiles sums them.
    cards
        Extra header cards.

    Returns
    -------
    bytes
        The gzip-compressed FITS file.
    """
    prob = pmap.flatten(nside)
    # the header from astropy (one placeholder row), the 3 million rows written directly: astropy's
    # table writer is 10x slower for one plain big-endian column
    column = afits.Column(name="PROB", format="D", unit="pix-1", array=np.zeros(1))
    hdu = afits.BinTableHDU.from_columns([column], name="SKYMAP")
    header = hdu.header
    header["NAXIS2"] = prob.size
    header["PIXTYPE"] = ("HEALPIX", "HEALPix pixelisation")
    header["ORDERING"] = ("NESTED", "pixel ordering scheme")
    header["COORDSYS"] = ("C", "equatorial (ICRS, J2000)")
    header["NSIDE"] = (nside, "resolution parameter of the HEALPix map")
    header["INDXSCHM"] = ("IMPLICIT", "indexing: implicit")
    header["FIRSTPIX"] = (0, "first pixel index")
    header["LASTPIX"] = (prob.size - 1, "last pixel index")
    _add_cards(header, cards)
    data = prob.astype(">f8")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1, mtime=0) as stream:
        stream.write(afits.PrimaryHDU().header.tostring().encode("ascii"))
        stream.write(header.tostring().encode("ascii"))
        stream.write(data.data.cast("B"))
        stream.write(b"\0" * (-data.nbytes % _BLOCK))
    return buffer.getvalue()


def read_multiorder_fits(data: bytes) -> tuple[ProbabilityMap, afits.Header]:
    """Read a multi-order FITS file (ours or any LVK-style one) into a map and its header.

    Parameters
    ----------
    data
        The file's bytes (gzip-compressed or not).

    Returns
    -------
    (ProbabilityMap, astropy.io.fits.Header)
        The map (tiles sorted by UNIQ; no ``treatment``) and the table's header.
    """
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    with afits.open(io.BytesIO(data)) as hdus:
        hdu = hdus[1]
        header = hdu.header.copy()
        if header.get("ORDERING") != "NUNIQ":
            raise ValueError(f"not a multi-order map: ORDERING = {header.get('ORDERING')!r}")
        uniq = np.asarray(hdu.data["UNIQ"], dtype=np.int64)
        density = np.asarray(hdu.data["PROBDENSITY"], dtype=np.float64)
    order = np.argsort(uniq, kind="stable")
    return ProbabilityMap(uniq[order], density[order]), header
