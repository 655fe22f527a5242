"""Regular grids in d ≤ 2 (any d works) and the interpolation kernels of functional PI-FT.

Fields live on the tensor grid lo + h·i (i_j = 0..n_j-1), flattened in C order: a value V (M,)
and a vector field G (M, d) (the gradient ∇V, or a control). Off-grid points use the grid cell
that contains them (the edge cell outside the box, i.e. linear extrapolation), with
multilinear weights ω_c over the 2^d corners x_c:

    field(z) = Σ_c ω_c G_c,        value(z) = Σ_c ω_c [V_c + ½ G_c·(z - x_c)].

The value rule averages multilinear interpolation of V with the gradient-corrected one; their
O(h²) errors cancel for quadratics, so both rules are exact for a quadratic V with affine ∇V
(the linear–quadratic case) and second-order accurate otherwise.
"""
from dataclasses import dataclass

import numpy as np
from numba import njit, prange


def _interpolate(lo, h, shape, values, field, points, out_value, out_field):
    """Fill out_value (P,) and out_field (P, d) at points (P, d) (module docstring)."""
    n_points, d = points.shape
    corners = 1 << d
    index = np.empty((n_points, d), dtype=np.int64)
    theta = np.empty((n_points, d))
    for p in prange(n_points):
        for j in range(d):
            pos = (points[p, j] - lo[j]) / h[j]
            i = min(max(int(np.floor(pos)), 0), shape[j] - 2)
            index[p, j] = i
            theta[p, j] = pos - i
            out_field[p, j] = 0.0
        acc = 0.0
        for c in range(corners):
            weight = 1.0
            flat = 0
            for j in range(d):
                bit = (c >> j) & 1
                weight *= theta[p, j] if bit else 1.0 - theta[p, j]
                flat = flat * shape[j] + index[p, j] + bit
            corr = 0.0
            for j in range(d):
                node = lo[j] + h[j] * (index[p, j] + ((c >> j) & 1))
                corr += field[flat, j] * (points[p, j] - node)
                out_field[p, j] += weight * field[flat, j]
            acc += weight * (values[flat] + 0.5 * corr)
        out_value[p] = acc


#: The same kernel serial (small batches: thread start-up dominates) and over threads.
interpolate_serial = njit(cache=True)(_interpolate)
interpolate_parallel = njit(cache=True, parallel=True)(_interpolate)
#: Batches at least this large go to the threaded kernel.
PARALLEL_MIN_POINTS = 200_000


@dataclass(frozen=True)
class Grid:
    """Tensor grid: lo, hi (d,), n (d,) points per axis; ``points`` (M, d) in C order."""

    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray

    @property
    def h(self):
        return (self.hi - self.lo) / (self.n - 1)

    @property
    def shape(self):
        return tuple(int(v) for v in self.n)

    @property
    def axes(self):
        return [np.linspace(l, u, int(m)) for l, u, m in zip(self.lo, self.hi, self.n)]

    @property
    def points(self):
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def interpolate(self, values, field, points):
        """(value (P,), field (P, d)) at ``points`` (P, d) from ``values`` (M,), ``field`` (M, d)."""
        points = np.ascontiguousarray(points, dtype=float)
        out_v = np.empty(len(points))
        out_f = np.empty(points.shape)
        kernel = interpolate_parallel if len(points) >= PARALLEL_MIN_POINTS else interpolate_serial
        kernel(self.lo, self.h, np.asarray(self.n, dtype=np.int64), np.ascontiguousarray(values),
                           np.ascontiguousarray(field), points, out_v, out_f)
        return out_v, out_f

    def gradient(self, values):
        """(M, d) second-order finite-difference gradient of ``values`` (M,), one axis at a time."""
        grid_values = values.reshape(self.shape)
        parts = [np.gradient(grid_values, step, axis=j, edge_order=2) for j, step in enumerate(self.h)]
        return np.stack([p.ravel() for p in parts], axis=1)

    def hessian_norm(self, field):
        """max over the grid of the spectral norm of the symmetrised Jacobian of ``field`` (M, d)."""
        d = len(self.n)
        jac = np.stack([self.gradient(np.ascontiguousarray(field[:, i])) for i in range(d)], axis=1)
        sym = 0.5 * (jac + np.swapaxes(jac, 1, 2))
        return float(np.abs(np.linalg.eigvalsh(sym)).max())
