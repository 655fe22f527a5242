"""Make the two-moons data set and fit the bundled pretrained score model to it.

Run from the repository root: ``python data/fit_two_moons.py``. Writes
``data/two_moons.csv`` (1000 points, seed 0) and ``data/two_moons_gmm.npz``: a 24-component
full-covariance Gaussian mixture fitted by maximum likelihood (EM, k-means++ start, seed 0).
The score model (``cases/two_moons_score.py``) is the exact score of the fitted mixture's
forward marginal under the VP schedule (β_min = 0.1, β_max = 20, T = 1): the diffused mixture
Σ w_k N(a m_k, a² Σ_k + var I). The data law of the case is the empirical law of the points;
the grid solver treats the model as a black-box score.
"""
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

HERE = Path(__file__).resolve().parent
N_POINTS, NOISE, COMPONENTS, ITERATIONS, REG = 1000, 0.08, 24, 300, 1e-4


def two_moons(n, noise, rng):
    """(n, 2) the classic two interleaving half circles plus Gaussian noise."""
    half = n // 2
    a = np.pi * rng.random(half)
    b = np.pi * rng.random(n - half)
    upper = np.stack([np.cos(a), np.sin(a)], axis=1)
    lower = np.stack([1.0 - np.cos(b), 0.5 - np.sin(b)], axis=1)
    x = np.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    return x - np.array([0.5, 0.25])


def log_resp(x, w, m, c):
    inv = np.linalg.inv(c)
    logdet = np.linalg.slogdet(c)[1]
    diff = x[:, None, :] - m[None]
    maha = np.einsum("nki,kij,nkj->nk", diff, inv, diff)
    return np.log(w) - 0.5 * (maha + logdet + 2 * np.log(2 * np.pi))


def fit(x, k, iterations, rng):
    """EM for a full-covariance mixture; k-means++ initial means."""
    n, d = x.shape
    means = [x[rng.integers(n)]]
    for _ in range(k - 1):
        dist = np.min(((x[:, None] - np.array(means)[None]) ** 2).sum(-1), axis=1)
        means.append(x[rng.choice(n, p=dist / dist.sum())])
    m = np.array(means)
    c = np.tile(np.cov(x.T) / k, (k, 1, 1))
    w = np.full(k, 1.0 / k)
    for _ in range(iterations):
        lr = log_resp(x, w, m, c)
        r = np.exp(lr - logsumexp(lr, axis=1, keepdims=True))
        nk = r.sum(0) + 1e-12
        w = nk / n
        m = (r.T @ x) / nk[:, None]
        diff = x[:, None, :] - m[None]
        c = np.einsum("nk,nki,nkj->kij", r, diff, diff) / nk[:, None, None] + REG * np.eye(d)
    loglik = float(logsumexp(log_resp(x, w, m, c), axis=1).mean())
    return w, m, c, loglik


def main():
    rng = np.random.default_rng(0)
    x = two_moons(N_POINTS, NOISE, rng)
    np.savetxt(HERE / "two_moons.csv", x, delimiter=",", fmt="%.6f", header="x0,x1", comments="")
    w, m, c, loglik = fit(x, COMPONENTS, ITERATIONS, rng)
    np.savez(HERE / "two_moons_gmm.npz", weights=w, means=m, covs=c, mean_log_likelihood=loglik)
    print(f"fitted {COMPONENTS} components, mean log-likelihood {loglik:.4f}")


if __name__ == "__main__":
    main()
