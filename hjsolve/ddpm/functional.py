"""Functional PI-FT (paper 002, Algorithm 1) on a tensor grid, d ≤ 2.

Backward in t = N-1..0, with V_{t+1} and ∇V_{t+1} known on the grid:

* smoothing: V̂(y) = E V_{t+1}(y + σ_k W) and Ĝ(y) = E ∇V_{t+1}(y + σ_k W) at the grid nodes by
  1-D Gauss–Hermite rules swept along each axis and the interpolation of `grid` (once per step);
* improvement (002, (35)), from u⁰ = s_t: u^{m+1}_t(x) = s_t(x) + b_t/(2 w_t c_t) · Ĝ(a_t x + b_t u^m_t(x)),
  Ĝ interpolated; stop when max_x |u^{m+1} - u^m| ≤ tol · max(1, max_x |u|);
* evaluation (002, (36)): V_t(x) = -w_t c_t |u_t - s_t|² + V̂(a_t x + b_t u_t),
  ∇V_t by second-order differences along each axis.

For the linear–quadratic problem V̂ is quadratic and Ĝ affine, so every step is exact.

The improvement map has Lipschitz factor ρ_t = b_t² Lip(∇V_{t+1})/(2 w_t c_t) = β_k Lip/w_t,
so it contracts when 2 w_t c_t > b_t² Lip(∇V_{t+1}) (the strong concavity of Theorem 2.8).
Lip is the largest |eigenvalue| of the finite-difference Hessian over the grid. Where the
condition fails the steps are reported; with ``relax`` the update is damped where ρ_t ≥ ½,
u ← u + λ(T u - u), λ = 2/(2 + ρ_t), which contracts whenever V_{t+1} is concave.
Per step the record holds the control change |u^{m+1} - u^m|_∞, the gradient norm of the
one-step objective 2 w_t c_t |T u^m - u^m|_∞, and the measured factors of successive changes.
"""
import numpy as np

from ..errors import HJSolveError
from ..progress import progress
from ..quadrature import gauss_hermite

#: A change below this multiple of machine precision × scale is rounding, not a contraction.
NOISE_FLOOR = 1e3 * np.finfo(float).eps
#: Relaxed updates start at this factor bound (undamped iterations near ρ = 1 crawl).
RELAX_ABOVE = 0.5


def relaxation(bound, relax):
    """Step λ of u ← u + λ(T u - u): 1 (the paper's update) unless ``relax`` and ρ_t ≥ ½, then
    2/(2 + ρ_t), which maps a Jacobian spectrum in [-ρ_t, 0] (concave V_{t+1}) into
    [-ρ_t/(2+ρ_t), ρ_t/(2+ρ_t)]: a contraction for every ρ_t."""
    return 2.0 / (2.0 + bound) if (relax and bound >= RELAX_ABOVE) else 1.0


def smooth(grid, values, field, sigma, n_nodes):
    """(V̂ (M,), Ĝ (M, d)): E V(x + σW), E field(x + σW) at the grid nodes x, W ~ N(0, I_d).

    The Gaussian expectation factorises over axes, so it is taken one axis at a time with a
    1-D Gauss–Hermite rule of ``n_nodes`` points (cost M·n·d, not M·n^d); each sweep's field
    is the gradient of its value, which the interpolation of `grid` uses.
    """
    nodes, log_w = gauss_hermite(n_nodes, 1)
    weights = np.exp(log_w)
    x = grid.points
    M, d = x.shape
    for axis in range(d):
        pts = np.repeat(x[:, None, :], len(weights), axis=1)
        pts[:, :, axis] += sigma * nodes[None, :, 0]
        v, f = grid.interpolate(values, field, pts.reshape(-1, d))
        values, field = v.reshape(M, -1) @ weights, np.einsum("mqd,q->md", f.reshape(M, -1, d), weights)
    return values, field


def improve(chain, grid, t, score, value_next, grad_next, smooth_value, smooth_grad, tol, max_iter, relax,
            callback=None):
    """Inner loop at step t: (u (M, d), record dict); ``callback(t, m, u)`` sees every iterate u^m.

    value_next, grad_next: V_{t+1}, ∇V_{t+1} on the grid (for Lip); smooth_value, smooth_grad: V̂, Ĝ.
    """
    x = grid.points
    wc, gain = chain.w[t] * chain.c[t], chain.gain(t)
    lipschitz = grid.hessian_norm(grad_next)
    bound = chain.contraction_bound(t, lipschitz)
    ok = bound < 1.0
    lam = relaxation(bound, relax)
    u = score.copy()
    changes, grads = [], []
    for m in range(max_iter):
        if callback is not None:
            callback(t, m, u)
        _, e_grad = grid.interpolate(smooth_value, smooth_grad, chain.a[t] * x + chain.b[t] * u)
        step = score + gain * e_grad - u
        size = float(np.sqrt(np.sum(step**2, axis=1)).max())
        grads.append(2.0 * wc * size)
        u = u + lam * step
        changes.append(lam * size)
        scale = max(1.0, float(np.abs(u).max()))
        if not np.isfinite(size) or (len(changes) > 3 and changes[-1] > 1e6 * max(changes[0], 1e-300)):
            raise HJSolveError(f"pift: the improvement iteration diverged at step {t} (factor bound {bound:.3g}); "
                               f"increase finetune.alpha above {chain.weight_needed(t, lipschitz):.3g}")
        if changes[-1] <= tol * scale:
            break
    ratios = [c1 / c0 for c0, c1 in zip(changes, changes[1:]) if c1 > NOISE_FLOOR * scale]
    record = {
        "t": t, "iterations": len(changes), "control_change": changes, "gradient_norm": grads,
        "contraction": ratios, "factor_measured": ratios[-1] if ratios else None,
        "lipschitz": lipschitz, "factor_bound": bound, "condition_ok": bool(ok), "relaxation": lam,
        "weight_needed": chain.weight_needed(t, lipschitz), "converged": bool(changes[-1] <= tol * scale),
    }
    return u, record


def run_functional(chain, grid, gh_nodes, tol, max_iter, relax, callback=None):
    """Algorithm 1 on ``grid``: dict with V (N+1, M), G (N+1, M, d), U (N, M, d) and ``records``.

    ``callback(t, m, u)`` (optional) is called with every inner iterate u^m_t (M, d).
    """
    problem, N, d = chain.problem, chain.steps, chain.dimension
    x = grid.points
    V = np.empty((N + 1, len(x)))
    G = np.empty((N + 1, len(x), d))
    U = np.empty((N, len(x), d))
    V[N] = problem.reward(x)
    G[N] = problem.reward.gradient(x)
    records = []
    for t in progress(range(N - 1, -1, -1), desc="pift", total=N):
        score = chain.score(t, x)
        smooth_value, smooth_grad = smooth(grid, V[t + 1], G[t + 1], chain.sigma[t], gh_nodes)
        u, record = improve(chain, grid, t, score, V[t + 1], G[t + 1], smooth_value, smooth_grad, tol, max_iter,
                            relax, callback)
        e_value, _ = grid.interpolate(smooth_value, smooth_grad, chain.a[t] * x + chain.b[t] * u)
        V[t] = -chain.w[t] * chain.c[t] * np.sum((u - score) ** 2, axis=1) + e_value
        G[t] = grid.gradient(V[t])
        U[t] = u
        records.append(record)
    if not (np.all(np.isfinite(V)) and np.all(np.isfinite(U))):
        raise HJSolveError("pift: the value or the control is not finite on the grid")
    return {"V": V, "G": G, "U": U, "records": records[::-1]}
