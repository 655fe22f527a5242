"""Numba kernels of the grid solver's outputs: the end of a backward step (the rescaling of h
and the floored log of a saved level), cubic interpolation of grid data and the Euler–Maruyama
step of the controlled SDE. The fitted rates are in `hjsolve.grid.rates`, the axis sweeps in
`hjsolve.grid.sweeps`.
"""
import numpy as np
from numba import njit, prange

from ..vexp import log


#: The smallest positive normal double: `floored_log`'s floor must be normal.
MIN_NORMAL = np.finfo(float).tiny


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def total(u):
    """Σ u over (N,), NaN if a value is NaN (vectorised: the order of the additions is LLVM's)."""
    acc = 0.0
    for i in range(u.shape[0]):
        acc += u[i]
    return acc


@njit(cache=True, nogil=True, error_model="numpy")
def normalise(h, k, save_every, floor, offset, out):
    """The end of backward step k. h (N,) is the step's output, h̃ = h e^{offset}, and
    norm = Σ h. At a saved level, writes log(max(h / norm, floor)) + offset + log norm (log h̃,
    floored at ``floor`` times the sum) into out[(k + 1) / save_every]. Returns the new offset,
    offset + log norm, and the next step's ``scale``, 1 / norm; (NaN, NaN) if Σ h is not
    positive and finite (h lost positivity, or overflowed)."""
    norm = total(h)
    if not (norm > 0.0 and norm < np.inf):
        return np.nan, np.nan
    if (k + 1) % save_every == 0:
        floored_log(h, max(floor * norm, MIN_NORMAL), offset, out[(k + 1) // save_every])
    return offset + np.log(norm), 1.0 / norm


@njit(cache=True, nogil=True, error_model="numpy")
def floored_log(h, floor, offset, out):
    """out = log(max(h, floor)) + offset, elementwise over (N,) arrays; floor: a positive
    normal double. Vectorised (`hjsolve.vexp.log`), several times faster than numpy's."""
    for i in range(h.shape[0]):
        out[i] = log(max(h[i], floor)) + offset


@njit(cache=True)
def _lagrange4(x, w, dw):
    """Weights (4,) and derivative weights (4,) of cubic Lagrange interpolation at nodes 0..3."""
    x0, x1, x2, x3 = x, x - 1.0, x - 2.0, x - 3.0
    w[0] = -x1 * x2 * x3 / 6.0
    w[1] = x0 * x2 * x3 / 2.0
    w[2] = -x0 * x1 * x3 / 2.0
    w[3] = x0 * x1 * x2 / 6.0
    dw[0] = -(x2 * x3 + x1 * x3 + x1 * x2) / 6.0
    dw[1] = (x2 * x3 + x0 * x3 + x0 * x2) / 2.0
    dw[2] = -(x1 * x3 + x0 * x3 + x0 * x1) / 2.0
    dw[3] = (x1 * x2 + x0 * x2 + x0 * x1) / 6.0


@njit(cache=True, parallel=True)
def interpolate(levels, shape, level_ids, level_weights, points, value, grad):
    """Tensor cubic Lagrange interpolation of grid data, combined over time levels.

    levels : (L, N) grid data at L time levels, N = prod(shape) (C order); shape : (d,) int64.
    level_ids (m,) and level_weights (m,): value = Σ_l w_l f_{id_l}(x).
    points : (n, d) fractional node indices (clamped to the grid). Writes value (n,) and the
    gradient in index units grad (n, d). Error O(Δz⁴) for the value, O(Δz³) for the gradient.
    """
    n, d = points.shape
    m = level_ids.shape[0]
    strides = np.empty(d, dtype=np.int64)
    s = 1
    for k in range(d - 1, -1, -1):
        strides[k] = s
        s *= shape[k]
    combos = 4 ** d
    for r in prange(n):
        base = np.empty(d, dtype=np.int64)
        w = np.empty((d, 4))
        dw = np.empty((d, 4))
        for k in range(d):
            x = min(max(points[r, k], 0.0), shape[k] - 1.0)
            i0 = min(max(int(np.floor(x)) - 1, 0), shape[k] - 4)
            base[k] = i0
            _lagrange4(x - i0, w[k], dw[k])
        val = 0.0
        g = np.zeros(d)
        for c in range(combos):
            idx = 0
            wt = 1.0
            cc = c
            jk = np.empty(d, dtype=np.int64)
            for k in range(d):
                j = cc % 4
                cc //= 4
                jk[k] = j
                idx += (base[k] + j) * strides[k]
                wt *= w[k, j]
            f = 0.0
            for l in range(m):
                f += level_weights[l] * levels[level_ids[l], idx]
            val += wt * f
            for k in range(d):
                gk = dw[k, jk[k]]
                for kk in range(d):
                    if kk != k:
                        gk *= w[kk, jk[kk]]
                g[k] += gk * f
        value[r] = val
        for k in range(d):
            grad[r, k] = g[k]


@njit(cache=True, parallel=True)
def euler_maruyama_update(y, drift, control, sigma_sqrt_dt, noise, dt):
    """y ← y + (b̄ + u*) dt + ς √dt ξ for every particle (rows of y (n, d)), in place (3.9)."""
    n, d = y.shape
    for r in prange(n):
        for k in range(d):
            y[r, k] += (drift[r, k] + control[r, k]) * dt + sigma_sqrt_dt * noise[r, k]
