"""The pretrained sampler (2.4) as particles: orchestration of the kernels on a time grid.

`PretrainedSampler(problem, n_steps, integrator)` runs paths from sampler time t0 to T, either
from fixed points or from p_noise, and the adjoint sweeps back along them. With a
Gaussian-mixture pretrained model the score and its Jacobian are evaluated inside the Numba
kernels; any other pretrained model (or ``use_kernel=False``) goes through batched numpy step
loops calling ``problem.score``, with the Jacobian-vector products ∇s v of the adjoint by
central differences (`hjsolve.score_derivatives`). Same schedule, same noise streams: both
give the same paths, and the same λ_0 and β up to the differences' O(step²) error, for a mixture.
"""
from functools import partial

import numpy as np

from ..mixture import GaussianMixture
from ..score_derivatives import jacobian_vector
from . import kernels
from .rng import normals_block
from .schedule import build_schedule, mixture_arrays, steps_from


class PretrainedSampler:
    """Paths of (2.4) at the resolution of ``n_steps`` uniform steps on [0, T]."""

    def __init__(self, problem, n_steps=200, integrator="exponential", use_kernel=True):
        self.problem = problem
        self.sde = problem.sde
        self.T = float(self.sde.T)
        self.n_steps = int(n_steps)
        self.integrator = integrator
        self.d = problem.dimension
        self.kernel = bool(use_kernel) and isinstance(problem.pretrained, GaussianMixture)
        self._cache = {}

    def grid(self, t0):
        """(Schedule, MixtureArrays or None) for [t0, T], cached."""
        n = steps_from(float(t0), self.T, self.n_steps)
        key = (round(float(t0), 12), n)
        if key not in self._cache:
            sched = build_schedule(self.sde, float(t0), n, self.integrator)
            mix = mixture_arrays(self.sde, self.problem.pretrained, sched.s) if self.kernel else None
            self._cache[key] = (sched, mix)
        return self._cache[key]

    def run(self, key, n, t0=0.0, y0=None, first=0, store=False):
        """Simulate ``n`` paths from t0 (Y_{t0} = y0 (n, d), or p_noise when y0 is None).

        Returns (Y_{t0} (n, d), Y_T (n, d), path (n, N+1, d) or None, Schedule).
        """
        sched, mix = self.grid(t0)
        from_noise = y0 is None
        y0 = np.zeros((n, self.d)) if from_noise else np.ascontiguousarray(np.broadcast_to(y0, (n, self.d)), dtype=float)
        noise_sd = float(np.sqrt(self.sde.noise_var()))
        if self.kernel:
            start, end, path = kernels.simulate(key, first, y0, from_noise, noise_sd, sched.lin, sched.coef, sched.sd,
                                                mix.means, mix.prec, mix.prec_iso, mix.logc, mix.iso, store)
            return start, end, (path if store else None), sched
        return self._run_callback(key, n, y0, from_noise, noise_sd, first, store, sched)

    def _run_callback(self, key, n, y0, from_noise, noise_sd, first, store, sched):
        """Numpy step loop with ``problem.score`` (any pretrained model)."""
        y = noise_sd * normals_block(key, first, n, self.d, 0) if from_noise else y0.copy()
        start = y.copy()
        path = [y.copy()] if store else None
        for k in range(sched.n_steps):
            z = normals_block(key, first, n, self.d, self.d * (k + 1))
            y = sched.lin[k] * y + sched.coef[k] * self.problem.score(sched.s[k], y) + sched.sd[k] * z
            if store:
                path.append(y.copy())
        return start, y, (np.stack(path, axis=1) if store else None), sched

    def adjoint(self, key, path, lam_T, n_bismut, t0, first=0):
        """(λ_0, β) of `kernels.adjoint` for stored paths (n, N+1, d) started at t0, lam_T (n, d)."""
        sched, mix = self.grid(t0)
        lam_T = np.ascontiguousarray(lam_T, dtype=float)
        if self.kernel:
            return kernels.adjoint(key, first, path, lam_T, int(n_bismut), sched.lin, sched.coef, sched.sd,
                                   mix.means, mix.prec, mix.prec_iso, mix.logc, mix.iso)
        return self._adjoint_callback(key, path, lam_T, int(n_bismut), first, sched)

    def _adjoint_callback(self, key, path, lam_T, n_bismut, first, sched):
        """`kernels.adjoint` as a numpy step loop: pathwise (3.29)–(3.30) λ_k = J_kᵀ λ_{k+1} from
        λ_N = lam_T, and the Bismut–Elworthy–Li weight by the Horner recursion
        v ← J_kᵀ (v + ξ_k/sd_k) for k < n_bismut, β = v/n_bismut, with the noise ξ_k of
        `_run_callback`.

        path (n, N+1, d), lam_T (n, d); returns (λ_0 (n, d), β (n, d)).
        """
        n, _, d = path.shape
        lam, v = lam_T.copy(), np.zeros((n, d))
        for k in range(sched.n_steps - 1, -1, -1):
            if k < n_bismut:
                v += normals_block(key, first, n, d, d * (k + 1)) / sched.sd[k]
                both = self._step_transpose(sched, k, path[:, k], np.concatenate([lam, v]))
                lam, v = both[:n], both[n:]
            else:
                lam = self._step_transpose(sched, k, path[:, k], lam)
        return lam, v / max(n_bismut, 1)

    def _step_transpose(self, sched, k, y, w):
        """(m, d) J_kᵀ w = lin_k w + coef_k ∇s(s_k, y) w (∇s is symmetric) for vectors w (m, d) at
        the points y (n, d), m a multiple of n (stacked vector sets share one score call)."""
        points = np.tile(y, (len(w) // len(y), 1))
        return sched.lin[k] * w + sched.coef[k] * jacobian_vector(partial(self.problem.score, sched.s[k]), points, w)

    def controlled_step(self, key, k, y, u, sched, first=0):
        """One step of the controlled sampler (3.9) on ``sched``: returns Y_{k+1} (n, d)."""
        if self.kernel:
            mix = mixture_arrays(self.sde, self.problem.pretrained, sched.s[k:k + 1])
            return kernels.controlled_step(key, first, k, np.ascontiguousarray(y), np.ascontiguousarray(u),
                                           sched.lin[k], sched.coef[k], sched.ccoef[k], sched.sd[k], mix.means[0],
                                           mix.prec[0], mix.prec_iso[0], mix.logc[0], mix.iso)
        z = normals_block(key, first, len(y), self.d, self.d * (k + 1))
        return (sched.lin[k] * y + sched.coef[k] * self.problem.score(sched.s[k], y) + sched.ccoef[k] * u
                + sched.sd[k] * z)
