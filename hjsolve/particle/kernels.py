"""Numba kernels of the pretrained sampler with an exact Gaussian-mixture score.

Shapes: n particles, d dimensions, K components, N steps. Step arrays (lin, coef, sd: (N,))
come from `schedule.build_schedule`, mixture arrays (means (N, K, d), prec (N, K, d, d) or
prec_iso (N, K), logc (N, K)) from `schedule.mixture_arrays`. Every kernel is parallel over
blocks of `BLOCK` particles and draws its noise from `rng` streams, so results do not depend on
the number of threads. Inside a block, particle states are stored (d, BLOCK) and every loop
runs over the block's particles innermost, which LLVM vectorises.

Mixture score at one time (DESIGN §1): g_j = -C_j^{-1}(y - a m_j), π_j ∝ w_j N(y; a m_j, C_j),
s = Σ_j π_j g_j, and its Jacobian (symmetric, a Hessian of log p)
∇s = Σ_j π_j (-C_j^{-1}) + Σ_j π_j g_j g_jᵀ - s sᵀ.
"""
import numpy as np
from numba import njit, prange

from .rng import normals_fill, particle_base
from ..vexp import exp

BLOCK = 256


@njit(cache=True)
def _scratch(K, d):
    """Per-block buffers: pi (K, B), diff, g (d, B), top, total (B,), z (B,), rejected (B,)."""
    return (np.empty((K, BLOCK)), np.empty((d, BLOCK)), np.empty((d, BLOCK)), np.empty(BLOCK), np.empty(BLOCK),
            np.empty(BLOCK), np.empty(BLOCK, dtype=np.bool_))


@njit(cache=True, inline="always")
def _component(y, w, k, means, prec, prec_iso, iso, diff, g):
    """diff (d, B) = y - a m_k and g (d, B) = -C_k^{-1} diff for the columns i < w."""
    d = y.shape[0]
    for j in range(d):
        for i in range(w):
            diff[j, i] = y[j, i] - means[k, j]
    for j in range(d):
        for i in range(w):
            g[j, i] = -prec_iso[k] * diff[j, i] if iso else 0.0
        if not iso:
            for l in range(d):
                for i in range(w):
                    g[j, i] -= prec[k, j, l] * diff[l, i]


@njit(cache=True, inline="always")
def mixture_score_block(y, w, means, prec, prec_iso, logc, iso, s, pi, diff, g, top, total):
    """s (d, B) = score and pi (K, B) = responsibilities at the columns i < w of y (d, B)."""
    K = means.shape[0]
    d = y.shape[0]
    for i in range(w):
        top[i] = -np.inf
    for k in range(K):  # logits log w_k N(y; a m_k, C_k) up to a common constant
        for i in range(w):
            pi[k, i] = logc[k]
        if iso:
            for j in range(d):
                for i in range(w):
                    pi[k, i] -= 0.5 * prec_iso[k] * (y[j, i] - means[k, j]) ** 2
        else:
            _component(y, w, k, means, prec, prec_iso, iso, diff, g)
            for j in range(d):
                for i in range(w):
                    pi[k, i] += 0.5 * g[j, i] * diff[j, i]
        for i in range(w):
            top[i] = max(top[i], pi[k, i])
    for i in range(w):
        total[i] = 0.0
    for k in range(K):
        for i in range(w):
            pi[k, i] = exp(pi[k, i] - top[i])
            total[i] += pi[k, i]
    for j in range(d):
        for i in range(w):
            s[j, i] = 0.0
    for k in range(K):
        for i in range(w):
            pi[k, i] /= total[i]
        if iso:
            for j in range(d):
                for i in range(w):
                    s[j, i] += pi[k, i] * prec_iso[k] * (means[k, j] - y[j, i])
        else:
            _component(y, w, k, means, prec, prec_iso, iso, diff, g)
            for j in range(d):
                for i in range(w):
                    s[j, i] += pi[k, i] * g[j, i]


@njit(cache=True, inline="always")
def score_vjp_block(v, y, w, means, prec, prec_iso, iso, s, pi, diff, g, dot, out):
    """out (d, B) = ∇s v at the columns of y, v (d, B), after `mixture_score_block` gave s and pi."""
    K = means.shape[0]
    d = y.shape[0]
    for i in range(w):
        dot[i] = 0.0
    for j in range(d):
        for i in range(w):
            dot[i] += s[j, i] * v[j, i]
    for j in range(d):
        for i in range(w):
            out[j, i] = -s[j, i] * dot[i]
    for k in range(K):
        _component(y, w, k, means, prec, prec_iso, iso, diff, g)
        for i in range(w):
            dot[i] = 0.0
        for j in range(d):
            for i in range(w):
                dot[i] += g[j, i] * v[j, i]
        for j in range(d):
            for i in range(w):
                out[j, i] += pi[k, i] * (g[j, i] * dot[i] - (prec_iso[k] * v[j, i] if iso else 0.0))
            if not iso:
                for l in range(d):
                    for i in range(w):
                        out[j, i] -= pi[k, i] * prec[k, j, l] * v[l, i]


@njit(cache=True, inline="always")
def _load(rows, i0, w, block):
    """block (d, B)[:, :w] = rowsᵀ for rows i0 .. i0+w-1 of rows (n, d)."""
    for i in range(w):
        for j in range(rows.shape[1]):
            block[j, i] = rows[i0 + i, j]


@njit(cache=True, inline="always")
def _store(block, i0, w, rows):
    for i in range(w):
        for j in range(rows.shape[1]):
            rows[i0 + i, j] = block[j, i]


@njit(cache=True, parallel=True)
def score_batch(y, means, prec, prec_iso, logc, iso):
    """(n, d) mixture scores at the points y (n, d) for one time's arrays (K, d), (K, d, d), (K,), (K,)."""
    n, d = y.shape
    out = np.empty((n, d))
    for b in prange((n + BLOCK - 1) // BLOCK):
        i0 = b * BLOCK
        w = min(n, i0 + BLOCK) - i0
        pi, diff, g, top, total, _, _ = _scratch(means.shape[0], d)
        yb, s = np.empty((d, BLOCK)), np.empty((d, BLOCK))
        _load(y, i0, w, yb)
        mixture_score_block(yb, w, means, prec, prec_iso, logc, iso, s, pi, diff, g, top, total)
        _store(s, i0, w, out)
    return out


@njit(cache=True, parallel=True)
def score_vjp_batch(y, v, means, prec, prec_iso, logc, iso):
    """(n, d) products ∇s(y_i) v_i for y, v (n, d)."""
    n, d = y.shape
    out = np.empty((n, d))
    for b in prange((n + BLOCK - 1) // BLOCK):
        i0 = b * BLOCK
        w = min(n, i0 + BLOCK) - i0
        pi, diff, g, top, total, _, _ = _scratch(means.shape[0], d)
        yb, vb, s, ob = np.empty((d, BLOCK)), np.empty((d, BLOCK)), np.empty((d, BLOCK)), np.empty((d, BLOCK))
        _load(y, i0, w, yb)
        _load(v, i0, w, vb)
        mixture_score_block(yb, w, means, prec, prec_iso, logc, iso, s, pi, diff, g, top, total)
        score_vjp_block(vb, yb, w, means, prec, prec_iso, iso, s, pi, diff, g, top, ob)
        _store(ob, i0, w, out)
    return out


@njit(cache=True, inline="always")
def _bases(key, first, i0, w):
    """(B,) stream bases of particles first + i0 .. first + i0 + w - 1."""
    base = np.empty(BLOCK, dtype=np.uint64)
    for i in range(w):
        base[i] = particle_base(key, first + i0 + i)
    return base


@njit(cache=True, parallel=True)
def simulate(key, first, y0, from_noise, noise_sd, lin, coef, sd, means, prec, prec_iso, logc, iso, store):
    """Run the sampler over all N steps.

    y0 (n, d) start points (ignored where ``from_noise``: Y_0 = noise_sd · normals 0..d-1).
    Returns (Y_0 (n, d), Y_N (n, d), path) with path (n, N+1, d) if ``store`` else (1, 1, 1).
    """
    n, d = y0.shape
    N = lin.shape[0]
    start = np.empty((n, d))
    end = np.empty((n, d))
    path = np.empty((n, N + 1, d)) if store else np.empty((1, 1, 1))
    for b in prange((n + BLOCK - 1) // BLOCK):
        i0 = b * BLOCK
        w = min(n, i0 + BLOCK) - i0
        pi, diff, g, top, total, z, rejected = _scratch(means.shape[1], d)
        y, s = np.empty((d, BLOCK)), np.empty((d, BLOCK))
        base = _bases(key, first, i0, w)
        if from_noise:
            for j in range(d):
                normals_fill(base, j, w, z, rejected)
                for i in range(w):
                    y[j, i] = noise_sd * z[i]
        else:
            _load(y0, i0, w, y)
        _store(y, i0, w, start)
        if store:
            _store(y, i0, w, path[:, 0])
        for k in range(N):
            mixture_score_block(y, w, means[k], prec[k], prec_iso[k], logc[k], iso, s, pi, diff, g, top, total)
            for j in range(d):
                normals_fill(base, d * (k + 1) + j, w, z, rejected)
                for i in range(w):
                    y[j, i] = lin[k] * y[j, i] + coef[k] * s[j, i] + sd[k] * z[i]
            if store:
                _store(y, i0, w, path[:, k + 1])
        _store(y, i0, w, end)
    return start, end, path


@njit(cache=True, parallel=True)
def adjoint(key, first, path, lam_T, n_bismut, lin, coef, sd, means, prec, prec_iso, logc, iso):
    """Backward sweeps along stored paths (n, N+1, d) of `simulate` (started at fixed points).

    Pathwise (3.29)–(3.30), discrete: λ_N = lam_T (n, d), λ_k = J_kᵀ λ_{k+1} with
    J_k = lin_k I + coef_k ∇s(s_k, Y_k), so λ_0 = Z_Nᵀ lam_T.
    Bismut–Elworthy–Li, discrete: β = (1/L) Σ_{l<L} Z_{l+1}ᵀ ξ_l / sd_l (Horner backward),
    with L = n_bismut; E[f(Y_N) β] = ∇_y E[f(Y_N)] for any f (Gaussian integration by parts
    on each of the first L steps).
    Returns (λ_0 (n, d), β (n, d)).
    """
    n, N1, d = path.shape
    N = N1 - 1
    lam0 = np.empty((n, d))
    beta = np.empty((n, d))
    for b in prange((n + BLOCK - 1) // BLOCK):
        i0 = b * BLOCK
        w = min(n, i0 + BLOCK) - i0
        pi, diff, g, top, total, z, rejected = _scratch(means.shape[1], d)
        y, s, lam, v, tmp = (np.empty((d, BLOCK)), np.empty((d, BLOCK)), np.empty((d, BLOCK)),
                             np.zeros((d, BLOCK)), np.empty((d, BLOCK)))
        base = _bases(key, first, i0, w)
        _load(lam_T, i0, w, lam)
        for k in range(N - 1, -1, -1):
            _load(path[:, k], i0, w, y)
            mixture_score_block(y, w, means[k], prec[k], prec_iso[k], logc[k], iso, s, pi, diff, g, top, total)
            score_vjp_block(lam, y, w, means[k], prec[k], prec_iso[k], iso, s, pi, diff, g, top, tmp)
            for j in range(d):
                for i in range(w):
                    lam[j, i] = lin[k] * lam[j, i] + coef[k] * tmp[j, i]
            if k < n_bismut:
                for j in range(d):
                    normals_fill(base, d * (k + 1) + j, w, z, rejected)
                    for i in range(w):
                        v[j, i] += z[i] / sd[k]
                score_vjp_block(v, y, w, means[k], prec[k], prec_iso[k], iso, s, pi, diff, g, top, tmp)
                for j in range(d):
                    for i in range(w):
                        v[j, i] = lin[k] * v[j, i] + coef[k] * tmp[j, i]
        _store(lam, i0, w, lam0)
        for j in range(d):
            for i in range(w):
                v[j, i] /= max(n_bismut, 1)
        _store(v, i0, w, beta)
    return lam0, beta


@njit(cache=True, parallel=True)
def controlled_step(key, first, k, y, u, lin, coef, ccoef, sd, means, prec, prec_iso, logc, iso):
    """One step k of the controlled sampler (3.9) for all particles: y (n, d), u (n, d) -> (n, d)."""
    n, d = y.shape
    out = np.empty((n, d))
    for b in prange((n + BLOCK - 1) // BLOCK):
        i0 = b * BLOCK
        w = min(n, i0 + BLOCK) - i0
        pi, diff, g, top, total, z, rejected = _scratch(means.shape[0], d)
        yb, s = np.empty((d, BLOCK)), np.empty((d, BLOCK))
        base = _bases(key, first, i0, w)
        _load(y, i0, w, yb)
        mixture_score_block(yb, w, means, prec, prec_iso, logc, iso, s, pi, diff, g, top, total)
        for j in range(d):
            normals_fill(base, d * (k + 1) + j, w, z, rejected)
            for i in range(w):
                yb[j, i] = lin * yb[j, i] + coef * s[j, i] + ccoef * u[i0 + i, j] + sd * z[i]
        _store(yb, i0, w, out)
    return out
