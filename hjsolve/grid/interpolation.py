"""Reading grid data at any (t, y): cubic Lagrange in z (tensor, 4^d nodes) and in time."""
import numpy as np

from ..threads import use_threads
from .kernels import interpolate


def time_weights(time_grid, t):
    """(ids (m,), weights (m,)) of cubic Lagrange interpolation in t over the saved levels."""
    L = time_grid.levels
    x = time_grid.sigma(t) * time_grid.nt / time_grid.save_every
    x = min(max(x, 0.0), L - 1.0)
    if L < 4:
        j = min(int(np.floor(x)), L - 2)
        f = x - j
        return np.array([j, j + 1], dtype=np.int64), np.array([1.0 - f, f])
    j0 = min(max(int(np.floor(x)) - 1, 0), L - 4)
    u = x - j0
    nodes = np.arange(4.0)
    w = np.array([np.prod([(u - nodes[m]) / (nodes[k] - nodes[m]) for m in range(4) if m != k]) for k in range(4)])
    return np.arange(j0, j0 + 4, dtype=np.int64), w


def evaluate(levels, domain, time_grid, t, y):
    """Interpolated grid data (n,) and its y-gradient (n, d) at time t, points y (n, d)."""
    y = np.ascontiguousarray(y, dtype=float)
    ids, w = time_weights(time_grid, t)
    idx = np.ascontiguousarray(domain.to_index(t, y))
    value = np.empty(len(y))
    grad = np.empty_like(y)
    with use_threads(len(y) * 4**domain.d):
        interpolate(levels, np.array(domain.shape, dtype=np.int64), ids, w, idx, value, grad)
    return value, grad / (domain.c(t) * domain.dz)
