"""The axis θ-step (hjsolve/grid/sweeps.py) against a dense solve of the same linear system, on
every axis of 1-D, 2-D and 3-D grids whose line counts are and are not multiples of the lane
block, with the rates from the production rate kernel (lane-major layout for the last axis)."""
import numpy as np
import pytest

from hjsolve.grid.passes import axis_view_shape
from hjsolve.grid.rates import LANES, drift_rates, rate_length
from hjsolve.grid.sweeps import axis_step


def natural_rates(row, shape, axis):
    """A rate row in C order: rows of inner axes already are; the last axis' are lane-major."""
    N, n = int(np.prod(shape)), shape[-1]
    if axis < len(shape) - 1:
        return row[:N]
    return row.reshape(-1, n, LANES).transpose(0, 2, 1).reshape(-1, n)[:N // n].reshape(-1)


def dense_generator(up, down, shape, axis):
    """(N, N) generator L along ``axis``: (L u)_e = up_e (u_{e+1} - u_e) + down_e (u_{e-1} - u_e)."""
    N = int(np.prod(shape))
    index = np.arange(N).reshape(shape)
    L = np.zeros((N, N))
    for e, pos in enumerate(np.ndindex(*shape)):
        for step, rate in ((1, up[e]), (-1, down[e])):
            i = pos[axis] + step
            if 0 <= i < shape[axis]:
                neighbour = list(pos)
                neighbour[axis] = i
                L[e, index[tuple(neighbour)]] += rate
                L[e, e] -= rate
    return L


@pytest.mark.parametrize("d, n", [(1, 9), (2, 37), (2, 5), (3, 9)])
def test_axis_step_solves_the_theta_system(d, n):
    rng = np.random.default_rng(d * 100 + n)
    shape, N = (n,) * d, n**d
    up, down = np.zeros((d, rate_length(shape))), np.zeros((d, rate_length(shape)))
    drift_rates(3.0 * rng.normal(size=(N, d)), 0.2 + rng.random(d), 2.0 / (n - 1), n, up, down, 2)
    assert np.all(up >= 0) and np.all(down >= 0)
    for axis in range(d):
        L = dense_generator(natural_rates(up[axis], shape, axis), natural_rates(down[axis], shape, axis),
                            shape, axis)
        P, m, Q = axis_view_shape(shape, axis)
        for transpose in (False, True):
            M = L.T if transpose else L
            for theta, dt in ((0.5, 0.3), (1.0, 0.1)):
                u = rng.random(N)
                expected = np.linalg.solve(np.eye(N) - theta * dt * M, (np.eye(N) + (1 - theta) * dt * M) @ u)
                axis_step(u, up[axis], down[axis], P, m, Q, dt, theta, transpose, 2)
                np.testing.assert_allclose(u, expected, rtol=1e-12, atol=1e-14)


def test_transposed_step_conserves_mass():
    """L has zero row sums, so 1ᵀLᵀ = 0: the forward (Fokker–Planck) step keeps Σ m."""
    rng = np.random.default_rng(0)
    shape, n = (41, 41), 41
    up, down = np.zeros((2, rate_length(shape))), np.zeros((2, rate_length(shape)))
    drift_rates(rng.normal(size=(n * n, 2)), np.array([0.3, 0.5]), 2.0 / (n - 1), n, up, down, 2)
    m = rng.random(n * n)
    total = m.sum()
    for axis in (0, 1):
        P, _, Q = axis_view_shape(shape, axis)
        axis_step(m, up[axis], down[axis], P, n, Q, 0.05, 0.5, True, 2)
    assert m.sum() == pytest.approx(total, rel=1e-13)
