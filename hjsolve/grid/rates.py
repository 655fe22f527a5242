"""Numba kernels for the fitted jump rates of the sampler's generator, per axis.

Layout. Every rate array is (d, `rate_length`): row k holds the rates along axis k. Rows
k < d-1 are in the grid's C order (flat index of the node). The row of the last axis is in
*lane-major blocks*: the lines of the last axis (the P = N/n runs of n contiguous nodes) go
in blocks of `LANES`, and node i of line p sits at ((p // LANES)·n + i)·LANES + p % LANES.
A sweep along the last axis then reads the rates of `LANES` lines side by side with unit
stride, as it does for the other axes (`hjsolve.grid.sweeps`).
"""
import numpy as np
from numba import njit, prange

from ..vexp import exp_estrin

#: Lines swept together: one vectorised Thomas recurrence per lane.
LANES = 32
#: Below this |x| = |B| Δz / a the fitted rates use the series of x/(eˣ - 1), above it eˣ.
SERIES = 0.5
#: Smallest Σ_k w_k (the largest w_k is 1 on each axis) for which `_separable_line` is used.
SEPARABLE_FLOOR = 1e-200
#: LLVM may fuse a*b + c into one FMA (a rounding less) in the rate kernels; nothing else.
CONTRACT = {"contract"}


def rate_length(shape):
    """Length of a row of the rate arrays for a grid of ``shape`` (n,)*d: the lines of the last
    axis rounded up to whole blocks of `LANES`."""
    n = shape[-1]
    lines = int(np.prod(shape[:-1], dtype=np.int64))
    return -(-lines // LANES) * LANES * n


@njit(cache=True, inline="always", error_model="numpy", fastmath=CONTRACT)
def fitting_factor(x2):
    """(x/2) coth(x/2), the even part of x/(eˣ - 1), from x² < `SERIES`² by its series
    (truncation < 1e-18)."""
    s = 1.3382536530684679e-11
    s = s * x2 - 5.284190138687493e-10
    s = s * x2 + 2.08767569878681e-08
    s = s * x2 - 8.267195767195768e-07
    s = s * x2 + 3.306878306878307e-05
    s = s * x2 - 0.001388888888888889
    s = s * x2 + 0.08333333333333333
    return s * x2 + 1.0


@njit(cache=True, inline="always", error_model="numpy", fastmath=CONTRACT)
def bernoulli(x):
    """x/(eˣ - 1) for x ≥ 0: by `fitting_factor` below `SERIES`, else x e⁻ˣ/(1 - e⁻ˣ) (no
    overflow; 1 - e⁻ˣ > 0.39 there). Both are computed and one is selected, so a loop over x
    vectorises."""
    e = exp_estrin(-x)
    return fitting_factor(x * x) - 0.5 * x if x < SERIES else x * e / (1.0 - e)


@njit(cache=True, inline="always", error_model="numpy", fastmath=CONTRACT)
def _fitted_line(drift, scale, kd, small, up, down):
    """(up, down) exponentially fitted (Il'in–Allen–Southwell) jump rates of n nodes with
    z-drifts ``drift`` (n,) into the views up, down (n,); small (n,) is scratch.

    With x = b Δz / a (``scale`` = Δz / a, ``kd`` = a / Δz²), the fitted generator
    ã ∂² + b ∂ with ã = a (x/2) coth(x/2) has the rates up = kd·x eˣ/(eˣ - 1) and
    down = kd·x/(eˣ - 1), i.e. kd times the Bernoulli function at ∓x: both ≥ 0 for any x and
    up - down = b / Δz. On lines where every |x| < `SERIES` (most lines on a fine grid) they
    are kd ((x/2) coth(x/2) ± x/2) (`fitting_factor` ≥ 1 > |x|/2: no cancellation). Elsewhere
    the smaller is kd·bernoulli(|x|) and the larger adds kd |x|: no tanh, no cancellation.
    """
    n = drift.shape[0]
    limit, half = SERIES / scale, 0.5 * kd * scale
    beyond = 0
    for i in range(n):  # the series everywhere, then the rest of the line again if needed
        b = drift[i]
        x = b * scale
        even = kd * fitting_factor(x * x)
        up[i] = even + half * b
        down[i] = even - half * b
        beyond += abs(b) >= limit
    if not beyond:
        return
    for i in range(n):
        small[i] = kd * bernoulli(abs(drift[i]) * scale)
    for i in range(n):
        b = drift[i]
        large = small[i] + kd * abs(b) * scale
        up[i] = large if b >= 0.0 else small[i]
        down[i] = small[i] if b >= 0.0 else large


@njit(cache=True, inline="always", error_model="numpy", fastmath=CONTRACT)
def _store_line(drift, k, line, n, d, a, dz, up, down, small):
    """Fitted rates along axis k (diffusion a) of the n nodes of line ``line`` of the last axis,
    ``drift`` (n,) their z-drift along axis k, into row k of up, down (see the layout above);
    small (n,) is scratch. Reflecting walls: the outward rate is 0 at the line's ends
    (k = d-1), or on the whole line where it lies on the low/high wall of axis k."""
    scale, kd = dz / a, a / (dz * dz)
    if k == d - 1:
        start = (line // LANES) * n * LANES + line % LANES
        up_k = up[k, start:start + n * LANES:LANES]
        down_k = down[k, start:start + n * LANES:LANES]
        _fitted_line(drift, scale, kd, small, up_k, down_k)
        up_k[n - 1] = 0.0
        down_k[0] = 0.0
    else:
        up_k = up[k, line * n:(line + 1) * n]
        down_k = down[k, line * n:(line + 1) * n]
        _fitted_line(drift, scale, kd, small, up_k, down_k)
        pos = (line // n ** (d - 2 - k)) % n  # the line's index along axis k
        if pos == n - 1:
            up_k[:] = 0.0
        if pos == 0:
            down_k[:] = 0.0


def drift_rates(drift, diffusion, dz, n, up, down, threads):
    """Fitted rates of every axis from a drift given at the nodes (the NumPy-callback path).

    drift : (N, d) z-drift at the nodes of the grid (n,)*d in C order; diffusion : (d,) a_k.
    Writes up, down (d, `rate_length`). ``threads`` as in `mixture_rates`.
    """
    lines = drift.shape[0] // n
    _run_parallel(_drift_lines, _parallel_drift_lines, (drift, diffusion, dz, n, up, down), lines, threads)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=CONTRACT)
def _drift_lines(drift, diffusion, dz, n, up, down, first, stop):
    """Lines ``first`` to ``stop`` - 1 of `drift_rates`."""
    along = np.empty(n)
    small = np.empty(n)
    for line in range(first, stop):
        for k in range(drift.shape[1]):
            along[:] = drift[line * n:(line + 1) * n, k]
            _store_line(along, k, line, n, drift.shape[1], diffusion[k], dz, up, down, small)


def mixture_rates(mu, c, dmu, dc, f, g2, means, prec, logc, diffusion, z, dz, up, down, separable, threads):
    """Fitted rates of every axis for a Gaussian-mixture score, fused: no (N, d) temporaries.

    At node y = μ + c∘z (μ, c, dμ/dt, dc/dt (d,); z from the axis nodes z (n,)) the sampler
    drift is b̄ = -f y + g2 s(y) with the mixture score s(y) = Σ_k π_k(y) (-P_k (y - m_k)),
    π_k ∝ exp(logc_k - ½ (y - m_k)ᵀ P_k (y - m_k)) (means (K, d), precisions P_k (K, d, d),
    logc (K,) = log w_k - ½ log det C_k of the forward marginal). The z-drift is
    B = (b̄ - dμ/dt - (dc/dt) z)/c and the rates `_fitted_line` with diffusions a (d,).
    Writes up, down (d, `rate_length`). Works line by line along the last axis
    (`_mixture_lines`); along a line only the last coordinate varies, so each component's
    log-weight is a quadratic and its score an affine function of it (`_mixture_line`), and
    every loop over the line's n nodes vectorises.

    ``separable``: every P_k is diagonal (the caller checks). Then π_k is a product of one
    factor per axis, tabulated once on the axis nodes (`_axis_tables`), and a node's weights
    cost K products instead of K exponentials (`_separable_line`).

    ``threads`` > 1: the lines run in 4·``threads`` runs in a parallel region (Numba's thread
    count, set by the caller); 1: in the calling thread, without the GIL.
    """
    if threads == 1:
        mixture_rates_in_thread(mu, c, dmu, dc, f, g2, means, prec, logc, diffusion, z, dz, up, down, separable)
        return
    factor, slope = _axis_tables(mu, c, z, means, prec, logc, separable)
    lines = z.shape[0] ** (mu.shape[0] - 1)
    arguments = (mu, c, dmu, dc, f, g2, means, prec, logc, diffusion, z, dz, up, down, factor, slope)
    _run_parallel(_mixture_lines, _parallel_mixture_lines, arguments, lines, threads)


@njit(cache=True, nogil=True)
def mixture_rates_in_thread(mu, c, dmu, dc, f, g2, means, prec, logc, diffusion, z, dz, up, down, separable):
    """`mixture_rates` in the calling thread, as a Numba function that other kernels call."""
    factor, slope = _axis_tables(mu, c, z, means, prec, logc, separable)
    _mixture_lines(mu, c, dmu, dc, f, g2, means, prec, logc, diffusion, z, dz, up, down, factor, slope, 0,
                   z.shape[0] ** (mu.shape[0] - 1))


def _run_parallel(serial, parallel, args, lines, threads):
    """``serial(*args, first, stop)`` over all ``lines`` in the calling thread, or ``parallel``
    (the same in a parallel region of 4·``threads`` runs of whole `LANES` blocks)."""
    if threads == 1:
        serial(*args, 0, lines)
    else:
        blocks = -(-lines // LANES)
        parallel(*args, lines, blocks, min(blocks, 4 * threads))


@njit(cache=True, nogil=True, error_model="numpy")
def _axis_tables(mu, c, z, means, prec, logc, separable):
    """For diagonal precisions, the per-axis factors of the mixture weights on the axis nodes:
    log factor[j, k, i] = φ_kj(i) - max_k φ_kj(i), φ_kj(i) = -½ P_k,jj (y_j(i) - m_kj)² (plus
    logc_k on the last axis), and slope[j, k, i] = P_k,jj (y_j(i) - m_kj); each (d, K, n).
    Empty tables when not ``separable``."""
    d, K, n = mu.shape[0], logc.shape[0], z.shape[0] if separable else 0
    factor = np.empty((d, K, n))
    slope = np.empty((d, K, n))
    for j in range(d):
        for i in range(n):
            y = mu[j] + c[j] * z[i]
            top = -np.inf
            for k in range(K):
                slope[j, k, i] = prec[k, j, j] * (y - means[k, j])
                phi = -0.5 * slope[j, k, i] * (y - means[k, j]) + (logc[k] if j == d - 1 else 0.0)
                factor[j, k, i] = phi
                top = max(top, phi)
            for k in range(K):
                factor[j, k, i] = np.exp(factor[j, k, i] - top)
    return factor, slope


@njit(cache=True, inline="always")
def _run_lines(run, runs, blocks, lines):
    """(first, stop) lines of run ``run`` of ``runs``: whole blocks of `LANES` lines, so that no
    two threads write the same cache line of the last axis' lane-major rates."""
    return min(run * blocks // runs * LANES, lines), min((run + 1) * blocks // runs * LANES, lines)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=CONTRACT)
def _mixture_lines(mu, c, dmu, dc, f, g2, means, prec, logc, diffusion, z, dz, up, down, factor, slope, first,
                   stop):
    """Lines ``first`` to ``stop`` - 1 of `mixture_rates` with their own scratch (a function of
    its own, not inlined into the parallel loop, so that its loops vectorise)."""
    d = mu.shape[0]
    K = logc.shape[0]
    n = z.shape[0]
    y_last = mu[d - 1] + c[d - 1] * z
    log_w = np.empty((K, n))
    top = np.empty(n)
    total = np.empty(n)
    score = np.empty((d, n))
    drift = np.empty(n)
    small = np.empty(n)
    alpha = np.empty((K, d))
    y_fixed = np.empty(d)
    z_fixed = np.empty(d)
    fixed = np.empty(d, dtype=np.int64)
    for line in range(first, stop):
        for k in range(d - 1):
            fixed[k] = (line // n ** (d - 2 - k)) % n
            z_fixed[k] = z[fixed[k]]
            y_fixed[k] = mu[k] + c[k] * z_fixed[k]
        if factor.shape[2] == 0 or not _separable_line(fixed, factor, slope, total, score):
            _mixture_line(y_fixed, y_last, means, prec, logc, alpha, log_w, top, total, score)
        for k in range(d):
            _line_drift(k, d, y_fixed, z_fixed, y_last, z, f, g2, mu, c, dmu, dc, score, total, drift)
            _store_line(drift, k, line, n, d, diffusion[k], dz, up, down, small)


@njit(cache=True, inline="always", error_model="numpy", fastmath=CONTRACT)
def _mixture_line(y_fixed, y_last, means, prec, logc, alpha, log_w, top, total, score):
    """Unnormalised mixture score along one line of the last axis: score (d, n) = Σ_k w_k g_k
    and total (n,) = Σ_k w_k, with w_k = π_k up to a common factor.

    The first d-1 coordinates are y_fixed, the last y_last (n,). With t = y_last - m_{k,L} and
    δ = y_fixed - m_k (first d-1 entries), P_k (y - m_k) = α_k + β_k t, α_kj = Σ_{l<L} P_jl δ_l,
    β_kj = P_{jL}, so log w_k = logc_k - ½(δ·α_k[:L] + t(δ·β_k[:L] + α_kL) + β_kL t²).
    Scratch: alpha (K, d), log_w (K, n), top (n,).
    """
    d = y_fixed.shape[0]
    K, n = log_w.shape
    L = d - 1
    for m in range(K):
        const, lin = 0.0, 0.0
        for j in range(d):
            acc = 0.0
            for l in range(L):
                acc += prec[m, j, l] * (y_fixed[l] - means[m, l])
            alpha[m, j] = acc
        for l in range(L):
            delta = y_fixed[l] - means[m, l]
            const += delta * alpha[m, l]
            lin += delta * prec[m, l, L]
        c0 = logc[m] - 0.5 * const
        c1 = -0.5 * (lin + alpha[m, L])
        c2 = -0.5 * prec[m, L, L]
        row, centre = log_w[m], means[m, L]
        for i in range(n):
            t = y_last[i] - centre
            v = c0 + t * (c1 + c2 * t)
            row[i] = v
            # the first component initialises the maximum; a select (not max) vectorises
            top[i] = v if m == 0 or v > top[i] else top[i]
    for m in range(K):
        row, centre = log_w[m], means[m, L]
        for i in range(n):
            w = exp_estrin(row[i] - top[i])
            row[i] = w
            total[i] = w if m == 0 else total[i] + w
        for j in range(d):
            out, a, b = score[j], alpha[m, j], prec[m, j, L]
            for i in range(n):
                term = -row[i] * (a + b * (y_last[i] - centre))
                out[i] = term if m == 0 else out[i] + term


@njit(cache=True, inline="always", error_model="numpy", fastmath=CONTRACT)
def _separable_line(fixed, factor, slope, total, score):
    """`_mixture_line` for diagonal precisions from the axis tables of `_axis_tables`: node i
    of the line (first d-1 node indices ``fixed``) has w_k = Π_{j<L} factor[j, k, fixed_j] ·
    factor[L, k, i]. False, with the outputs unspecified, if Σ_k w_k underflows below
    `SEPARABLE_FLOOR` somewhere on the line (far from every component, where the per-axis
    maxima belong to different components): the caller then evaluates the line with
    `_mixture_line`. Above the floor, a w_k lost to underflow has weight < 1e-100."""
    d, K, n = factor.shape
    L = d - 1
    for m in range(K):
        across = 1.0
        for j in range(L):
            across *= factor[j, m, fixed[j]]
        row, slope_last, s_last = factor[L, m], slope[L, m], score[L]
        for i in range(n):
            w = across * row[i]
            total[i] = w if m == 0 else total[i] + w
            s_last[i] = -w * slope_last[i] if m == 0 else s_last[i] - w * slope_last[i]
        for j in range(L):
            out, g = score[j], across * slope[j, m, fixed[j]]
            for i in range(n):
                out[i] = -g * row[i] if m == 0 else out[i] - g * row[i]
    lowest = np.inf
    for i in range(n):
        lowest = min(lowest, total[i])
    return lowest >= SEPARABLE_FLOOR


@njit(cache=True, inline="always", error_model="numpy", fastmath=CONTRACT)
def _line_drift(k, d, y_fixed, z_fixed, y_last, z, f, g2, mu, c, dmu, dc, score, total, drift):
    """z-drift along axis k, (b̄_k - dμ_k/dt - (dc_k/dt) z_k)/c_k, of the n nodes of a line
    into drift (n,), from the unnormalised score (d, n) and its normaliser total (n,)."""
    s_k = score[k]
    inv_c = 1.0 / c[k]
    if k == d - 1:
        for i in range(z.shape[0]):
            bbar = -f * y_last[i] + g2 * (s_k[i] / total[i])
            drift[i] = (bbar - dmu[k] - dc[k] * z[i]) * inv_c
    else:
        shift = -f * y_fixed[k] - dmu[k] - dc[k] * z_fixed[k]
        for i in range(z.shape[0]):
            drift[i] = (shift + g2 * (s_k[i] / total[i])) * inv_c


@njit(cache=True, parallel=True)
def _parallel_drift_lines(drift, diffusion, dz, n, up, down, lines, blocks, runs):
    for run in prange(runs):
        first, stop = _run_lines(run, runs, blocks, lines)
        _drift_lines(drift, diffusion, dz, n, up, down, first, stop)


@njit(cache=True, parallel=True)
def _parallel_mixture_lines(mu, c, dmu, dc, f, g2, means, prec, logc, diffusion, z, dz, up, down, factor, slope,
                            lines, blocks, runs):
    for run in prange(runs):
        first, stop = _run_lines(run, runs, blocks, lines)
        _mixture_lines(mu, c, dmu, dc, f, g2, means, prec, logc, diffusion, z, dz, up, down, factor, slope,
                       first, stop)

