"""Gauss–Hermite rules for expectations under Gaussians.

Two rules for E[f(Y)], Y ~ N(c, var I) in R^d:

* `gauss_hermite`: the tensor rule, q = n^d points, for d ≤ 3.
* `reduced_isotropic_rule`: for f that depends on y only through Uᵀy (U: d×p orthonormal)
  and |y|², in any d. Write y - c = sqrt(var)(U η + e ζ + sqrt(ρ) f) with e ⊥ U carrying the
  part of c outside span U, f ⊥ (U, e), η, ζ standard normal and ρ ~ χ²_{d-p-1}; η, ζ use
  Gauss–Hermite and ρ/2 ~ Gamma((d-p-1)/2) uses generalised Gauss–Laguerre.
"""
from functools import lru_cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import gammaln, roots_genlaguerre

MAX_TENSOR_DIMENSION = 3


@lru_cache(maxsize=32)
def gauss_hermite(n, d):
    """Tensor Gauss–Hermite rule for N(0, I_d), cached and read-only.

    Returns nodes (n^d, d) and log weights (n^d,) whose exponentials sum to 1.
    """
    x, w = hermegauss(n)
    logw = np.log(w) - 0.5 * np.log(2.0 * np.pi)
    grids = np.meshgrid(*([x] * d), indexing="ij")
    nodes = np.stack([g.reshape(-1) for g in grids], axis=1)
    wgrids = np.meshgrid(*([logw] * d), indexing="ij")
    log_weights = sum(g.reshape(-1) for g in wgrids)
    nodes.flags.writeable = False
    log_weights.flags.writeable = False
    return nodes, log_weights


def orthonormal_basis(vectors, d, tol=1e-10):
    """Orthonormal basis (d, p) of the span of the rows of ``vectors`` (m, d); p may be 0."""
    vectors = np.asarray(vectors, dtype=float).reshape(-1, d)
    if len(vectors) == 0:
        return np.zeros((d, 0))
    u, s, _ = np.linalg.svd(vectors.T, full_matrices=False)
    keep = s > tol * max(1.0, s.max())
    return u[:, keep]


def _complement(basis, d):
    """Orthonormal basis (d, d-p) of the orthogonal complement of ``basis`` (d, p)."""
    q, _ = np.linalg.qr(np.concatenate([basis, np.eye(d)], axis=1))
    return q[:, basis.shape[1]:d]


def reduced_isotropic_rule(centers, var, basis, n_nodes, n_radial):
    """Points (n, q, d) and log weights (q,) for E[f(Y)], Y ~ N(c_i, var I), see module doc.

    Needs d ≥ p + 2 where p = basis.shape[1].
    """
    centers = np.atleast_2d(centers)
    n, d = centers.shape
    p = basis.shape[1]
    k = d - p - 1
    if k < 1:
        raise ValueError("reduced rule needs d >= p + 2")
    comp = _complement(basis, d)  # (d, d-p)
    outside = centers @ comp  # (n, d-p) coordinates of c outside span U
    norms = np.linalg.norm(outside, axis=1)
    e_coef = np.zeros_like(outside)
    e_coef[:, 0] = 1.0
    big = norms > 1e-12 * (1.0 + np.linalg.norm(centers, axis=1))
    e_coef[big] = outside[big] / norms[big, None]
    # f: the unit vector of the complement least aligned with e, made orthogonal to e.
    pick = np.argmin(np.abs(e_coef), axis=1)
    f_coef = np.zeros_like(e_coef)
    f_coef[np.arange(n), pick] = 1.0
    f_coef -= np.sum(f_coef * e_coef, axis=1, keepdims=True) * e_coef
    f_coef /= np.linalg.norm(f_coef, axis=1, keepdims=True)
    e_vec, f_vec = e_coef @ comp.T, f_coef @ comp.T  # (n, d)

    gh_nodes, gh_logw = gauss_hermite(n_nodes, p + 1)  # (g, p+1)
    u, w = roots_genlaguerre(n_radial, 0.5 * k - 1.0)
    rad = np.sqrt(2.0 * u)  # |ξ_⊥| at the Laguerre nodes
    rad_logw = np.log(w) - gammaln(0.5 * k)
    scale = np.sqrt(var)
    in_span = gh_nodes[:, :p] @ basis.T  # (g, d)
    points = (
        centers[:, None, None, :]
        + scale * in_span[None, :, None, :]
        + scale * gh_nodes[None, :, None, p, None] * e_vec[:, None, None, :]
        + scale * rad[None, None, :, None] * f_vec[:, None, None, :]
    )
    log_weights = (gh_logw[:, None] + rad_logw[None, :]).reshape(-1)
    return points.reshape(n, -1, d), log_weights


def tensor_rule(centers, var, n_nodes):
    """Points (n, q, d) and log weights (q,) of the tensor rule for N(c_i, var I)."""
    centers = np.atleast_2d(centers)
    nodes, log_weights = gauss_hermite(n_nodes, centers.shape[1])
    return centers[:, None, :] + np.sqrt(var) * nodes[None, :, :], log_weights
