"""The pretrained sampler's generator in the z-coordinates of `hjsolve.grid.domain`.

With y = μ(t) + c(t) ∘ z the sampler (2.4) dY = b̄ dt + ς dB becomes
dZ_i = B_i dt + (ς/c_i) dB_i with B_i = (b̄_i(t, μ + c z) - μ_i' - c_i' z_i)/c_i, so
h̃(t, z) = h(t, μ + c z) solves ∂_t h̃ + Σ_i [a_i ∂_i² h̃ + B_i ∂_i h̃] = 0, a_i = ς²/(2 c_i²)
(the Feynman–Kac equation (3.24) of paper 000), and node masses evolve with the transpose.
"""
import numba
import numpy as np

from ..mixture import GaussianMixture
from .rates import drift_rates, mixture_rates, rate_length


class Generator:
    """Per-axis fitted jump rates of the sampler's generator on the grid at any time t."""

    def __init__(self, problem, domain, cache_bytes=0):
        self.problem = problem
        self.domain = domain
        self.z = domain.nodes()  # (N, d)
        #: rates kept from the backward pass for the forward pass (same times), within a budget
        self.cache, self.cache_left = {}, int(cache_bytes)
        pre = problem.pretrained
        self.scratch = None
        self.mixture = pre if isinstance(pre, GaussianMixture) else None

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
        """(up, down), each (d, `rate_length`): row k holds the fitted jump rates along axis k at
        time t (layout in `hjsolve.grid.rates`).

        A Gaussian-mixture score is evaluated inside the fused Numba kernel (`mixture_rates`),
        anything else through the NumPy callback `Problem.sampler_drift` (`drift_rates`).
        Rates kept for the forward pass (within ``cache_bytes``) are returned, and dropped, on
        the second request for the same t; others are written to one scratch pair, valid until
        the next call.
        """
        if t in self.cache:
            return self.cache.pop(t)
        dom = self.domain
        size = (dom.d, rate_length(dom.shape))
        keep = self.cache_left >= 2 * 8 * size[0] * size[1]
        if keep:
            out = (np.zeros(size), np.zeros(size))  # padded lanes stay 0
        else:
            if self.scratch is None:
                self.scratch = (np.zeros(size), np.zeros(size))
            out = self.scratch
        up, down = out
        c = dom.c(t)
        a = 0.5 * float(self.problem.sde.sampler_sigma2(t)) / c**2
        if self.mixture is not None:
            s = float(self.problem.sde.T) - float(t)
            sde = self.problem.sde
            marg = self.mixture.marginal(float(sde.a(s)), float(sde.var(s)))
            dmu, dc = dom.rates(t)
            mixture_rates(dom.mu(t), c, dmu, dc, float(sde.log_a_rate(s)), float(sde.g2(s)), marg.means,
                          np.ascontiguousarray(marg.cov_invs), marg.log_weights - 0.5 * marg.cov_logdets, a,
                          dom.z, dom.dz, up, down, numba.get_num_threads())  # finite: max-shifted weights
        else:
            B, a = self.drift(t)
            drift_rates(np.ascontiguousarray(B), a, dom.dz, dom.n, up, down, numba.get_num_threads())
        if keep:
            self.cache[t] = out
            self.cache_left -= 2 * 8 * size[0] * size[1]
        return out
