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
        self.axis_nodes = domain.z  # (n,)
        self.shape = (2, domain.d, rate_length(domain.shape))  # (up, down) rows of every axis
        pre = problem.pretrained
        self.mixture = pre if isinstance(pre, GaussianMixture) else None
        #: diagonal covariances: the mixture weights factor over the axes (`mixture_rates`)
        self.separable = self.mixture is not None and not np.any(pre.covs * (1.0 - np.eye(domain.d)))
        #: rates of a NumPy-callback score kept from the backward pass for the forward pass (same
        #: times): t -> slot of one block within ``cache_bytes``, allocated on first use. A
        #: mixture's rates are recomputed: the fused kernel costs less than writing and reading
        #: back fresh memory (measured at 241² x 200 and 481² x 400 on 2 cores).
        slot_bytes = 8 * int(np.prod(self.shape))
        self.slots = 0 if self.mixture is not None else int(cache_bytes) // slot_bytes
        self.block, self.cache, self.free = None, {}, list(range(self.slots))
        self.scratch = None
        self.stacked, self.prepared = None, {}

    def prepare(self, times):
        """Evaluate the mixture kernel's per-time arguments at all ``times`` (S,) at once
        (vectorised) into `stacked`, so that `rates` at those times spends no Python time on
        them; nothing to do for a python score."""
        if self.mixture is not None:
            times = np.asarray(times, dtype=float)
            self.stacked = self._arguments_at(times)
            self.prepared = {t: i for i, t in enumerate(times.tolist())}

    def _arguments_at(self, times):
        """(μ, c, dμ/dt, dc/dt (S, d), f, g2 (S,), means (S, K, d), precisions (S, K, d, d),
        log_norms (S, K), diffusions (S, d)): the arguments of `mixture_rates` at the times
        ``times`` (S,), stacked."""
        a, var, f, g2 = (np.asarray(v, dtype=float)[:, None] for v in self.domain.schedule(times))
        mu, c, dmu, dc = self.domain.frame(None, (a, var, f, g2))
        means, precisions, log_norms = self.mixture.marginal_precisions(a[:, 0], var[:, 0])
        diffusion = 0.5 * g2 / c**2  # ς(t)² = g2(T - t)
        return mu, c, dmu, dc, f[:, 0].copy(), g2[:, 0].copy(), means, precisions, log_norms, diffusion

    def _mixture_arguments(self, t):
        """The arguments of `mixture_rates` at t: prepared, or evaluated now."""
        if t in self.prepared:
            i, stacked = self.prepared[t], self.stacked
        else:
            i, stacked = 0, self._arguments_at(np.array([t], dtype=float))
        return tuple(v[i] for v in stacked)

    def drift(self, t, z=None):
        """(N, d) z-drift B at the nodes (or at the z-points ``z`` (N, d)) and the per-axis
        diffusions a (d,)."""
        dom = self.domain
        z = dom.nodes() if z is None else z
        mu, c, dmu, dc = dom.frame(t)
        y = mu + c * z
        b = self.problem.sampler_drift(t, y)
        if not np.all(np.isfinite(b)):
            from ..errors import HJSolveError
            raise HJSolveError(f"grid: the pretrained drift is not finite at t = {t:g}")
        B = (b - dmu - dc * z) / c
        a = 0.5 * float(self.problem.sde.sampler_sigma2(t)) / c**2
        return B, a

    def rates(self, t, threads=None):
        """(up, down), each (d, `rate_length`): row k holds the fitted jump rates along axis k at
        time t (layout in `hjsolve.grid.rates`).

        A Gaussian-mixture score is evaluated inside the fused Numba kernel (`mixture_rates`),
        anything else through the NumPy callback `Problem.sampler_drift` (`drift_rates`).
        Rates kept for the forward pass (while cache slots are free) are returned, and their
        slot freed, on the second request for the same t; others are written to one scratch
        pair. Either is valid until the next call. ``threads``: as in `mixture_rates` (None:
        Numba's current count).
        """
        if t in self.cache:
            slot = self.cache.pop(t)
            self.free.append(slot)
            return self.block[slot]
        out = self._destination(t)
        up, down = out
        dom = self.domain
        threads = threads or numba.get_num_threads()
        if self.mixture is not None:
            mixture_rates(*self._mixture_arguments(t), self.axis_nodes, dom.dz, up, down, self.separable,
                          threads)  # finite: max-shifted weights
        else:
            B, a = self.drift(t)
            drift_rates(np.ascontiguousarray(B), a, dom.dz, dom.n, up, down, threads)
        return out

    def _destination(self, t):
        """(up, down) to write the rates at t into: a free cache slot (kept for t) or the scratch."""
        if self.free:
            if self.block is None:
                self.block = np.zeros((self.slots, *self.shape))  # padded lanes stay 0
            slot = self.free.pop()
            self.cache[t] = slot
            return self.block[slot]
        if self.scratch is None:
            self.scratch = np.zeros(self.shape)
        return self.scratch
