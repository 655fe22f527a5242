"""Score model of the two-moons case (`cases/two_moons_2d.toml`): s(s, x) for the VP schedule.

The model is a Gaussian mixture fitted by EM to the 1000 points of ``data/two_moons.csv``
(weights in ``data/two_moons_gmm.npz``, made by ``data/fit_two_moons.py``); its score at
forward time s is the exact score of the diffused mixture Σ w_k N(a m_k, a² Σ_k + var I) with
the VP schedule β_min = 0.1, β_max = 20, T = 1 it was built for.
"""
from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "two_moons_gmm.npz"
BETA_MIN, BETA_MAX, T = 0.1, 20.0, 1.0

_params = np.load(WEIGHTS)
_w, _m, _c = _params["weights"], _params["means"], _params["covs"]


def _schedule(s):
    B = BETA_MIN * s + (BETA_MAX - BETA_MIN) * s**2 / (2.0 * T)
    return np.exp(-0.5 * B), -np.expm1(-B)


def score(s, x):
    """(n, 2) ∇ log p_s(x) for x (n, 2) at forward time s."""
    a, var = _schedule(float(s))
    cov = a * a * _c + var * np.eye(2)  # (K, 2, 2)
    inv = np.linalg.inv(cov)
    logdet = np.linalg.slogdet(cov)[1]
    dx = x[:, 0:1] - a * _m[None, :, 0]  # (n, K): 2 x 2 algebra by hand, much faster than einsum
    dy = x[:, 1:2] - a * _m[None, :, 1]
    px = inv[:, 0, 0] * dx + inv[:, 0, 1] * dy
    py = inv[:, 1, 0] * dx + inv[:, 1, 1] * dy
    log_p = np.log(_w) - 0.5 * (dx * px + dy * py + logdet)
    resp = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    resp /= resp.sum(axis=1, keepdims=True)
    return -np.stack([(resp * px).sum(axis=1), (resp * py).sum(axis=1)], axis=1)
