"""Per-DOM hit summary (``HitSeries``) built from per-pulse arrays, with hit cleaning.

Cleaning applied by :meth:`HitSeries.from_pulses` (both steps can be switched off):

1. **Time-window cleaning** (like the original's 6000 ns ``CleanedMuonPulses``): pulses are
   sorted by time and the window ``[t_k, t_k + time_window_ns]`` (``t_k`` running over the pulse
   times) holding the largest total charge is found (the earliest such window on ties); only
   pulses inside it are kept.
2. **Isolated-DOM cleaning** (a SeededRT-like rule, radius 150 m, 1000 ns): a DOM is dropped if
   no *other* hit DOM lies within ``rt_radius_m`` whose pulses come within ``rt_time_ns`` of its
   own. Pulse times of a DOM are represented by their span ``[first, last]``; two DOMs are time
   neighbours if the gap between their spans is at most ``rt_time_ns`` (exact when the spans
   have no internal gaps larger than ``rt_time_ns``, otherwise slightly permissive). One pass, on
   the DOMs surviving step 1; DOM positions are taken from each DOM's first pulse.

The summary per DOM is its position, first-hit time, total charge and number of pulses, sorted
by (string, om).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Default time-window length (ns) of the time-window cleaning.
TIME_WINDOW_NS: float = 6000.0
#: Default radius (m) and time (ns) of the isolated-DOM (SeededRT-like) cleaning.
RT_RADIUS_M: float = 150.0
RT_TIME_NS: float = 1000.0


def time_window_mask(time: ArrayLike, charge: ArrayLike, window_ns: float) -> NDArray[np.bool_]:
    """Mask of pulses inside the ``window_ns`` window of maximal total charge (see module doc)."""
    t = np.asarray(time, dtype=np.float64)
    q = np.asarray(charge, dtype=np.float64)
    mask = np.zeros(t.shape, dtype=bool)
    if t.size == 0:
        return mask
    order = np.argsort(t, kind="stable")
    ts = t[order]
    cum = np.concatenate([[0.0], np.cumsum(q[order])])
    end = np.searchsorted(ts, ts + window_ns, side="right")
    window_charge = cum[end] - cum[np.arange(ts.size)]
    k = int(np.argmax(window_charge))
    mask[order[k : end[k]]] = True
    return mask


def isolated_dom_mask(
    pos: ArrayLike,
    first_time: ArrayLike,
    last_time: ArrayLike,
    radius_m: float,
    time_ns: float,
) -> NDArray[np.bool_]:
    """True for DOMs that have at least one other DOM within ``radius_m`` and ``time_ns``."""
    p = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
    t0 = np.asarray(first_time, dtype=np.float64)
    t1 = np.asarray(last_time, dtype=np.float64)
    keep = np.zeros(p.shape[0], dtype=bool)
    if p.shape[0] < 2:
        return keep
    pairs = cKDTree(p).query_pairs(radius_m, output_type="ndarray")
    if pairs.size == 0:
        return keep
    i, j = pairs[:, 0], pairs[:, 1]
    gap = np.maximum(t0[i], t0[j]) - np.minimum(t1[i], t1[j])
    close = gap <= time_ns
    keep[i[close]] = True
    keep[j[close]] = True
    return keep


@dataclass(frozen=True)
class HitSeries:
    """Cleaned per-DOM hit summary of one event (arrays of length ``n``, sorted by string, om)."""

    string: IntArray
    om: IntArray
    pos: FloatArray  # (n, 3) DOM positions, m
    time: FloatArray  # first-hit time, ns
    charge: FloatArray  # total charge, PE
    n_pulses: IntArray

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @property
    def n_doms(self) -> int:
        """Number of hit DOMs."""
        return len(self)

    @property
    def total_charge(self) -> float:
        """Summed charge of all DOMs (PE)."""
        return float(np.sum(self.charge))

    def cog(self) -> FloatArray:
        """Charge-weighted centre of gravity (plain mean if the charges sum to <= 0)."""
        if len(self) == 0:
            raise ValueError("empty HitSeries has no centre of gravity")
        w = np.maximum(self.charge, 0.0)
        tot = float(np.sum(w))
        if tot <= 0.0:
            out: FloatArray = np.mean(self.pos, axis=0)
            return out
        res: FloatArray = (w @ self.pos) / tot
        return res

    def subset(self, mask: ArrayLike) -> HitSeries:
        """A new HitSeries with the DOMs selected by a boolean mask or index array."""
        m = np.asarray(mask)
        return HitSeries(
            string=self.string[m],
            om=self.om[m],
            pos=self.pos[m],
            time=self.time[m],
            charge=self.charge[m],
            n_pulses=self.n_pulses[m],
        )

    @classmethod
    def from_doms(
        cls,
        pos: ArrayLike,
        time: ArrayLike,
        charge: ArrayLike,
        *,
        string: ArrayLike | None = None,
        om: ArrayLike | None = None,
        n_pulses: ArrayLike | None = None,
    ) -> HitSeries:
        """Build directly from per-DOM arrays (no cleaning, order kept)."""
        p = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
        n = p.shape[0]
        return cls(
            string=np.zeros(n, np.int64) if string is None else np.asarray(string, np.int64),
            om=np.arange(n, dtype=np.int64) if om is None else np.asarray(om, np.int64),
            pos=p,
            time=np.asarray(time, dtype=np.float64).reshape(n),
            charge=np.asarray(charge, dtype=np.float64).reshape(n),
            n_pulses=np.ones(n, np.int64) if n_pulses is None else np.asarray(n_pulses, np.int64),
        )

    @classmethod
    def from_pulses(
        cls,
        string: ArrayLike,
        om: ArrayLike,
        time: ArrayLike,
        charge: ArrayLike,
        position: ArrayLike,
        *,
        time_window_ns: float | None = TIME_WINDOW_NS,
        rt_radius_m: float | None = RT_RADIUS_M,
        rt_time_ns: float = RT_TIME_NS,
    ) -> HitSeries:
        """Clean per-pulse arrays and summarise them per DOM (see the module docstring).

        ``time_window_ns=None`` disables the time-window cleaning, ``rt_radius_m=None`` the
        isolated-DOM cleaning.
        """
        s = np.asarray(string, dtype=np.int64).ravel()
        o = np.asarray(om, dtype=np.int64).ravel()
        t = np.asarray(time, dtype=np.float64).ravel()
        q = np.asarray(charge, dtype=np.float64).ravel()
        p = np.asarray(position, dtype=np.float64).reshape(-1, 3)
        if not (s.size == o.size == t.size == q.size == p.shape[0]):
            raise ValueError("per-pulse arrays must all have the same length")
        if time_window_ns is not None and t.size:
            m = time_window_mask(t, q, time_window_ns)
            s, o, t, q, p = s[m], o[m], t[m], q[m], p[m]
        order = np.lexsort((t, o, s))
        s, o, t, q, p = s[order], o[order], t[order], q[order], p[order]
        if t.size:
            new = np.ones(t.size, dtype=bool)
            new[1:] = (s[1:] != s[:-1]) | (o[1:] != o[:-1])
            starts = np.flatnonzero(new)
        else:
            starts = np.zeros(0, dtype=np.intp)
        ends = np.append(starts[1:], t.size).astype(np.intp)
        hits = cls(
            string=s[starts],
            om=o[starts],
            pos=p[starts],
            time=t[starts],
            charge=np.add.reduceat(q, starts) if t.size else np.zeros(0),
            n_pulses=(ends - starts).astype(np.int64),
        )
        if rt_radius_m is not None and len(hits):
            last = np.maximum.reduceat(t, starts)
            keep = isolated_dom_mask(hits.pos, hits.time, last, rt_radius_m, rt_time_ns)
            hits = hits.subset(keep)
        return hits
