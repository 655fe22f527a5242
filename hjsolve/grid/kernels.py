"""Numba kernels of the grid solver: small, typed by their inputs, parallel over lines or points.

Every array that lives on the grid is C-ordered with shape (n_0, ..., n_{d-1}); a sweep along
axis k views it as (P, n_k, Q) with P = n_0⋯n_{k-1} and Q = n_{k+1}⋯n_{d-1}, so one 1-D kernel
serves every axis and every dimension.
"""
from contextlib import contextmanager

import numba
import numpy as np
from numba import njit, prange

from ..vexp import exp

#: Lines swept together by one thread: contiguous lines of an inner axis, or lines of the last
#: axis copied side by side into scratch, so that the inner loop runs over independent Thomas
#: recurrences with unit stride (their division latencies overlap).
BLOCK = 32
#: Below this |x| = |B| Δz / a the fitted rates use the series of x/(eˣ - 1), above it eˣ.
SERIES = 0.5


@njit(cache=True, inline="always")
def bernoulli(x):
    """x/(eˣ - 1) for x ≥ 0: its even series below `SERIES` (truncation < 1e-18), else
    x e⁻ˣ/(1 - e⁻ˣ) (no overflow; 1 - e⁻ˣ > 0.39 there)."""
    x2 = x * x
    s = 1.3382536530684679e-11
    s = s * x2 - 5.284190138687493e-10
    s = s * x2 + 2.08767569878681e-08
    s = s * x2 - 8.267195767195768e-07
    s = s * x2 + 3.306878306878307e-05
    s = s * x2 - 0.001388888888888889
    s = s * x2 + 0.08333333333333333
    s = s * x2 - 0.5 * x + 1.0
    e = exp(-x)
    return s if x < SERIES else x * e / (1.0 - e)


@njit(cache=True, inline="always")
def fitted_pair(b, scale, kd):
    """(up, down) exponentially fitted (Il'in–Allen–Southwell) jump rates for drift b.

    With x = b Δz / a (``scale`` = Δz / a, ``kd`` = a / Δz²), the fitted generator
    ã ∂² + b ∂ with ã = a (x/2) coth(x/2) has the rates up = kd·x eˣ/(eˣ - 1) and
    down = kd·x/(eˣ - 1), i.e. kd times the Bernoulli function at ∓x: both ≥ 0 for any x and
    up - down = b / Δz. The smaller is kd·bernoulli(|x|), the larger adds kd |x|: no tanh,
    no cancellation.
    """
    ax = abs(b) * scale
    small = kd * bernoulli(ax)
    large = small + kd * ax
    up = large if b >= 0.0 else small
    down = small if b >= 0.0 else large
    return up, down


@njit(cache=True, inline="always")
def _line_rates(B, k, line, n, d, a, dz, up, down):
    """Rates along axis k (diffusion a) of the n cells of line ``line`` of the last axis, B (n,)
    their drift along axis k. Reflecting walls: for k = d-1 at the line's two ends, else on the
    whole line where it lies on the low/high wall of axis k."""
    cell0 = line * n
    for i in range(n):
        u, w = fitted_pair(B[i], dz / a, a / (dz * dz))
        up[k, cell0 + i] = u
        down[k, cell0 + i] = w
    if k == d - 1:
        up[k, cell0 + n - 1] = 0.0
        down[k, cell0] = 0.0
    else:
        pos = (line // n ** (d - 2 - k)) % n  # the line's index along axis k
        if pos == n - 1:
            up[k, cell0:cell0 + n] = 0.0
        if pos == 0:
            down[k, cell0:cell0 + n] = 0.0


@njit(cache=True, parallel=True)
def drift_rates(drift, diffusion, dz, n, up, down):
    """Fitted rates of every axis from a drift given at the nodes (the NumPy-callback path).

    drift : (N, d) z-drift at the nodes of the grid (n,)*d in C order; diffusion : (d,) a_k.
    Writes up, down (d, N): row k holds the rates along axis k (walls: outward rate 0).
    """
    N, d = drift.shape
    lines = N // n
    for line in prange(lines):
        Bk = np.empty(n)
        for k in range(d):
            for i in range(n):
                Bk[i] = drift[line * n + i, k]
            _line_rates(Bk, k, line, n, d, diffusion[k], dz, up, down)


@njit(cache=True, parallel=True)
def mixture_rates(mu, c, dmu, dc, f, g2, means, prec, logc, diffusion, z, dz, up, down, threads):
    """Fitted rates of every axis for a Gaussian-mixture score, fused: no (N, d) temporaries.

    At node y = μ + c∘z (μ, c, dμ/dt, dc/dt (d,); z from the axis nodes z (n,)) the sampler
    drift is b̄ = -f y + g2 s(y) with the mixture score s(y) = Σ_k π_k(y) (-P_k (y - m_k)),
    π_k ∝ exp(logc_k - ½ (y - m_k)ᵀ P_k (y - m_k)) (means (K, d), precisions P_k (K, d, d),
    logc (K,) = log w_k - ½ log det C_k of the forward marginal). The z-drift is
    B = (b̄ - dμ/dt - (dc/dt) z)/c and the rates `fitted_pair` with diffusions a (d,).
    Writes up, down (d, N) as `drift_rates`. Parallel over lines of the last axis, in
    4·``threads`` runs with their own scratch; inside a line every loop runs over its n cells
    (unit stride, no calls).
    """
    d = mu.shape[0]
    K = logc.shape[0]
    n = z.shape[0]
    lines = up.shape[1] // n
    chunks = min(lines, 4 * threads)
    for chunk in prange(chunks):
        Y = np.empty((d, n))
        G = np.empty((K, d, n))
        L = np.empty((K, n))
        S = np.empty((d, n))
        top = np.empty(n)
        total = np.empty(n)
        acc = np.empty(n)
        zl = np.empty(d)
        for line in range(chunk * lines // chunks, (chunk + 1) * lines // chunks):
            _mixture_line(line, mu, c, dmu, dc, f, g2, means, prec, logc, diffusion, z, dz, up, down,
                          Y, G, L, S, top, total, acc, zl)


@njit(cache=True, inline="always")
def _mixture_line(line, mu, c, dmu, dc, f, g2, means, prec, logc, diffusion, z, dz, up, down,
                  Y, G, L, S, top, total, acc, zl):
    """`mixture_rates` on the n cells of one line of the last axis, with the caller's scratch."""
    d = mu.shape[0]
    K = logc.shape[0]
    n = z.shape[0]
    S[:, :] = 0.0
    top[:] = -np.inf
    total[:] = 0.0
    for k in range(d - 1):
        zl[k] = z[(line // n ** (d - 2 - k)) % n]
        Y[k, :] = mu[k] + c[k] * zl[k]
    for i in range(n):
        Y[d - 1, i] = mu[d - 1] + c[d - 1] * z[i]
    for m in range(K):
        L[m, :] = logc[m]
        for j in range(d):
            acc[:] = 0.0
            for l in range(d):
                pjl, ml = prec[m, j, l], means[m, l]
                for i in range(n):
                    acc[i] += pjl * (Y[l, i] - ml)
            mj = means[m, j]
            for i in range(n):
                G[m, j, i] = -acc[i]
                L[m, i] -= 0.5 * acc[i] * (Y[j, i] - mj)
        for i in range(n):
            top[i] = max(top[i], L[m, i])
    for m in range(K):
        for i in range(n):
            acc[i] = exp(L[m, i] - top[i])
            total[i] += acc[i]
        for j in range(d):
            for i in range(n):
                S[j, i] += acc[i] * G[m, j, i]
    for k in range(d):
        inv_c = 1.0 / c[k]
        for i in range(n):
            zk = zl[k] if k < d - 1 else z[i]
            bbar = -f * Y[k, i] + g2 * (S[k, i] / total[i])
            acc[i] = (bbar - dmu[k] - dc[k] * zk) * inv_c
        _line_rates(acc, k, line, n, d, diffusion[k], dz, up, down)


@njit(cache=True, inline="always")
def _thomas(u, up, down, base, si, w, n, ex, im, transpose, rhs, cp):
    """θ-step of the w lines j = 0..w-1 whose element i sits at base + i·si + j (see
    `axis_step`); scratch rhs, cp (n·BLOCK,). The loops over j are unit-stride and independent."""
    for i in range(n):
        row = base + i * si
        s = i * BLOCK
        for j in range(w):
            e = row + j
            di = -(up[e] + down[e])
            if transpose:
                lo = up[e - si] if i > 0 else 0.0
                hi = down[e + si] if i < n - 1 else 0.0
            else:
                lo = down[e]
                hi = up[e]
            acc = di * u[e]
            if i > 0:
                acc += lo * u[e - si]
            if i < n - 1:
                acc += hi * u[e + si]
            r = u[e] + ex * acc
            if i == 0:
                inv = 1.0 / (1.0 - im * di)
                cp[s + j] = -im * hi * inv
                rhs[s + j] = r * inv
            else:
                a_i = -im * lo
                inv = 1.0 / (1.0 - im * di - a_i * cp[s - BLOCK + j])
                cp[s + j] = -im * hi * inv
                rhs[s + j] = (r - a_i * rhs[s - BLOCK + j]) * inv
    last = base + (n - 1) * si
    for j in range(w):
        u[last + j] = rhs[(n - 1) * BLOCK + j]
    for i in range(n - 2, -1, -1):
        row = base + i * si
        s = i * BLOCK
        for j in range(w):
            u[row + j] = rhs[s + j] - cp[s + j] * u[row + si + j]


@njit(cache=True, parallel=True)
def axis_step(u, up, down, P, n, Q, dt, theta, transpose, threads):
    """One θ-step u ← (I - θ dt M)⁻¹ (I + (1-θ) dt M) u along the middle axis of u viewed as
    (P, n, Q); u, up, down are flat (P n Q,) arrays.

    M is the tridiagonal generator L built from ``up``/``down`` (L u_i = up_i (u_{i+1} - u_i) +
    down_i (u_{i-1} - u_i)) or, with ``transpose``, its transpose Lᵀ (the Fokker–Planck operator
    acting on node masses). θ = ½ is Crank–Nicolson, θ = 1 backward Euler. The implicit part is
    a Thomas solve per line (one division per node), fused with the explicit half. Lines go in
    blocks of `BLOCK`: contiguous q's at fixed p (Q > 1), or, for the last axis (Q = 1),
    consecutive lines copied side by side into scratch and back. The blocks are cut into
    4·``threads`` contiguous runs, each with its own scratch.
    """
    per_p = (Q + BLOCK - 1) // BLOCK
    jobs = P * per_p if Q > 1 else (P + BLOCK - 1) // BLOCK
    ex = (1.0 - theta) * dt
    im = theta * dt
    chunks = min(jobs, 4 * threads)
    for chunk in prange(chunks):
        rhs = np.empty(n * BLOCK)
        cp = np.empty(n * BLOCK)
        if Q == 1:
            us = np.empty(n * BLOCK)
            ups = np.empty(n * BLOCK)
            downs = np.empty(n * BLOCK)
        for job in range(chunk * jobs // chunks, (chunk + 1) * jobs // chunks):
            if Q > 1:
                p = job // per_p
                q0 = (job - p * per_p) * BLOCK
                _thomas(u, up, down, p * n * Q + q0, Q, min(BLOCK, Q - q0), n, ex, im, transpose, rhs, cp)
            else:
                p0 = job * BLOCK
                w = min(BLOCK, P - p0)
                for j in range(w):
                    for i in range(n):
                        e = (p0 + j) * n + i
                        us[i * BLOCK + j] = u[e]
                        ups[i * BLOCK + j] = up[e]
                        downs[i * BLOCK + j] = down[e]
                _thomas(us, ups, downs, 0, BLOCK, w, n, ex, im, transpose, rhs, cp)
                for j in range(w):
                    for i in range(n):
                        u[(p0 + j) * n + i] = us[i * BLOCK + j]


@njit(cache=True)
def _lagrange4(x, w, dw):
    """Weights (4,) and derivative weights (4,) of cubic Lagrange interpolation at nodes 0..3."""
    x0, x1, x2, x3 = x, x - 1.0, x - 2.0, x - 3.0
    w[0] = -x1 * x2 * x3 / 6.0
    w[1] = x0 * x2 * x3 / 2.0
    w[2] = -x0 * x1 * x3 / 2.0
    w[3] = x0 * x1 * x2 / 6.0
    dw[0] = -(x2 * x3 + x1 * x3 + x1 * x2) / 6.0
    dw[1] = (x2 * x3 + x0 * x3 + x0 * x2) / 2.0
    dw[2] = -(x1 * x3 + x0 * x3 + x0 * x1) / 2.0
    dw[3] = (x1 * x2 + x0 * x2 + x0 * x1) / 6.0


@njit(cache=True, parallel=True)
def interpolate(levels, shape, level_ids, level_weights, points, value, grad):
    """Tensor cubic Lagrange interpolation of grid data, combined over time levels.

    levels : (L, N) grid data at L time levels, N = prod(shape) (C order); shape : (d,) int64.
    level_ids (m,) and level_weights (m,): value = Σ_l w_l f_{id_l}(x).
    points : (n, d) fractional node indices (clamped to the grid). Writes value (n,) and the
    gradient in index units grad (n, d). Error O(Δz⁴) for the value, O(Δz³) for the gradient.
    """
    n, d = points.shape
    m = level_ids.shape[0]
    strides = np.empty(d, dtype=np.int64)
    s = 1
    for k in range(d - 1, -1, -1):
        strides[k] = s
        s *= shape[k]
    combos = 4 ** d
    for r in prange(n):
        base = np.empty(d, dtype=np.int64)
        w = np.empty((d, 4))
        dw = np.empty((d, 4))
        for k in range(d):
            x = min(max(points[r, k], 0.0), shape[k] - 1.0)
            i0 = min(max(int(np.floor(x)) - 1, 0), shape[k] - 4)
            base[k] = i0
            _lagrange4(x - i0, w[k], dw[k])
        val = 0.0
        g = np.zeros(d)
        for c in range(combos):
            idx = 0
            wt = 1.0
            cc = c
            jk = np.empty(d, dtype=np.int64)
            for k in range(d):
                j = cc % 4
                cc //= 4
                jk[k] = j
                idx += (base[k] + j) * strides[k]
                wt *= w[k, j]
            f = 0.0
            for l in range(m):
                f += level_weights[l] * levels[level_ids[l], idx]
            val += wt * f
            for k in range(d):
                gk = dw[k, jk[k]]
                for kk in range(d):
                    if kk != k:
                        gk *= w[kk, jk[kk]]
                g[k] += gk * f
        value[r] = val
        for k in range(d):
            grad[r, k] = g[k]


@njit(cache=True, parallel=True)
def euler_maruyama_update(y, drift, control, sigma_sqrt_dt, noise, dt):
    """y ← y + (b̄ + u*) dt + ς √dt ξ for every particle (rows of y (n, d)), in place (3.9)."""
    n, d = y.shape
    for r in prange(n):
        for k in range(d):
            y[r, k] += (drift[r, k] + control[r, k]) * dt + sigma_sqrt_dt * noise[r, k]


#: Grid cells (or particles) per thread below which a parallel kernel runs on fewer threads:
#: launching threads costs more than it saves on small grids, and much more on a busy machine.
WORK_PER_THREAD = 16_384


@contextmanager
def use_threads(work):
    """Numba's thread count for kernel calls over ``work`` independent items, inside the ``with``
    block only: the caller's count is restored after it (other solvers run in the same process)."""
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, work // WORK_PER_THREAD)))
    try:
        yield
    finally:
        numba.set_num_threads(before)
