"""Jacobian-vector products of a black-box numpy score by central differences (no torch).

The score s(s, x) = ∇log p_s(x) has a symmetric Jacobian ∇s (the Hessian of log p_s), so
∇s v = vᵀ∇s is a directional derivative, |v| ∂_e s with e = v/|v|: two score evaluations per
row whatever d. Used where a score has no closed-form Jacobian (``pretrained.kind =
"python"``): the particle solver's adjoint sweeps and the neural solver's backward pass.
"""
import numpy as np

#: Relative step of the central differences: h = FD_STEP (1 + |x|_∞) per row.
FD_STEP = 1e-5


def score_rows(function, s_rows, x):
    """(n, d) function(s, x[rows]) for each distinct forward time s of ``s_rows`` (n,)."""
    out = np.empty_like(x)
    times, inverse = np.unique(s_rows, return_inverse=True)
    for k, s in enumerate(times):
        rows = inverse.ravel() == k
        out[rows] = function(float(s), x[rows])
    return out


def jacobian_vector(score, x, v):
    """(n, d) ∇s(x) v for a score ``score``: (m, d) -> (m, d) at rows x, v (n, d): central
    differences with step FD_STEP (1 + |x|_∞) per row, one call on 2n rows, error O(step²)."""
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    e = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)
    h = FD_STEP * (1.0 + np.abs(x).max(axis=1, keepdims=True))
    both = score(np.concatenate([x + h * e, x - h * e]))
    n = len(x)
    return (both[:n] - both[n:]) / (2 * h) * norm


def directional_derivative(function, s_rows, x, v):
    """(n, d) ∇s v for the score ``function(s, x)`` at rows x, v (n, d) with per-row forward
    times ``s_rows`` (n,) (`jacobian_vector` through `score_rows`)."""
    s_both = np.concatenate([s_rows, s_rows])
    return jacobian_vector(lambda points: score_rows(function, s_both, points), x, v)
