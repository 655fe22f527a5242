"""Reward moments under Gaussians: the inner expectations of the exact solver.

For X ~ N(μ, S) (μ: (n, K, d), S: (K, d, d), one covariance per mixture component)
`compute` returns any of

    log_m1    log E[exp(r_eff(X))]                        (n, K)
    log_m2    log E[exp(2 r_eff(X))]                      (n, K)
    r         E[r(X)]                                     (n, K)
    tilt_r    Ẽ[r(X)],   Ẽ the expectation tilted by exp(r_eff)   (n, K)
    tilt_reff Ẽ[r_eff(X)]                                 (n, K)
    tilt_grad Ẽ[∇r_eff(X)]                                (n, K, d)

`ClosedFormMoments` covers quadratic and linear rewards under KL in any dimension (the tilt of a
Gaussian by exp(quadratic) is Gaussian); `QuadratureMoments` uses tensor Gauss–Hermite in d ≤ 3.
"""
import numpy as np
from scipy.special import logsumexp

from .errors import NotApplicableError
from .quadrature import MAX_TENSOR_DIMENSION, gauss_hermite


def psd_sqrt(S):
    """Symmetric square roots (K, d, d) of PSD matrices (K, d, d); tolerates S = 0."""
    vals, vecs = np.linalg.eigh(S)
    return np.einsum("kij,kj,klj->kil", vecs, np.sqrt(np.clip(vals, 0.0, None)), vecs)


class ClosedFormMoments:
    """Closed forms for r = -scale/2 |x-z|² or r = w·x + o, with r_eff = r/α."""

    def __init__(self, reward, alpha):
        self.reward = reward
        self.alpha = float(alpha)

    def tilted_gaussian(self, mu, S, power=1.0):
        """Mean (n, K, d) and covariance (K, d, d) of N(μ, S) tilted by exp(power * r_eff)."""
        rw = self.reward
        d = S.shape[-1]
        if rw.kind == "linear":
            omega = power * rw.weight / self.alpha
            return mu + np.einsum("kij,j->ki", S, omega)[None], S
        lam = power * rw.scale / self.alpha
        A_inv = np.linalg.inv(np.eye(d) + lam * S)
        mean = rw.center + np.einsum("kij,nkj->nki", A_inv, mu - rw.center)
        cov = np.einsum("kij,kjl->kil", A_inv, S)
        return mean, 0.5 * (cov + np.swapaxes(cov, 1, 2))

    def _log_mgf(self, mu, S, power):
        rw = self.reward
        d = S.shape[-1]
        if rw.kind == "linear":
            omega = power * rw.weight / self.alpha
            quad = np.einsum("i,kij,j->k", omega, S, omega)
            return mu @ omega + power * rw.offset / self.alpha + 0.5 * quad[None, :]
        lam = power * rw.scale / self.alpha
        A = np.eye(d) + lam * S
        _, logdet = np.linalg.slogdet(A)
        delta = mu - rw.center
        maha = np.einsum("nki,kij,nkj->nk", delta, np.linalg.inv(A), delta)
        return -0.5 * logdet[None, :] - 0.5 * lam * maha

    def _mean_reward(self, mu, S):
        rw = self.reward
        if rw.kind == "linear":
            return mu @ rw.weight + rw.offset
        trace = np.trace(S, axis1=1, axis2=2)
        return -0.5 * rw.scale * (np.sum((mu - rw.center) ** 2, axis=-1) + trace[None, :])

    def compute(self, mu, S, want):
        out = {}
        if "log_m1" in want:
            out["log_m1"] = self._log_mgf(mu, S, 1.0)
        if "log_m2" in want:
            out["log_m2"] = self._log_mgf(mu, S, 2.0)
        if "r" in want:
            out["r"] = self._mean_reward(mu, S)
        if want & {"tilt_r", "tilt_reff", "tilt_grad"}:
            t_mu, t_S = self.tilted_gaussian(mu, S)
            tilt_r = self._mean_reward(t_mu, t_S)
            out["tilt_r"] = tilt_r
            out["tilt_reff"] = tilt_r / self.alpha
            if self.reward.kind == "linear":
                out["tilt_grad"] = np.broadcast_to(self.reward.weight / self.alpha, t_mu.shape)
            else:
                out["tilt_grad"] = -self.reward.scale / self.alpha * (t_mu - self.reward.center)
        return out


class QuadratureMoments:
    """Tensor Gauss–Hermite with ``nodes`` points per axis, d ≤ 3, any reward and divergence."""

    def __init__(self, problem, nodes):
        d = problem.dimension
        if d > MAX_TENSOR_DIMENSION:
            raise NotApplicableError(
                f"exact: a {problem.reward.kind} reward under {problem.divergence.name} needs Gauss–Hermite "
                f"quadrature, limited to d <= {MAX_TENSOR_DIMENSION} (this case has d = {d}); closed forms "
                "exist only for quadratic and linear rewards under kl"
            )
        self.problem = problem
        self.nodes, self.log_weights = gauss_hermite(nodes, d)

    def compute(self, mu, S, want, chunk_points=2_000_000):
        n, K, d = mu.shape
        q = len(self.log_weights)
        roots = psd_sqrt(S)
        offsets = np.einsum("kij,qj->kqi", roots, self.nodes)  # (K, q, d)
        step = max(1, chunk_points // (K * q))
        parts = [self._chunk(mu[i:i + step], offsets, want) for i in range(0, n, step)]
        return {key: np.concatenate([p[key] for p in parts], axis=0) for key in parts[0]}

    def _chunk(self, mu, offsets, want):
        n, K, d = mu.shape
        X = (mu[:, :, None, :] + offsets[None]).reshape(-1, d)
        r = self.problem.reward(X)
        r_eff = self.problem.divergence.effective(r)
        shape = (n, K, -1)
        r, r_eff = r.reshape(shape), r_eff.reshape(shape)
        lw = self.log_weights
        out = {}
        log_m1 = logsumexp(lw + r_eff, axis=-1)
        if "log_m1" in want:
            out["log_m1"] = log_m1
        if "log_m2" in want:
            out["log_m2"] = logsumexp(lw + 2.0 * r_eff, axis=-1)
        if "r" in want:
            out["r"] = np.sum(np.exp(lw) * r, axis=-1)
        tilt = np.exp(lw + r_eff - log_m1[..., None])
        if "tilt_r" in want:
            out["tilt_r"] = np.sum(tilt * r, axis=-1)
        if "tilt_reff" in want:
            out["tilt_reff"] = np.sum(tilt * r_eff, axis=-1)
        if "tilt_grad" in want:
            grad_r = self.problem.reward.gradient(X)
            grad = self.problem.divergence.effective_gradient(r.reshape(-1), grad_r).reshape(n, K, -1, d)
            out["tilt_grad"] = np.einsum("nkq,nkqi->nki", tilt, grad)
        return out


def make_moments(problem, nodes):
    """Closed forms where they exist (quadratic/linear under kl), else quadrature."""
    if problem.divergence.name == "kl" and problem.reward.kind in ("quadratic", "linear"):
        return ClosedFormMoments(problem.reward, problem.alpha)
    return QuadratureMoments(problem, nodes)
