"""Numba kernels of the pretrained sampler with an exact Gaussian-mixture score.

Shapes: n particles, d dimensions, K components, N steps. Step arrays (lin, coef, sd: (N,))
come from `schedule.build_schedule`, mixture arrays (means (N, K, d), prec (N, K, d, d) or
prec_iso (N, K), logc (N, K)) from `schedule.mixture_arrays`. Every kernel is parallel over
blocks of particles (scratch buffers are allocated once per block) and draws its noise from
`rng` streams, so results do not depend on the number of threads.

Mixture score at one time (DESIGN §1): g_j = -C_j^{-1}(y - a m_j), π_j ∝ w_j N(y; a m_j, C_j),
s = Σ_j π_j g_j, and its Jacobian (symmetric, a Hessian of log p)
∇s = Σ_j π_j (-C_j^{-1}) + Σ_j π_j g_j g_jᵀ - s sᵀ.
"""
import numpy as np
from numba import njit, prange

from .rng import normal_at, normals_fill, particle_base
from .vexp import exp

BLOCK = 256


@njit(cache=True, inline="always")
def mixture_score(y, means, prec, prec_iso, logc, iso, s, g, pi):
    """Fill s (d,) with the score at y (d,); g (K, d) and pi (K,) with g_j and π_j."""
    K, d = means.shape
    top = -np.inf
    for k in range(K):
        quad = 0.0
        if iso:
            c = prec_iso[k]
            for j in range(d):
                diff = y[j] - means[k, j]
                g[k, j] = -c * diff
                quad += c * diff * diff
        else:
            for j in range(d):
                acc = 0.0
                for l in range(d):
                    acc += prec[k, j, l] * (y[l] - means[k, l])
                g[k, j] = -acc
                quad += acc * (y[j] - means[k, j])
        pi[k] = logc[k] - 0.5 * quad
        if pi[k] > top:
            top = pi[k]
    total = 0.0
    for k in range(K):
        pi[k] = exp(pi[k] - top)
        total += pi[k]
    for j in range(d):
        s[j] = 0.0
    for k in range(K):
        pi[k] /= total
        for j in range(d):
            s[j] += pi[k] * g[k, j]


@njit(cache=True, inline="always")
def score_vjp(v, s, g, pi, prec, prec_iso, iso, out):
    """out (d,) = ∇s v with ∇s from the last `mixture_score` call (s, g, pi)."""
    K, d = g.shape
    sv = 0.0
    for j in range(d):
        sv += s[j] * v[j]
    for j in range(d):
        out[j] = -s[j] * sv
    for k in range(K):
        gv = 0.0
        for j in range(d):
            gv += g[k, j] * v[j]
        if iso:
            for j in range(d):
                out[j] += pi[k] * (g[k, j] * gv - prec_iso[k] * v[j])
        else:
            for j in range(d):
                acc = 0.0
                for l in range(d):
                    acc += prec[k, j, l] * v[l]
                out[j] += pi[k] * (g[k, j] * gv - acc)


@njit(cache=True, parallel=True)
def score_batch(y, means, prec, prec_iso, logc, iso):
    """(n, d) mixture scores at the points y (n, d) for one time's arrays (K, d), (K, d, d), (K,), (K,)."""
    n, d = y.shape
    K = means.shape[0]
    out = np.empty((n, d))
    for i in prange(n):
        g = np.empty((K, d))
        pi = np.empty(K)
        s = np.empty(d)
        mixture_score(y[i], means, prec, prec_iso, logc, iso, s, g, pi)
        out[i] = s
    return out


@njit(cache=True, parallel=True)
def score_vjp_batch(y, v, means, prec, prec_iso, logc, iso):
    """(n, d) products ∇s(y_i) v_i for y, v (n, d)."""
    n, d = y.shape
    K = means.shape[0]
    out = np.empty((n, d))
    for i in prange(n):
        g = np.empty((K, d))
        pi = np.empty(K)
        s = np.empty(d)
        o = np.empty(d)
        mixture_score(y[i], means, prec, prec_iso, logc, iso, s, g, pi)
        score_vjp(v[i], s, g, pi, prec, prec_iso, iso, o)
        out[i] = o
    return out


@njit(cache=True, inline="always")
def mixture_score_block(y, w, means, prec, prec_iso, logc, iso, logit, diff, top, total, s):
    """s (d, B) = mixture score at the columns i < w of y (d, B), particles innermost so that
    LLVM vectorises over them; scratch logit (K, B), diff (d, B), top and total (B,)."""
    K, d = means.shape
    for i in range(w):
        total[i] = -np.inf
    for k in range(K):  # logits log w_k N(y; a m_k, C_k) up to a common constant
        for j in range(d):
            for i in range(w):
                diff[j, i] = y[j, i] - means[k, j]
        for i in range(w):
            logit[k, i] = 0.0
        if iso:
            for j in range(d):
                for i in range(w):
                    logit[k, i] += diff[j, i] * diff[j, i]
            for i in range(w):
                logit[k, i] = logc[k] - 0.5 * prec_iso[k] * logit[k, i]
        else:
            for j in range(d):
                for l in range(d):
                    for i in range(w):
                        logit[k, i] += prec[k, j, l] * diff[j, i] * diff[l, i]
            for i in range(w):
                logit[k, i] = logc[k] - 0.5 * logit[k, i]
        for i in range(w):
            total[i] = max(total[i], logit[k, i])
    for i in range(w):
        top[i] = total[i]
        total[i] = 0.0
    for k in range(K):  # unnormalised π_k, shifted by the largest logit
        for i in range(w):
            logit[k, i] = exp(logit[k, i] - top[i])
            total[i] += logit[k, i]
    for j in range(d):
        for i in range(w):
            s[j, i] = 0.0
    for k in range(K):  # s = Σ_k π_k g_k with g_k = -C_k^{-1}(y - a m_k)
        for j in range(d):
            for i in range(w):
                diff[j, i] = y[j, i] - means[k, j]
        for j in range(d):
            if iso:
                for i in range(w):
                    s[j, i] -= logit[k, i] * prec_iso[k] * diff[j, i]
            else:
                for l in range(d):
                    for i in range(w):
                        s[j, i] -= logit[k, i] * prec[k, j, l] * diff[l, i]
    for j in range(d):
        for i in range(w):
            s[j, i] /= total[i]


@njit(cache=True, parallel=True)
def simulate(key, first, y0, from_noise, noise_sd, lin, coef, sd, means, prec, prec_iso, logc, iso, store):
    """Run the sampler over all N steps.

    y0 (n, d) start points (ignored where ``from_noise``: Y_0 = noise_sd · normals 0..d-1).
    Returns (Y_0 (n, d), Y_N (n, d), path) with path (n, N+1, d) if ``store`` else (1, 1, 1).
    Blocks of `BLOCK` particles run in parallel; inside a block the state is stored (d, BLOCK)
    and every step is a few loops over the block's particles, which LLVM vectorises.
    """
    n, d = y0.shape
    N = lin.shape[0]
    K = means.shape[1]
    start = np.empty((n, d))
    end = np.empty((n, d))
    path = np.empty((n, N + 1, d)) if store else np.empty((1, 1, 1))
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        i0 = b * BLOCK
        w = min(n, i0 + BLOCK) - i0
        base = np.empty(BLOCK, dtype=np.uint64)
        y = np.empty((d, BLOCK))
        s = np.empty((d, BLOCK))
        diff = np.empty((d, BLOCK))
        logit = np.empty((K, BLOCK))
        top = np.empty(BLOCK)
        total = np.empty(BLOCK)
        z = np.empty(BLOCK)
        rejected = np.empty(BLOCK, dtype=np.bool_)
        for i in range(w):
            base[i] = particle_base(key, first + i0 + i)
        for j in range(d):
            if from_noise:
                normals_fill(base, j, w, z, rejected)
                for i in range(w):
                    y[j, i] = noise_sd * z[i]
            else:
                for i in range(w):
                    y[j, i] = y0[i0 + i, j]
            for i in range(w):
                start[i0 + i, j] = y[j, i]
                if store:
                    path[i0 + i, 0, j] = y[j, i]
        for k in range(N):
            mixture_score_block(y, w, means[k], prec[k], prec_iso[k], logc[k], iso, logit, diff, top, total, s)
            for j in range(d):
                normals_fill(base, d * (k + 1) + j, w, z, rejected)
                for i in range(w):
                    y[j, i] = lin[k] * y[j, i] + coef[k] * s[j, i] + sd[k] * z[i]
                if store:
                    for i in range(w):
                        path[i0 + i, k + 1, j] = y[j, i]
        for j in range(d):
            for i in range(w):
                end[i0 + i, j] = y[j, i]
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
    K = means.shape[1]
    lam0 = np.empty((n, d))
    beta = np.empty((n, d))
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        lam = np.empty(d)
        v = np.empty(d)
        tmp = np.empty(d)
        s = np.empty(d)
        g = np.empty((K, d))
        pi = np.empty(K)
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            base = particle_base(key, first + i)
            for j in range(d):
                lam[j] = lam_T[i, j]
                v[j] = 0.0
            for k in range(N - 1, -1, -1):
                mixture_score(path[i, k], means[k], prec[k], prec_iso[k], logc[k], iso, s, g, pi)
                score_vjp(lam, s, g, pi, prec[k], prec_iso[k], iso, tmp)
                for j in range(d):
                    lam[j] = lin[k] * lam[j] + coef[k] * tmp[j]
                if k < n_bismut:
                    for j in range(d):
                        v[j] += normal_at(base, d * (k + 1) + j) / sd[k]
                    score_vjp(v, s, g, pi, prec[k], prec_iso[k], iso, tmp)
                    for j in range(d):
                        v[j] = lin[k] * v[j] + coef[k] * tmp[j]
            for j in range(d):
                lam0[i, j] = lam[j]
                beta[i, j] = v[j] / max(n_bismut, 1)
    return lam0, beta


@njit(cache=True, parallel=True)
def controlled_step(key, first, k, y, u, lin, coef, ccoef, sd, means, prec, prec_iso, logc, iso):
    """One step k of the controlled sampler (3.9) for all particles: y (n, d), u (n, d) -> (n, d)."""
    n, d = y.shape
    K = means.shape[0]
    out = np.empty((n, d))
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        s = np.empty(d)
        g = np.empty((K, d))
        pi = np.empty(K)
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            base = particle_base(key, first + i)
            mixture_score(y[i], means, prec, prec_iso, logc, iso, s, g, pi)
            for j in range(d):
                z = normal_at(base, d * (k + 1) + j)
                out[i, j] = lin * y[i, j] + coef * s[j] + ccoef * u[i, j] + sd * z
    return out
