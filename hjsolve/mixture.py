"""Gaussian-mixture pretrained model: exact forward marginals, scores and posteriors.

The data law is p_data = Σ_k w_k N(m_k, Σ_k) in R^d. Under X_s = a X_0 + sqrt(var) ε,
the forward marginal is Σ_k w_k N(a m_k, C_k) with C_k = a² Σ_k + var I, and the
posterior of X_0 given X_s = y is again a mixture (used by the exact solver):

    π_k(y) ∝ w_k N(y; a m_k, C_k),   X_0 | k, y ~ N(μ_k(y), S_k),
    μ_k(y) = m_k + J_k (y - a m_k),  J_k = a Σ_k C_k^{-1},  S_k = Σ_k - a J_k Σ_k.

Σ_k and C_k commute, so J_k is symmetric.
"""
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

LOG_2PI = float(np.log(2.0 * np.pi))


def gaussian_log_pdf(x, mean, cov_inv, cov_logdet):
    """log N(x; mean, cov) for x (n, d), one component; returns (n,)."""
    diff = x - mean
    d = x.shape[-1]
    maha = np.einsum("ni,ij,nj->n", diff, cov_inv, diff)
    return -0.5 * (maha + cov_logdet + d * LOG_2PI)


@dataclass(frozen=True)
class MarginalMixture:
    """The mixture Σ_k w_k N(a m_k, C_k) at one forward time; arrays over K components."""

    a: float
    var: float
    log_weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, d): a m_k
    covs: np.ndarray  # (K, d, d): C_k
    cov_invs: np.ndarray  # (K, d, d)
    cov_logdets: np.ndarray  # (K,)

    def component_log_pdf(self, y):
        """(n, K) array of log w_k + log N(y; a m_k, C_k)."""
        cols = [
            self.log_weights[k] + gaussian_log_pdf(y, self.means[k], self.cov_invs[k], self.cov_logdets[k])
            for k in range(len(self.log_weights))
        ]
        return np.stack(cols, axis=1)

    def log_pdf(self, y):
        """(n,) log density."""
        return logsumexp(self.component_log_pdf(y), axis=1)

    def responsibilities(self, y):
        """(n, K) log π_k(y), normalised over k."""
        comp = self.component_log_pdf(y)
        return comp - logsumexp(comp, axis=1, keepdims=True)

    def component_scores(self, y):
        """(n, K, d) array -C_k^{-1} (y - a m_k)."""
        diff = y[:, None, :] - self.means[None, :, :]
        return -np.einsum("kij,nkj->nki", self.cov_invs, diff)

    def score(self, y):
        """(n, d) score ∇ log p(y) = Σ_k π_k(y) (-C_k^{-1}(y - a m_k))."""
        pi = np.exp(self.responsibilities(y))
        return np.einsum("nk,nki->ni", pi, self.component_scores(y))


class GaussianMixture:
    """p_data = Σ_k w_k N(m_k, Σ_k).

    Parameters
    ----------
    weights : (K,) positive, normalised here.
    means : (K, d)
    covs : (K, d, d) symmetric positive definite.
    """

    kind = "gaussian_mixture"

    def __init__(self, weights, means, covs):
        self.weights = np.asarray(weights, dtype=float) / np.sum(weights)
        self.means = np.atleast_2d(np.asarray(means, dtype=float))
        self.covs = np.asarray(covs, dtype=float)
        self.K, self.dimension = self.means.shape
        self.chols = np.linalg.cholesky(self.covs)
        self.cov_eigvals, self.cov_eigvecs = np.linalg.eigh(self.covs)  # (K, d), (K, d, d)
        eye = np.eye(self.dimension)
        self.isotropic_vars = None
        diag = np.array([c[0, 0] for c in self.covs])
        if all(np.allclose(c, v * eye, rtol=0, atol=1e-14 * max(v, 1.0)) for c, v in zip(self.covs, diag)):
            self.isotropic_vars = diag

    @property
    def max_std(self):
        """Largest component standard deviation (sqrt of the largest covariance eigenvalue)."""
        return float(np.sqrt(max(np.linalg.eigvalsh(c).max() for c in self.covs)))

    def marginal(self, a, var):
        """Forward marginal at scale a and variance var, as a `MarginalMixture`."""
        eye = np.eye(self.dimension)
        covs = a * a * self.covs + var * eye
        chols = np.linalg.cholesky(covs)
        logdets = 2.0 * np.log(np.diagonal(chols, axis1=1, axis2=2)).sum(axis=1)
        invs = np.linalg.inv(covs)
        return MarginalMixture(
            a=float(a), var=float(var), log_weights=np.log(self.weights), means=a * self.means,
            covs=covs, cov_invs=0.5 * (invs + np.swapaxes(invs, 1, 2)), cov_logdets=logdets,
        )

    def marginal_precisions(self, a, var):
        """(means a m_k (..., K, d), precisions C_k⁻¹ (..., K, d, d), log w_k - ½ log det C_k
        (..., K)) of the forward marginal at scale a and variance var (scalars, or arrays of one
        shape ...): what a score needs, from the eigendecomposition of Σ_k (C_k has its
        eigenvectors), without `marginal`'s factorisations."""
        a = np.asarray(a, dtype=float)[..., None, None]
        eig = a * a * self.cov_eigvals + np.asarray(var, dtype=float)[..., None, None]
        vecs = self.cov_eigvecs
        precisions = (vecs / eig[..., None, :]) @ np.swapaxes(vecs, -1, -2)
        return a * self.means, precisions, np.log(self.weights) - 0.5 * np.log(eig).sum(axis=-1)

    def score(self, x, a, var):
        """(n, d) exact score of the forward marginal at (a, var)."""
        return self.marginal(a, var).score(np.atleast_2d(x))

    def log_pdf(self, x):
        """(n,) log p_data(x)."""
        return self.marginal(1.0, 0.0).log_pdf(np.atleast_2d(x))

    def posterior(self, a, var):
        """Gain J_k (K, d, d) and covariance S_k (K, d, d) of X_0 | X_s, k (module docstring)."""
        marg = self.marginal(a, var)
        gains = a * np.einsum("kij,kjl->kil", self.covs, marg.cov_invs)
        gains = 0.5 * (gains + np.swapaxes(gains, 1, 2))
        post_covs = self.covs - a * np.einsum("kij,kjl->kil", gains, self.covs)
        post_covs = 0.5 * (post_covs + np.swapaxes(post_covs, 1, 2))
        return marg, gains, post_covs

    def posterior_means(self, y, a, gains):
        """(n, K, d) posterior means μ_k(y) = m_k + J_k (y - a m_k)."""
        diff = y[:, None, :] - a * self.means[None, :, :]
        return self.means[None, :, :] + np.einsum("kij,nkj->nki", gains, diff)

    def sample(self, n, rng):
        """(n, d) samples of p_data."""
        comp = rng.choice(self.K, size=n, p=self.weights)
        z = rng.standard_normal((n, self.dimension))
        return self.means[comp] + np.einsum("nij,nj->ni", self.chols[comp], z)

    def to_dict(self):
        return {"weights": self.weights.tolist(), "means": self.means.tolist(), "covs": self.covs.tolist()}
