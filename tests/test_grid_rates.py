"""The fused mixture rate kernel (hjsolve/grid/rates.py), general and separable, against the
NumPy-callback path fed with a mixture score computed independently here (logsumexp)."""
import numpy as np
import pytest
from scipy.special import logsumexp

from hjsolve.grid.rates import LANES, drift_rates, mixture_rates, rate_length


def numpy_score(y, means, prec, logc):
    """(N, d) score of Σ_k exp(logc_k - ½ (y - m_k)ᵀ P_k (y - m_k)) at y (N, d)."""
    diff = y[:, None, :] - means[None]  # (N, K, d)
    scores = -np.einsum("kij,nkj->nki", prec, diff)
    log_w = logc[None] + 0.5 * np.einsum("nki,nki->nk", diff, scores)
    pi = np.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))
    return np.einsum("nk,nki->ni", pi, scores)


def frame(d, n, rng):
    """A sampler frame (μ, c, dμ/dt, dc/dt, f, g2, a) and the axis nodes z (n,)."""
    mu, c = rng.normal(size=d), 2.0 + rng.random(d)
    dmu, dc = rng.normal(size=d), -rng.random(d)
    f, g2 = 0.7, 1.3
    return (mu, c, dmu, dc, f, g2), 0.5 * g2 / c**2, np.linspace(-1.0, 1.0, n)


def rates(kernel_args, a, z, separable):
    d, n = kernel_args[0].shape[0], z.shape[0]
    shape = (2, d, rate_length((n,) * d))
    up, down = np.zeros(shape[1:]), np.zeros(shape[1:])
    mixture_rates(*kernel_args, a, z, z[1] - z[0], up, down, separable, 2)
    return up, down


def callback_rates(sampler, means, prec, logc, a, z):
    mu, c, dmu, dc, f, g2 = sampler
    d, n = mu.shape[0], z.shape[0]
    nodes = np.stack([g.ravel() for g in np.meshgrid(*([z] * d), indexing="ij")], axis=1)
    y = mu + c * nodes
    drift = (-f * y + g2 * numpy_score(y, means, prec, logc) - dmu - dc * nodes) / c
    up, down = np.zeros((d, rate_length((n,) * d))), np.zeros((d, rate_length((n,) * d)))
    drift_rates(drift, a, z[1] - z[0], n, up, down, 2)
    return up, down


def assert_same_rates(ours, truth):
    scale = max(np.max(truth[0]), np.max(truth[1]))
    for mine, theirs in zip(ours, truth):
        assert np.all(np.isfinite(mine)) and np.all(mine >= 0.0)
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("d, n", [(1, 33), (2, 37), (3, 11)])
def test_kernel_matches_numpy_score(d, n):
    rng = np.random.default_rng(d)
    K = 3
    sampler, a, z = frame(d, n, rng)
    means = rng.normal(size=(K, d))
    logc = rng.normal(size=K)
    diagonal = np.stack([np.diag(0.5 + 2.0 * rng.random(d)) for _ in range(K)])
    root = rng.normal(size=(K, d, d))
    full = np.einsum("kij,klj->kil", root, root) + 0.5 * np.eye(d)
    for prec, separable in ((diagonal, True), (diagonal, False), (full, False)):
        ours = rates((*sampler, means, prec, logc), a, z, separable)
        assert_same_rates(ours, callback_rates(sampler, means, prec, logc, a, z))


def test_separable_kernel_falls_back_where_the_axis_factors_underflow():
    """Components at (-3, 3) and (3, -3) of width 0.1: near the corners (3, 3) and (-3, -3) each
    axis' largest factor belongs to a different component, and every product of factors
    underflows (e^-1800); the separable kernel must evaluate those lines in full."""
    n = 41
    sampler = (np.zeros(2), np.full(2, 4.0), np.zeros(2), np.zeros(2), 0.5, 1.0)
    a, z = np.full(2, 0.5 / 16.0), np.linspace(-1.0, 1.0, n)
    means = np.array([[-3.0, 3.0], [3.0, -3.0]])
    prec = np.stack([np.eye(2) * 100.0] * 2)
    logc = np.log([0.5, 0.5])
    ours = rates((*sampler, means, prec, logc), a, z, True)
    assert_same_rates(ours, callback_rates(sampler, means, prec, logc, a, z))


@pytest.mark.parametrize("largest", [0.45, 60.0])
def test_fitted_rates_are_kd_times_bernoulli(largest):
    """up = kd·x eˣ/(eˣ - 1), down = kd·x/(eˣ - 1) with x = B Δz/a, against expm1, on lines
    whose |x| all stay below the series limit (0.45) and on lines that reach 60; both signs,
    |x| down to 1e-9. Reflecting ends: up = 0 at the last node, down = 0 at the first."""
    n, a, dz = 200, 0.3, 0.01
    rng = np.random.default_rng(int(largest))
    x = np.sign(rng.normal(size=n)) * np.exp(rng.uniform(np.log(1e-9), np.log(largest), size=n))
    up, down = np.zeros((1, rate_length((n,)))), np.zeros((1, rate_length((n,))))
    drift_rates((x * a / dz)[:, None], np.array([a]), dz, n, up, down, 1)
    kd = a / dz**2
    smaller = kd * np.abs(x) / np.expm1(np.abs(x))  # kd·B(|x|); kd·B(-|x|) = it + kd |x|
    expected_up = np.where(x > 0, smaller + kd * np.abs(x), smaller)
    expected_down = np.where(x > 0, smaller, smaller + kd * np.abs(x))
    expected_up[-1] = expected_down[0] = 0.0
    # the only line of a 1-D grid is the last axis' line 0: node i at i·LANES (lane-major)
    np.testing.assert_allclose(up[0, ::LANES], expected_up, rtol=1e-14, atol=0)
    np.testing.assert_allclose(down[0, ::LANES], expected_down, rtol=1e-14, atol=0)
