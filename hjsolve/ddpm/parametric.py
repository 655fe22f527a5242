"""Parametric PI-FT (paper 002, Section 4.1): u_t(x) = φ(x) K_t, any dimension.

States: ``n_states`` particles of the pretrained chain from X_0 ~ N(0, I), X_t at step t
(fixed seed). Critic: V_t is a quadratic fitted by least squares (exact for the LQ problem;
a quadratic approximation otherwise), so E over W is exact: E ∇V_{t+1}(z + σW) = ∇V_{t+1}(z).
Backward in t, from K⁰ = the least-squares fit of s_t:

    target_i = s_t(x_i) + b_t/(2 w_t c_t) ∇V_{t+1}(a_t x_i + b_t φ(x_i) K^m),
    K^{m+1} = K^m + λ (argmin_K Σ_i |φ(x_i) K - target_i|² - K^m)      (λ = 1 unless relaxed),

then V_t(x_i) = -w_t c_t |u - s_t|² + E V_{t+1}(a_t x_i + b_t u + σW) refitted. The records are
those of `functional` with root-mean-square norms over the states.
"""
import numpy as np

from ..errors import HJSolveError
from .features import QuadraticValue, least_squares
from .functional import NOISE_FLOOR, relaxation


def pretrained_states(chain, n, seed):
    """(N+1, n, d) states of the pretrained chain (u = s) from X_0 ~ N(0, I)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, chain.dimension))
    states = [x]
    for t in range(chain.steps):
        x = chain.step(t, x, chain.score(t, x), rng.standard_normal(x.shape))
        states.append(x)
    return np.stack(states)


def _rms(v):
    return float(np.sqrt(np.mean(np.sum(v**2, axis=1))))


def run_parametric(chain, features, n_states, seed, tol, max_iter, relax):
    """Dict with ``K`` (N, F, d), ``values`` (list of N+1 `QuadraticValue`) and ``records``."""
    problem, N = chain.problem, chain.steps
    states = pretrained_states(chain, n_states, seed)
    values = [None] * (N + 1)
    values[N] = QuadraticValue.fit(states[N], problem.reward(states[N]))
    gains = []
    records = []
    for t in range(N - 1, -1, -1):
        x = states[t]
        phi = features(x)
        fit = least_squares(phi)
        score = chain.score(t, x)
        nxt = values[t + 1]
        wc, gain = chain.w[t] * chain.c[t], chain.gain(t)
        lipschitz = nxt.lipschitz
        bound = chain.contraction_bound(t, lipschitz)
        ok = bound < 1.0
        lam = relaxation(bound, relax)
        K = fit(score)
        changes, grads = [], []
        for _ in range(max_iter):
            u = np.einsum("nf,fd->nd", phi, K)
            target = score + gain * nxt.gradient(chain.a[t] * x + chain.b[t] * u)
            grads.append(2.0 * wc * _rms(target - u))
            K_new = K + lam * (fit(target) - K)
            changes.append(_rms(np.einsum("nf,fd->nd", phi, K_new - K)))
            K = K_new
            scale = max(1.0, _rms(np.einsum("nf,fd->nd", phi, K)))
            if not np.isfinite(changes[-1]) or (len(changes) > 3 and changes[-1] > 1e6 * max(changes[0], 1e-300)):
                raise HJSolveError(f"pift: the parametric improvement diverged at step {t} (factor bound {bound:.3g}); "
                                   f"increase finetune.alpha above {chain.weight_needed(t, lipschitz):.3g}")
            if changes[-1] <= tol * scale:
                break
        u = np.einsum("nf,fd->nd", phi, K)
        v = -wc * np.sum((u - score) ** 2, axis=1) + nxt.noisy_mean(chain.a[t] * x + chain.b[t] * u, chain.sigma[t])
        values[t] = QuadraticValue.fit(x, v)
        gains.append(K)
        ratios = [c1 / c0 for c0, c1 in zip(changes, changes[1:]) if c1 > NOISE_FLOOR * scale]
        records.append({
            "t": t, "iterations": len(changes), "control_change": changes, "gradient_norm": grads,
            "contraction": ratios, "factor_measured": ratios[-1] if ratios else None,
            "lipschitz": lipschitz, "factor_bound": bound, "condition_ok": bool(ok), "relaxation": lam,
            "weight_needed": chain.weight_needed(t, lipschitz), "converged": bool(changes[-1] <= tol * scale),
        })
    return {"K": np.stack(gains[::-1]), "values": values, "records": records[::-1]}
