"""The pretrained sampler (DESIGN §1, paper 000 (2.4)) on a time grid, in torch.

Sampler time t_k = k T/N, k = 0..N. For a `GaussianMixture` the score of the forward
marginal at s = T - t is, with C_k(s) = a(s)² Σ_k + var(s) I (see `hjsolve.mixture`),

    s(s, y) = Σ_k π_k(y) (-C_k^{-1} (y - a(s) m_k)),  π_k ∝ w_k N(y; a(s) m_k, C_k),

and the drift is b̄(t, y) = -(a'/a)(s) y + g2(s) s(s, y), ς(t)² = g2(s). All per-time
coefficients are precomputed in numpy (float64) and stored as torch tensors, so the drift is
differentiable in y (needed by the relative-entropy objective and the lean adjoint).
"""
import math

import numpy as np
import torch

from ..errors import NotApplicableError
from ..mixture import GaussianMixture


class TorchSampler:
    """The pretrained sampler's coefficients at arbitrary sampler times, as torch tensors.

    Parameters
    ----------
    problem : `hjsolve.problem.Problem` with a continuous SDE and a Gaussian-mixture model.
    dtype : torch dtype of every tensor.
    """

    def __init__(self, problem, dtype=torch.float32, device="cpu"):
        if problem.is_discrete:
            raise NotApplicableError("neural: sde.kind = 'ddpm' is discrete; use method 'pift'")
        if not isinstance(problem.pretrained, GaussianMixture):
            raise NotApplicableError("neural: needs pretrained.kind = 'gaussian_mixture'")
        self.problem = problem
        self.sde = problem.sde
        self.T = float(self.sde.T)
        self.dimension = problem.dimension
        self.dtype = dtype
        self.device = torch.device(device)
        pre = problem.pretrained
        # per-coordinate second moment of p_data, for the network's input scaling
        self.data_m2 = float(np.mean(np.sum(pre.weights[:, None] * (pre.means**2 + np.diagonal(pre.covs, axis1=1, axis2=2)), axis=0)))

    def grid(self, times):
        """`GridCoefficients` of the Euler grid ``times`` (N+1,): coefficients at t_0..t_{N-1}."""
        return GridCoefficients(self, np.asarray(times, dtype=float))

    def sigma2(self, times):
        """(m,) ς(t)² = g2(T - t) as a numpy array."""
        return np.asarray(self.sde.sampler_sigma2(np.asarray(times, dtype=float)), dtype=float)

    def input_scale(self, times):
        """(m,) typical |y| per coordinate of Q_t: sqrt(a(s)² E|X_0|²/d + var(s)), s = T - t."""
        s = self.T - np.asarray(times, dtype=float)
        return np.sqrt(self.sde.a(s) ** 2 * self.data_m2 + self.sde.var(s))


class GridCoefficients:
    """Coefficients on an Euler grid t_0 < ... < t_N at the left ends t_j, j = 0..N-1."""

    def __init__(self, sampler, grid):
        sde, pre = sampler.sde, sampler.problem.pretrained
        tt = lambda a: torch.as_tensor(np.asarray(a, dtype=float), dtype=sampler.dtype, device=sampler.device)
        self.T_end = float(grid[-1])
        self.times = times = grid[:-1]
        s = sampler.T - times
        a, var = np.asarray(sde.a(s), dtype=float) * np.ones_like(s), np.asarray(sde.var(s), dtype=float) * np.ones_like(s)
        eye = np.eye(pre.dimension)
        covs = a[:, None, None, None] ** 2 * pre.covs[None] + var[:, None, None, None] * eye  # (m, K, d, d)
        chols = np.linalg.cholesky(covs)
        inv = np.linalg.inv(covs)
        self.sigma2_np = np.asarray(sde.g2(s), dtype=float) * np.ones_like(s)
        self.log_weights = tt(np.log(pre.weights))  # (K,)
        self.means = tt(a[:, None, None] * pre.means[None])  # (m, K, d)
        self.cov_invs = tt(0.5 * (inv + np.swapaxes(inv, -1, -2)))  # (m, K, d, d)
        self.log_norm = tt(-np.log(np.diagonal(chols, axis1=-2, axis2=-1)).sum(-1)
                           - 0.5 * pre.dimension * math.log(2 * math.pi))  # (m, K)
        self.rate = tt(np.asarray(sde.log_a_rate(s), dtype=float) * np.ones_like(s))  # (m,) a'/a
        self.sigma2 = tt(self.sigma2_np)  # (m,)
        self.sigma = torch.sqrt(self.sigma2)
        self.scale = tt(sampler.input_scale(times))  # (m,)

    def score(self, j, y):
        """(n, d) score s(T - t_j, y) for y (n, d); ``j`` an int or a (n,) long tensor of indices."""
        diff = y[:, None, :] - self.means[j].reshape(-1, *self.means.shape[1:])  # (n, K, d)
        comp = -torch.einsum("nkij,nkj->nki", self.cov_invs[j].reshape(-1, *self.cov_invs.shape[1:]).expand(y.shape[0], -1, -1, -1), diff)
        log_pdf = self.log_weights + self.log_norm[j].reshape(-1, self.log_norm.shape[-1]) + 0.5 * (comp * diff).sum(-1)
        pi = torch.softmax(log_pdf, dim=1)
        return torch.einsum("nk,nki->ni", pi, comp)

    def drift(self, j, y):
        """(n, d) pretrained drift b̄(t_j, y) = -(a'/a)(s) y + g2(s) s(s, y), s = T - t_j."""
        rate = self.rate[j].reshape(-1, 1)
        return -rate * y + self.sigma2[j].reshape(-1, 1) * self.score(j, y)
