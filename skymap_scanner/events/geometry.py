"""Detector geometries shipped with the package (DOM positions, efficiencies, live-DOM list).

``IceCube-86``:
- positions of all 5,160 in-ice DOMs from ``data/icecube86_sensor_geometry_kaggle.csv``;
- relative DOM efficiency (``rde``) and the live-DOM list from ``data/icecube86_dom_status.csv``,
  derived from graphnet's IceCube-86 geometry table (5,083 live in-ice DOMs; the other 77 were
  excluded there as bad/dead). DOMs absent from that table get efficiency 1.0 and ``live = False``.

See ``skymap_scanner/data/README.md`` for provenance.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np
from numpy.typing import NDArray

__all__ = ["DEFAULT_DETECTOR", "KNOWN_DETECTORS", "Geometry", "load_geometry"]

#: The detector used when an event does not name one.
DEFAULT_DETECTOR = "IceCube-86"
#: Names accepted by :func:`load_geometry` (and by an event's ``"detector"`` field).
KNOWN_DETECTORS: tuple[str, ...] = ("IceCube-86",)

_POSITIONS_CSV = "icecube86_sensor_geometry_kaggle.csv"
_STATUS_CSV = "icecube86_dom_status.csv"
_OMS_PER_STRING_KAGGLE = 60


@dataclass(frozen=True, eq=False)
class Geometry:
    """DOM positions (metres, IceCube coordinates), efficiencies and live flags of one detector.

    The per-DOM arrays are sorted by (string, om) and read-only.  Use :meth:`lookup` /
    :meth:`index` for vectorised access by (string, om).
    """

    name: str
    string: NDArray[np.int64]
    om: NDArray[np.int64]
    position: NDArray[np.float64]
    efficiency: NDArray[np.float64]
    live: NDArray[np.bool_]
    #: dense (string, om) -> row index table, -1 where no DOM; shape (max_string + 1, max_om + 1)
    index_table: NDArray[np.int64]

    @property
    def n_doms(self) -> int:
        return int(self.string.shape[0])

    @property
    def max_string(self) -> int:
        return int(self.index_table.shape[0] - 1)

    @property
    def max_om(self) -> int:
        return int(self.index_table.shape[1] - 1)

    def index(self, string: NDArray[np.int64], om: NDArray[np.int64]) -> NDArray[np.int64]:
        """Row index of each (string, om) in the per-DOM arrays, -1 where the DOM is unknown."""
        s = np.asarray(string, dtype=np.int64)
        o = np.asarray(om, dtype=np.int64)
        inside = (s >= 0) & (s <= self.max_string) & (o >= 0) & (o <= self.max_om)
        out = np.full(s.shape, -1, dtype=np.int64)
        out[inside] = self.index_table[s[inside], o[inside]]
        return out

    def lookup(
        self, string: NDArray[np.int64], om: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Positions (shape (n, 3), NaN where unknown) and a "known" mask for each (string, om)."""
        idx = self.index(string, om)
        known = idx >= 0
        pos = np.full((*idx.shape, 3), np.nan, dtype=np.float64)
        pos[known] = self.position[idx[known]]
        return pos, known

    def efficiency_of(
        self, string: NDArray[np.int64], om: NDArray[np.int64]
    ) -> NDArray[np.float64]:
        """Relative DOM efficiency of each (string, om); 1.0 where the DOM is unknown."""
        idx = self.index(string, om)
        eff = np.ones(idx.shape, dtype=np.float64)
        known = idx >= 0
        eff[known] = self.efficiency[idx[known]]
        return eff

    def __repr__(self) -> str:
        return f"Geometry(name={self.name!r}, n_doms={self.n_doms}, n_live={int(self.live.sum())})"

    def live_positions(self) -> NDArray[np.float64]:
        """Positions of the live DOMs, shape (n_live, 3)."""
        out: NDArray[np.float64] = self.position[self.live]
        return out


def _read_data_text(filename: str) -> str:
    return resources.files("skymap_scanner").joinpath("data", filename).read_text(encoding="utf-8")


def _readonly(a: NDArray[np.generic]) -> None:
    a.setflags(write=False)


def _load_icecube86() -> Geometry:
    pos_table = np.loadtxt(
        io.StringIO(_read_data_text(_POSITIONS_CSV)), delimiter=",", skiprows=1, dtype=np.float64
    )
    sensor_id = pos_table[:, 0].astype(np.int64)
    string = sensor_id // _OMS_PER_STRING_KAGGLE + 1
    om = sensor_id % _OMS_PER_STRING_KAGGLE + 1
    position = np.ascontiguousarray(pos_table[:, 1:4])
    order = np.lexsort((om, string))
    string, om, position = string[order], om[order], position[order]

    index_table = np.full((int(string.max()) + 1, int(om.max()) + 1), -1, dtype=np.int64)
    if np.any(index_table[string, om] != -1) or len(np.unique(sensor_id)) != len(sensor_id):
        raise RuntimeError(f"duplicate DOMs in {_POSITIONS_CSV}")
    index_table[string, om] = np.arange(string.shape[0], dtype=np.int64)

    status = np.loadtxt(
        io.StringIO(_read_data_text(_STATUS_CSV)), delimiter=",", skiprows=1, dtype=np.float64
    )
    st_string = status[:, 0].astype(np.int64)
    st_om = status[:, 1].astype(np.int64)
    efficiency = np.ones(string.shape[0], dtype=np.float64)
    live = np.zeros(string.shape[0], dtype=np.bool_)
    inside = (st_string <= index_table.shape[0] - 1) & (st_om <= index_table.shape[1] - 1)
    rows = np.full(st_string.shape, -1, dtype=np.int64)
    rows[inside] = index_table[st_string[inside], st_om[inside]]
    if np.any(rows < 0):
        raise RuntimeError(f"{_STATUS_CSV} names DOMs that have no position in {_POSITIONS_CSV}")
    efficiency[rows] = status[:, 2]
    live[rows] = True

    for a in (string, om, position, efficiency, live, index_table):
        _readonly(a)
    return Geometry(
        name="IceCube-86",
        string=string,
        om=om,
        position=position,
        efficiency=efficiency,
        live=live,
        index_table=index_table,
    )


@functools.cache
def _load_cached(name: str) -> Geometry:
    if name == "IceCube-86":
        return _load_icecube86()
    known = ", ".join(repr(k) for k in KNOWN_DETECTORS)
    raise ValueError(f"unknown detector {name!r} (known: {known})")


def load_geometry(name: str = DEFAULT_DETECTOR) -> Geometry:
    """The named detector geometry (loaded once and cached; arrays are read-only).

    Raises:
        ValueError: the name is not one of :data:`KNOWN_DETECTORS`.
    """
    return _load_cached(name)
