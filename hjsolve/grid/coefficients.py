"""The pretrained sampler's generator in the z-coordinates of `hjsolve.grid.domain`.

With y = μ(t) + c(t) ∘ z the sampler (2.4) dY = b̄ dt + ς dB becomes
dZ_i = B_i dt + (ς/c_i) dB_i with B_i = (b̄_i(t, μ + c z) - μ_i' - c_i' z_i)/c_i, so
h̃(t, z) = h(t, μ + c z) solves ∂_t h̃ + Σ_i [a_i ∂_i² h̃ + B_i ∂_i h̃] = 0, a_i = ς²/(2 c_i²)
(the Feynman–Kac equation (3.24) of paper 000), and node masses evolve with the transpose.
"""
import numpy as np

from .kernels import fitted_rates, use_threads


class Generator:
    """Per-axis fitted jump rates of the sampler's generator on the grid at any time t."""

    def __init__(self, problem, domain, cache_bytes=0):
        self.problem = problem
        self.domain = domain
        self.z = domain.nodes()  # (N, d)
        #: drifts kept from the backward pass for the forward pass (same times), within a budget
        self.cache, self.cache_left = {}, int(cache_bytes)

    def drift(self, t, z=None):
        """(N, d) z-drift B at the nodes (or at the z-points ``z`` (N, d)) and the per-axis
        diffusions a (d,)."""
        dom = self.domain
        z = self.z if z is None else z
        c = dom.c(t)
        dmu, dc = dom.rates(t)
        y = dom.mu(t) + c * z
        b = self.problem.sampler_drift(t, y)
        if not np.all(np.isfinite(b)):
            from ..errors import HJSolveError
            raise HJSolveError(f"grid: the pretrained drift is not finite at t = {t:g}")
        B = (b - dmu - dc * z) / c
        a = 0.5 * float(self.problem.sde.sampler_sigma2(t)) / c**2
        return B, a

    def rates(self, t):
        """[(up, down)] per axis, each of the grid's shape, at time t."""
        dom = self.domain
        if t in self.cache:
            B, a = self.cache.pop(t)
        else:
            B, a = self.drift(t)
            if self.cache_left >= B.nbytes:
                self.cache[t] = (B, a)
                self.cache_left -= B.nbytes
        use_threads(len(B))
        out = []
        for k in range(dom.d):
            drift = np.ascontiguousarray(B[:, k]).reshape(axis_view_shape(dom.shape, k))
            up = np.empty_like(drift)
            down = np.empty_like(drift)
            fitted_rates(drift, float(a[k]), dom.dz, up, down)
            out.append((up, down))
        return out


def axis_view_shape(shape, axis):
    """(P, n_axis, Q) view of a C-ordered grid array for a sweep along ``axis``."""
    P = int(np.prod(shape[:axis], dtype=np.int64))
    Q = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return (P, shape[axis], Q)
