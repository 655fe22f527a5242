"""The pretrained sampler (DESIGN §1, paper 000 (2.4)) on a time grid, in torch.

Sampler time t_k = k T/N, k = 0..N; forward time s = T - t. The drift is
b̄(t, y) = -(a'/a)(s) y + g2(s) s(s, y), ς(t)² = g2(s), differentiable in y (needed by the
relative-entropy objective and the lean adjoint). The score s(s, y) comes from
- `MixtureScore` for a `GaussianMixture`: the closed form of the diffused mixture, with
  C_k(s) = a(s)² Σ_k + var(s) I (see `hjsolve.mixture`),
      s(s, y) = Σ_k π_k(y) (-C_k^{-1} (y - a(s) m_k)),  π_k ∝ w_k N(y; a(s) m_k, C_k),
  its per-time coefficients precomputed in numpy (float64) and stored as torch tensors;
- `PythonScore` for ``pretrained.kind = "python"``: the user's numpy score, made differentiable
  by `NumpyScore`.
"""
import math

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from ..errors import NotApplicableError
from ..mixture import GaussianMixture
from ..pretrained import PythonScore as PythonScoreModel
from ..score_derivatives import directional_derivative, score_rows

#: p_pre samples (and Euler steps) that estimate E|X|² for a python score model's input scaling.
MOMENT_SAMPLES, MOMENT_STEPS, MOMENT_SEED = 2000, 200, 0


def per_time(values, s):
    """(m,) float array of a schedule quantity at the forward times s (m,); the schedules return a
    scalar where the quantity is constant in s."""
    return np.asarray(values, dtype=float) * np.ones_like(s)


class TorchSampler:
    """The pretrained sampler's coefficients at arbitrary sampler times, as torch tensors.

    Parameters
    ----------
    problem : `hjsolve.problem.Problem` with a continuous SDE and a Gaussian-mixture or python model.
    dtype : torch dtype of every tensor.
    """

    def __init__(self, problem, dtype=torch.float32, device="cpu"):
        if problem.is_discrete:
            raise NotApplicableError("neural: sde.kind = 'ddpm' is discrete; use method 'pift'")
        pre = problem.pretrained
        if isinstance(pre, GaussianMixture):
            self.score_model = MixtureScore
            means2 = pre.means**2 + np.diagonal(pre.covs, axis1=1, axis2=2)
            self.data_m2 = float(np.mean(np.sum(pre.weights[:, None] * means2, axis=0)))
        elif isinstance(pre, PythonScoreModel):
            self.score_model = PythonScore
            x = pre.sample(MOMENT_SAMPLES, np.random.default_rng(MOMENT_SEED), steps=MOMENT_STEPS)
            self.data_m2 = float(np.mean(x**2))  # of p_pre: p_data is unknown
        else:
            raise NotApplicableError("neural: needs pretrained.kind = 'gaussian_mixture' or 'python' "
                                     "(or 'diffusers', solved in latent space)")
        self.problem = problem
        self.sde = problem.sde
        self.T = float(self.sde.T)
        self.dimension = problem.dimension
        self.dtype = dtype
        self.device = torch.device(device)

    def tensor(self, values):
        """``values`` as a tensor of the sampler's dtype and device."""
        return torch.as_tensor(np.asarray(values, dtype=float), dtype=self.dtype, device=self.device)

    def grid(self, times):
        """`GridCoefficients` of the Euler grid ``times`` (N+1,): coefficients at t_0..t_N-1."""
        return GridCoefficients(self, np.asarray(times, dtype=float))

    def sigma2(self, times):
        """(m,) ς(t)² = g2(T - t) as a numpy array."""
        return np.asarray(self.sde.sampler_sigma2(np.asarray(times, dtype=float)), dtype=float)

    def score_at(self, t, y):
        """(n, d) pretrained score s(T - t, y) at per-row sampler times t (n,) (tensors)."""
        model, index, _ = self.rows(t)
        return model(index, y)

    def rows(self, t):
        """(score model at the distinct forward times of t, (n,) index of each row's time)."""
        times, index = np.unique(t.detach().cpu().numpy().astype(float), return_inverse=True)
        return self.score_model(self, self.T - times), torch.as_tensor(index.ravel(), device=self.device), times

    def transported_gradient(self, t, y, score, gradient):
        """(n, d) ∇_y r_eff(x̂(t, y)) = ∇x̂ᵀ ∇r_eff(x̂) at per-row sampler times t (n,), with Tweedie's
        posterior mean x̂ = E[X_0 | X_s = y] = (y + var(s) s(s, y))/a(s), s = T - t, and
        ∇x̂ = (I + var(s) ∇s)/a(s) (symmetric: ∇s is a Hessian of log p_s).

        ``score`` (n, d) = s(s, y); ``gradient``: x (n, d) -> ∇r_eff(x). The first-order
        expansion of log h = log E[exp r_eff(X_0) | X_s = y] about x̂: exact at t = T, where it is
        ∇r_eff(y), and as sharp across thin modes as ∇log h itself.
        """
        model, index, times = self.rows(t)
        s = self.T - times
        a = self.tensor(per_time(self.sde.a(s), s))[index, None]
        var = self.tensor(per_time(self.sde.var(s), s))[index, None]
        v = gradient((y + var * score) / a)
        return (v + var * model.hessian_vector(index, y, v)) / a

    def input_scale(self, times):
        """(m,) typical |y| per coordinate of Q_t: sqrt(a(s)² E|X_0|²/d + var(s)), s = T - t."""
        s = self.T - np.asarray(times, dtype=float)
        return np.sqrt(self.sde.a(s) ** 2 * self.data_m2 + self.sde.var(s))


class MixtureScore:
    """Score of a diffused `GaussianMixture` at forward times s (m,) (module docstring).

    Call with ``j`` (an int or a (n,) long tensor of indices into s) and y (n, d).
    """

    def __init__(self, sampler, s):
        sde, pre = sampler.sde, sampler.problem.pretrained
        a = per_time(sde.a(s), s)
        var = per_time(sde.var(s), s)
        covs = a[:, None, None, None] ** 2 * pre.covs[None] + var[:, None, None, None] * np.eye(pre.dimension)
        chols = np.linalg.cholesky(covs)  # (m, K, d, d)
        inv = np.linalg.inv(covs)
        self.log_weights = sampler.tensor(np.log(pre.weights))  # (K,)
        self.means = sampler.tensor(a[:, None, None] * pre.means[None])  # (m, K, d)
        self.cov_invs = sampler.tensor(0.5 * (inv + np.swapaxes(inv, -1, -2)))  # (m, K, d, d)
        self.log_norm = sampler.tensor(-np.log(np.diagonal(chols, axis1=-2, axis2=-1)).sum(-1)
                                       - 0.5 * pre.dimension * math.log(2 * math.pi))  # (m, K)

    def _components(self, j, y):
        """(responsibilities π (n, K), component scores c_k = -C_k⁻¹(y - a m_k) (n, K, d), C_k⁻¹)."""
        diff = y[:, None, :] - self.means[j].reshape(-1, *self.means.shape[1:])  # (n, K, d)
        cov_invs = self.cov_invs[j].reshape(-1, *self.cov_invs.shape[1:]).expand(y.shape[0], -1, -1, -1)
        comp = -torch.einsum("nkij,nkj->nki", cov_invs, diff)
        log_pdf = self.log_weights + self.log_norm[j].reshape(-1, self.log_norm.shape[-1]) + 0.5 * (comp * diff).sum(-1)
        return torch.softmax(log_pdf, dim=1), comp, cov_invs

    def __call__(self, j, y):
        resp, comp, _ = self._components(j, y)
        return torch.einsum("nk,nki->ni", resp, comp)

    def hessian_vector(self, j, y, v):
        """(n, d) ∇s(y) v = Σ_k π_k (c_k (c_k·v) - C_k⁻¹ v) - s (s·v), in closed form."""
        resp, comp, cov_invs = self._components(j, y)
        score = torch.einsum("nk,nki->ni", resp, comp)
        second = comp * (comp * v[:, None, :]).sum(-1, keepdim=True) - torch.einsum("nkij,nj->nki", cov_invs, v)
        return torch.einsum("nk,nki->ni", resp, second) - score * (score * v).sum(-1, keepdim=True)


class PythonScore:
    """A user score model (`hjsolve.pretrained.PythonScore`) at forward times s (m,), in torch."""

    def __init__(self, sampler, s):
        self.function = sampler.problem.pretrained.score_at_time
        self.s = np.asarray(s, dtype=float)

    def __call__(self, j, y):
        return NumpyScore.apply(y, self._rows(j, y), self.function)

    def _rows(self, j, y):
        return np.broadcast_to(self.s[np.asarray(j.cpu() if torch.is_tensor(j) else j)], (y.shape[0],))

    def hessian_vector(self, j, y, v):
        """(n, d) ∇s(y) v by central differences in float64 (`directional_derivative`); a constant
        in the torch graph (no second derivatives of a numpy score)."""
        as_numpy = lambda x: x.detach().cpu().double().numpy()
        jv = directional_derivative(self.function, self._rows(j, y), as_numpy(y), as_numpy(v))
        return torch.as_tensor(jv, dtype=y.dtype, device=y.device)


class NumpyScore(torch.autograd.Function):
    """A numpy score s(s, y) as a differentiable torch function of y.

    The score is the gradient of log p_s, so its Jacobian ∇s is the (symmetric) Hessian of
    log p_s and the vector–Jacobian product is a directional derivative: vᵀ∇s = ∇s v =
    |v| ∂_e s (`directional_derivative`).
    """

    @staticmethod
    def forward(ctx, y, s_rows, function):
        x = y.detach().cpu().double().numpy()
        ctx.save_for_backward(y)
        ctx.s_rows, ctx.function = s_rows, function
        return torch.as_tensor(score_rows(function, s_rows, x), dtype=y.dtype, device=y.device)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        jv = directional_derivative(ctx.function, ctx.s_rows, y.detach().cpu().double().numpy(),
                                    grad.detach().cpu().double().numpy())
        return torch.as_tensor(jv, dtype=grad.dtype, device=grad.device), None, None


class GridCoefficients:
    """Coefficients on an Euler grid t_0 < ... < t_N at the left ends t_j, j = 0..N-1."""

    def __init__(self, sampler, grid):
        sde = sampler.sde
        self.T_end = float(grid[-1])
        self.times = times = grid[:-1]
        s = sampler.T - times
        self.score = sampler.score_model(sampler, s)
        self.sigma2_np = per_time(sde.g2(s), s)
        self.rate = sampler.tensor(per_time(sde.log_a_rate(s), s))  # (m,) a'/a
        self.sigma2 = sampler.tensor(self.sigma2_np)  # (m,)
        self.sigma = torch.sqrt(self.sigma2)
        self.scale = sampler.tensor(sampler.input_scale(times))  # (m,)

    def drift(self, j, y, score=None):
        """(n, d) pretrained drift b̄(t_j, y) = -(a'/a)(s) y + g2(s) s(s, y), s = T - t_j
        (``score``: s(s, y) if already computed)."""
        rate = self.rate[j].reshape(-1, 1)
        score = self.score(j, y) if score is None else score
        return -rate * y + self.sigma2[j].reshape(-1, 1) * score
