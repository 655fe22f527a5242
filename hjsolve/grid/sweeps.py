"""The θ-step along one axis: a tridiagonal (Thomas) solve per grid line, vectorised across
`LANES` lines at a time. One kernel serves every axis and every dimension.

A grid array (n,)*d is C-ordered; a sweep along axis k views it as (P, n, Q) with
P = n_0⋯n_{k-1} and Q = n_{k+1}⋯n_{d-1}. For Q > 1, `LANES` consecutive q at fixed p are
contiguous at every node i, so a block of lines is read in place. For the last axis (Q = 1)
the block's lines are copied side by side into scratch (a transpose), and the rates come in
the lane-major layout of `hjsolve.grid.rates`. Each block is solved by loops over its lanes
with unit stride, which LLVM vectorises: the rows of the system built and eliminated node by
node (`_eliminate_row`), then the back substitution, written straight into u.
"""
import numpy as np
from numba import njit, prange

from .rates import LANES


@njit(cache=True, inline="always", error_model="numpy")
def _eliminate_row(sup, rhs, sup_prev, rhs_prev, u_c, u_p, u_n, up, down, lo, hi, w, ex, im, scale):
    """Row i of the system (I - im M) x = (I + ex M) scale·u for w lanes, eliminated against row
    i - 1 (Thomas): sup, rhs (w,) get the normalised super-diagonal and right-hand side. M has
    the off-diagonal rates lo, hi and the diagonal -(up + down) at node i; u_p, u_c, u_n are u
    at nodes i-1, i, i+1."""
    for j in range(w):
        dd = -(up[j] + down[j])
        r = (u_c[j] + ex * (dd * u_c[j] + lo[j] * u_p[j] + hi[j] * u_n[j])) * scale
        a = -im * lo[j]
        inv = 1.0 / (1.0 - im * dd - a * sup_prev[j])
        sup[j] = -im * hi[j] * inv
        rhs[j] = (r - a * rhs_prev[j]) * inv


@njit(cache=True, inline="always", error_model="numpy")
def _solve(work, u, u0, su, up, down, r0, sr, n, w, ex, im, transpose, zero, scale):
    """One θ-step of w lanes in place, of scale·u: node i of lane j has its value at
    u[u0 + i·su + j] and its rates at up/down[r0 + i·sr + j]; work (n, 2, LANES) is scratch.

    M is the generator L (L u_i = up_i (u_{i+1} - u_i) + down_i (u_{i-1} - u_i)) or, with
    ``transpose``, Lᵀ (the Fokker–Planck operator on node masses: sub-diagonal up_{i-1},
    super-diagonal down_{i+1}). Reflecting walls: the rates out of the line are 0, so row 0
    needs no special case. The systems are M-matrices: the Thomas algorithm needs no pivoting
    (one division per node).
    """
    for i in range(n):
        ru, rr = u0 + i * su, r0 + i * sr
        u_c = u[ru:ru + w]
        u_p = u[ru - su:ru - su + w] if i > 0 else u_c
        u_n = u[ru + su:ru + su + w] if i < n - 1 else u_c
        up_c, down_c = up[rr:rr + w], down[rr:rr + w]
        if transpose:
            lo = up[rr - sr:rr - sr + w] if i > 0 else zero
            hi = down[rr + sr:rr + sr + w] if i < n - 1 else zero
        else:
            lo, hi = down_c, up_c
        sup_prev = work[i - 1, 0] if i > 0 else zero
        rhs_prev = work[i - 1, 1] if i > 0 else zero
        _eliminate_row(work[i, 0], work[i, 1], sup_prev, rhs_prev, u_c, u_p, u_n, up_c, down_c, lo, hi, w, ex, im,
                       scale)
    # back substitution straight into u: x_i = rhs_i - sup_i x_{i+1}
    out, x = u[u0 + (n - 1) * su:u0 + (n - 1) * su + w], work[n - 1, 1]
    for j in range(w):
        out[j] = x[j]
    for i in range(n - 2, -1, -1):
        ru = u0 + i * su
        out, after, sup, rhs = u[ru:ru + w], u[ru + su:ru + su + w], work[i, 0], work[i, 1]
        for j in range(w):
            out[j] = rhs[j] - sup[j] * after[j]


def axis_step(u, up, down, P, n, Q, dt, theta, transpose, threads, scale=1.0):
    """One θ-step u ← (I - θ dt M)⁻¹ (I + (1-θ) dt M) scale·u along the middle axis of u viewed as
    (P, n, Q); u is flat (P n Q,), up/down are the axis' rate rows (`hjsolve.grid.rates`:
    C order for Q > 1, lane-major blocks for Q = 1). M is L or, with ``transpose``, Lᵀ (see
    `_solve`). θ = ½ is Crank–Nicolson, θ = 1 backward Euler. With ``threads`` > 1 the
    blocks of `LANES` lines are cut into 4·``threads`` runs in a parallel region (Numba's
    thread count, set by the caller); with 1, they run in the calling thread, without the GIL.
    ``scale`` costs nothing: the backward pass rescales h by it instead of by a pass of its own.
    """
    if threads == 1:
        sweep(u, up, down, P, n, Q, dt, theta, transpose, scale)
    else:
        jobs = block_count(P, Q)
        _parallel_blocks(u, up, down, P, n, Q, (1.0 - theta) * dt, theta * dt, transpose, scale, jobs,
                         min(jobs, 4 * threads))


@njit(cache=True, nogil=True)
def sweep(u, up, down, P, n, Q, dt, theta, transpose, scale):
    """`axis_step` in the calling thread, as a Numba function that other kernels call."""
    _run_blocks(u, up, down, P, n, Q, (1.0 - theta) * dt, theta * dt, transpose, scale, 0, block_count(P, Q))


@njit(cache=True)
def block_count(P, Q):
    """Blocks of `LANES` lines of a (P, n, Q) sweep: `LANES` consecutive q at fixed p (Q > 1),
    or `LANES` consecutive lines p (Q = 1)."""
    return P * ((Q + LANES - 1) // LANES) if Q > 1 else (P + LANES - 1) // LANES


@njit(cache=True, parallel=True)
def _parallel_blocks(u, up, down, P, n, Q, ex, im, transpose, scale, jobs, runs):
    for run in prange(runs):
        _run_blocks(u, up, down, P, n, Q, ex, im, transpose, scale, run * jobs // runs, (run + 1) * jobs // runs)


@njit(cache=True, nogil=True, error_model="numpy")
def _run_blocks(u, up, down, P, n, Q, ex, im, transpose, scale, first, stop):
    """Blocks ``first`` to ``stop`` - 1 of `axis_step`, with their own scratch: a function of its
    own, not inlined into the parallel loop, and the scratch allocated here, so that LLVM knows
    the scratch aliases no argument and vectorises every lane loop."""
    work = np.empty((n, 2, LANES))
    block = np.empty(n * LANES)
    zero = np.zeros(LANES)
    per_p = (Q + LANES - 1) // LANES
    for job in range(first, stop):
        if Q > 1:
            p = job // per_p
            q0 = (job - p * per_p) * LANES
            base = p * n * Q + q0
            w = min(LANES, Q - q0)
            _solve(work, u, base, Q, up, down, base, Q, n, w, ex, im, transpose, zero, scale)
        else:
            p0 = job * LANES
            w = min(LANES, P - p0)
            for j in range(w):
                line = u[(p0 + j) * n:(p0 + j + 1) * n]
                for i in range(n):
                    block[i * LANES + j] = line[i]
            _solve(work, block, 0, LANES, up, down, job * n * LANES, LANES, n, w, ex, im, transpose, zero, scale)
            for j in range(w):
                line = u[(p0 + j) * n:(p0 + j + 1) * n]
                for i in range(n):
                    line[i] = block[i * LANES + j]
