"""The pretrained sampler (2.4) as particles: orchestration of the kernels on a time grid.

`PretrainedSampler(problem, n_steps, integrator)` runs paths from sampler time t0 to T, either
from fixed points or from p_noise. With a Gaussian-mixture pretrained model the score is
evaluated inside the Numba kernels; any other pretrained model goes through a batched numpy
step loop calling ``problem.score`` (same schedule, same noise streams, so both give the
same paths for a mixture).
"""
import numpy as np

from ..errors import NotApplicableError
from ..mixture import GaussianMixture
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
        """(λ_0, β) of `kernels.adjoint` for stored paths started at t0."""
        if not self.kernel:
            raise NotApplicableError("particle: gradients need the score's Jacobian (gaussian_mixture pretrained only)")
        sched, mix = self.grid(t0)
        return kernels.adjoint(key, first, path, np.ascontiguousarray(lam_T), int(n_bismut), sched.lin, sched.coef,
                               sched.sd, mix.means, mix.prec, mix.prec_iso, mix.logc, mix.iso)

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
