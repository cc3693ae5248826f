"""The layered South Pole ice of the SPICE table: per-layer scattering and absorption, and path integrals.

Data: ``data/ice_transparency_spice_1301.5361.txt`` (Aartsen et al. 2013, NIM A 711, 73;
arXiv:1301.5361, p. 31): 110 layers 10 m thick, centred at 1398.4-2488.4 m depth, with the
**effective** scattering length ``lambda_e = 1 / b_e`` and the absorption length ``lambda_a = 1 / a``
(metres, at 400 nm). Depth to detector z: ``z = 1948.07 - depth``. Each table row is taken as a
layer of constant coefficients 10 m thick around its depth; above and below the table the first and
last layers extend to infinity (the table covers all DOMs with > 45 m to spare).

Path integrals along z: ``B(z) = integral of b_e`` and ``A(z) = integral of a`` are piecewise
linear in z, so the optical depth of any straight segment is ``(B(z1) - B(z0)) / cos`` and the
point at a given optical depth is found by inverting ``B`` (exact for piecewise-constant layers).
The plane-parallel layers leave out the tilt of the layers across the array and the anisotropy of
scattering (both in later SPICE models).
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

#: Depth (m below the surface) of the detector origin; z = DETECTOR_ORIGIN_DEPTH_M - depth.
DETECTOR_ORIGIN_DEPTH_M = 1948.07
#: SPICE table file shipped as package data.
SPICE_TABLE = "ice_transparency_spice_1301.5361.txt"
#: Layer thickness of the table, m.
LAYER_THICKNESS_M = 10.0
#: How far beyond the table the edge layers are extended for the cumulative integrals, m.
_EXTEND_M = 1.0e5


@dataclass(frozen=True, eq=False)
class LayeredIce:
    """Plane-parallel layers of constant effective scattering ``b_e`` and absorption ``a`` (1/m).

    ``z_edges`` (n + 1,) are increasing layer boundaries in detector z (m); the outermost edges
    lie far beyond the table (the edge layers extended). ``b_e`` and ``a`` have n values.
    """

    z_edges: FloatArray
    b_e: FloatArray
    a: FloatArray
    cum_b: FloatArray
    cum_a: FloatArray
    #: uniform lookup table z -> layer index (corrected by one step at the cell edges)
    lut_z0: float
    lut_step: float
    lut: NDArray[np.intp]

    @classmethod
    def from_layers(cls, z_edges: ArrayLike, b_e: ArrayLike, a: ArrayLike) -> LayeredIce:
        """Build from layer edges (increasing z) and per-layer coefficients (1/m)."""
        edges = np.asarray(z_edges, dtype=np.float64)
        be = np.asarray(b_e, dtype=np.float64)
        ab = np.asarray(a, dtype=np.float64)
        if edges.ndim != 1 or be.shape != ab.shape or edges.shape[0] != be.shape[0] + 1:
            raise ValueError("need n + 1 increasing edges and n coefficients of each kind")
        if not (np.all(np.diff(edges) > 0) and np.all(be > 0) and np.all(ab > 0)):
            raise ValueError("edges must increase and coefficients must be positive")
        dz = np.diff(edges)
        cum_b = np.concatenate([[0.0], np.cumsum(be * dz)])
        cum_a = np.concatenate([[0.0], np.cumsum(ab * dz)])
        inner = edges[1:-1]
        if inner.size:
            step = 0.5 * float(np.min(np.diff(edges)[1:-1])) if inner.size > 1 else 1.0
            z0 = float(inner[0]) - step
            n_cells = math.ceil((float(inner[-1]) - z0) / step) + 2
        else:
            step, z0, n_cells = 1.0, 0.0, 1
        centres = z0 + (np.arange(n_cells) + 0.5) * step
        lut = np.clip(np.searchsorted(edges, centres, side="right") - 1, 0, be.shape[0] - 1)
        return cls(edges, be, ab, cum_b, cum_a, z0, step, lut.astype(np.intp))

    @classmethod
    def homogeneous(cls, scattering_m: float, absorption_m: float) -> LayeredIce:
        """One infinite layer (effective scattering and absorption lengths in m)."""
        return cls.from_layers([-_EXTEND_M, _EXTEND_M], [1.0 / scattering_m], [1.0 / absorption_m])

    def layer_of(self, z: ArrayLike) -> NDArray[np.intp]:
        """Index of the layer holding each z (clipped to the outermost layers)."""
        zz = np.asarray(z, dtype=np.float64)
        cell = np.clip(
            ((zz - self.lut_z0) * (1.0 / self.lut_step)).astype(np.intp), 0, self.lut.shape[0] - 1
        )
        idx = self.lut[cell]
        idx = idx - (zz < self.z_edges[idx])
        idx = idx + (zz >= self.z_edges[idx + 1])
        out: NDArray[np.intp] = np.clip(idx, 0, self.b_e.shape[0] - 1)
        return out

    def scattering_at(self, z: ArrayLike) -> FloatArray:
        """Effective scattering coefficient ``b_e`` (1/m) at each z."""
        out: FloatArray = self.b_e[self.layer_of(z)]
        return out

    def absorption_at(self, z: ArrayLike) -> FloatArray:
        """Absorption coefficient ``a`` (1/m) at each z."""
        out: FloatArray = self.a[self.layer_of(z)]
        return out

    def cumulative_scattering(self, z: ArrayLike) -> FloatArray:
        """``B(z)``: the integral of ``b_e`` from the lowest edge to z (dimensionless)."""
        zz = np.asarray(z, dtype=np.float64)
        i = self.layer_of(zz)
        out: FloatArray = self.cum_b[i] + self.b_e[i] * (zz - self.z_edges[i])
        return out

    def cumulative_absorption(self, z: ArrayLike) -> FloatArray:
        """``A(z)``: the integral of ``a`` from the lowest edge to z (dimensionless)."""
        zz = np.asarray(z, dtype=np.float64)
        i = self.layer_of(zz)
        out: FloatArray = self.cum_a[i] + self.a[i] * (zz - self.z_edges[i])
        return out

    def z_at_scattering_depth(self, cum: ArrayLike) -> FloatArray:
        """Inverse of :meth:`cumulative_scattering`."""
        out: FloatArray = np.interp(np.asarray(cum, dtype=np.float64), self.cum_b, self.z_edges)
        return out

    def z_at_absorption_depth(self, cum: ArrayLike) -> FloatArray:
        """Inverse of :meth:`cumulative_absorption`."""
        out: FloatArray = np.interp(np.asarray(cum, dtype=np.float64), self.cum_a, self.z_edges)
        return out

    def fine_table(self) -> tuple[float, float, FloatArray, FloatArray]:
        """``(z0, step, B, b)``: ``B`` on a uniform 0.5 m grid from 50 m below the lowest to 50 m
        above the highest inner edge, and the slope ``b`` of each cell (the last cell repeated), for
        :meth:`fast_cumulative_scattering`."""
        cached: tuple[float, float, FloatArray, FloatArray] | None = getattr(self, "_fine", None)
        if cached is not None:
            return cached
        inner = self.z_edges[1:-1] if self.z_edges.shape[0] > 2 else np.array([0.0])
        step = 0.5
        z0 = float(inner[0]) - 50.0
        n = math.ceil((float(inner[-1]) + 50.0 - z0) / step) + 1
        grid = z0 + step * np.arange(n)
        cum = np.interp(grid, self.z_edges, self.cum_b)
        slope = np.append(np.diff(cum) / step, self.b_e[-1])
        out = (z0, step, cum, slope)
        object.__setattr__(self, "_fine", out)
        return out

    def fast_cumulative_scattering(self, z: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``B(z)`` and ``dB/dz`` from the fine table: the layers' boundaries are rounded to 0.5 m
        (exact within each layer; the first and last layers extend linearly beyond the table)."""
        z0, step, cum, slope = self.fine_table()
        i = np.clip(((z - z0) * (1.0 / step)).astype(np.intp), 0, cum.shape[0] - 1)
        below = z < z0
        i = np.where(below, 0, i)
        b = np.where(below, self.b_e[0], slope[i])
        value: FloatArray = cum[i] + b * (z - (z0 + step * i))
        return value, b

    def mean_between(self, z0: ArrayLike, z1: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Average ``b_e`` and ``a`` (1/m) over z in [z0, z1] (the local values where z0 == z1).

        This is the mean along any straight path between the two depths, whatever its slope.
        """
        za = np.asarray(z0, dtype=np.float64)
        zb = np.asarray(z1, dtype=np.float64)
        dz = zb - za
        flat = np.abs(dz) < 1e-6
        safe = np.where(flat, 1.0, dz)
        mb = (self.cumulative_scattering(zb) - self.cumulative_scattering(za)) / safe
        ma = (self.cumulative_absorption(zb) - self.cumulative_absorption(za)) / safe
        mid = 0.5 * (za + zb)
        mb = np.where(flat, self.scattering_at(mid), mb)
        ma = np.where(flat, self.absorption_at(mid), ma)
        return mb, ma


def _read_spice_text() -> str:
    return resources.files("skymap_scanner").joinpath("data", SPICE_TABLE).read_text("utf-8")


@functools.lru_cache(maxsize=1)
def spice_ice() -> LayeredIce:
    """The SPICE layered ice (module docstring), cached per process."""
    table = np.loadtxt(io.StringIO(_read_spice_text()), skiprows=1, dtype=np.float64)
    depth, scat, absorb = table[:, 0], table[:, 1], table[:, 2]
    z = DETECTOR_ORIGIN_DEPTH_M - depth
    order = np.argsort(z)
    z, scat, absorb = z[order], scat[order], absorb[order]
    inner = 0.5 * (z[1:] + z[:-1])
    edges = np.concatenate([[z[0] - _EXTEND_M], inner, [z[-1] + _EXTEND_M]])
    return LayeredIce.from_layers(edges, 1.0 / scat, 1.0 / absorb)
