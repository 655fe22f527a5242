"""Numba kernels of the grid solver: small, typed by their inputs, parallel over lines or points.

Every array that lives on the grid is C-ordered with shape (n_0, ..., n_{d-1}); a sweep along
axis k views it as (P, n_k, Q) with P = n_0⋯n_{k-1} and Q = n_{k+1}⋯n_{d-1}, so one 1-D kernel
serves every axis and every dimension.
"""
import numpy as np
from numba import njit, prange

#: Lines of the trailing axis handled together by one thread (contiguous memory).
BLOCK = 32


@njit(cache=True, parallel=True)
def fitted_rates(drift, diffusion, dz, up, down):
    """Il'in–Allen–Southwell (exponentially fitted) jump rates of the generator along one axis.

    drift : (P, n, Q) drift component B along the axis; diffusion : scalar a (the generator is
    a ∂² + B ∂). Writes up, down (P, n, Q) with the fitted diffusion ã = a·Pe·coth(Pe),
    Pe = B dz / (2a): up = ã/dz² + B/(2dz), down = ã/dz² - B/(2dz), both ≥ 0 for any Pe, so the
    generator is that of a birth–death chain. At the two ends the outward rate is zero
    (reflecting wall): rows of the generator sum to zero and its transpose conserves mass.
    """
    P, n, Q = drift.shape
    inv2 = 1.0 / (dz * dz)
    half = 1.0 / (2.0 * dz)
    scale = dz / (2.0 * diffusion)
    for line in prange(P * n):
        p = line // n
        i = line - p * n
        for q in range(Q):
            b = drift[p, i, q]
            pe = b * scale
            if abs(pe) < 1e-4:
                fit = 1.0 + pe * pe / 3.0
            else:
                fit = pe / np.tanh(pe)
            diff = diffusion * fit * inv2
            adv = b * half
            u = max(diff + adv, 0.0)
            w = max(diff - adv, 0.0)
            up[p, i, q] = 0.0 if i == n - 1 else u
            down[p, i, q] = 0.0 if i == 0 else w


@njit(cache=True, parallel=True)
def axis_step(u, up, down, dt, theta, transpose):
    """One θ-step u ← (I - θ dt M)⁻¹ (I + (1-θ) dt M) u along the middle axis of u (P, n, Q).

    M is the tridiagonal generator L built from ``up``/``down`` (L u_i = up_i (u_{i+1} - u_i) +
    down_i (u_{i-1} - u_i)) or, with ``transpose``, its transpose Lᵀ (the Fokker–Planck operator
    acting on node masses). θ = ½ is Crank–Nicolson, θ = 1 backward Euler. The implicit part is
    a Thomas solve per line; lines run in parallel in blocks of `BLOCK` contiguous q's.
    """
    P, n, Q = u.shape
    nb = (Q + BLOCK - 1) // BLOCK
    ex = (1.0 - theta) * dt
    im = theta * dt
    for job in prange(P * nb):
        p = job // nb
        q0 = (job % nb) * BLOCK
        q1 = min(q0 + BLOCK, Q)
        w = q1 - q0
        rhs = np.empty((n, w))
        cp = np.empty((n, w))
        for i in range(n):
            for j in range(w):
                q = q0 + j
                di = -(up[p, i, q] + down[p, i, q])
                if transpose:
                    lo = up[p, i - 1, q] if i > 0 else 0.0
                    hi = down[p, i + 1, q] if i < n - 1 else 0.0
                else:
                    lo = down[p, i, q]
                    hi = up[p, i, q]
                acc = di * u[p, i, q]
                if i > 0:
                    acc += lo * u[p, i - 1, q]
                if i < n - 1:
                    acc += hi * u[p, i + 1, q]
                r = u[p, i, q] + ex * acc
                a_i = -im * lo
                b_i = 1.0 - im * di
                c_i = -im * hi
                if i == 0:
                    cp[i, j] = c_i / b_i
                    rhs[i, j] = r / b_i
                else:
                    m = b_i - a_i * cp[i - 1, j]
                    cp[i, j] = c_i / m
                    rhs[i, j] = (r - a_i * rhs[i - 1, j]) / m
        for j in range(w):
            u[p, n - 1, q0 + j] = rhs[n - 1, j]
        for i in range(n - 2, -1, -1):
            for j in range(w):
                u[p, i, q0 + j] = rhs[i, j] - cp[i, j] * u[p, i + 1, q0 + j]


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
WORK_PER_THREAD = 65_536


def use_threads(work):
    """Set Numba's thread count for a kernel call over ``work`` independent items."""
    import numba

    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, work // WORK_PER_THREAD)))
