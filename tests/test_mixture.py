"""Gaussian-mixture marginals, scores and posteriors against brute force."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from hjsolve.mixture import GaussianMixture

MIX = GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.2, -0.3]], [[[0.4, 0.1], [0.1, 0.3]], [[0.2, -0.05], [-0.05, 0.5]]])


def test_marginal_density_matches_scipy():
    a, var = 0.6, 0.5
    y = np.random.default_rng(0).normal(size=(10, 2))
    expected = sum(w * multivariate_normal(a * m, a * a * c + var * np.eye(2)).pdf(y)
                   for w, m, c in zip(MIX.weights, MIX.means, MIX.covs))
    np.testing.assert_allclose(np.exp(MIX.marginal(a, var).log_pdf(y)), expected, rtol=1e-12)


def test_score_is_gradient_of_log_density():
    a, var = 0.8, 0.3
    marg = MIX.marginal(a, var)
    y = np.random.default_rng(1).normal(size=(6, 2))
    eps = 1e-6
    fd = np.stack([(marg.log_pdf(y + eps * e) - marg.log_pdf(y - eps * e)) / (2 * eps) for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(MIX.score(y, a, var), fd, rtol=1e-6, atol=1e-8)


def test_posterior_matches_bayes_on_a_grid():
    """1-D: posterior mean and variance of X_0 | X_s = y by quadrature on a fine grid."""
    mix = GaussianMixture([0.4, 0.6], [[-1.5], [1.0]], [[[0.3]], [[0.5]]])
    a, var, y = 0.7, 0.4, np.array([[0.3]])
    x = np.linspace(-8, 8, 40001)
    joint = np.exp(mix.log_pdf(x[:, None])) * np.exp(-0.5 * (y[0, 0] - a * x) ** 2 / var)
    joint /= np.trapezoid(joint, x)
    mean = np.trapezoid(x * joint, x)
    second = np.trapezoid(x * x * joint, x)
    marg, gains, covs = mix.posterior(a, var)
    pi = np.exp(marg.responsibilities(y))[0]
    mus = mix.posterior_means(y, a, gains)[0, :, 0]
    assert pi @ mus == pytest.approx(mean, rel=1e-9)
    assert pi @ (covs[:, 0, 0] + mus**2) == pytest.approx(second, rel=1e-9)


def test_isotropic_detection_and_sampling():
    iso = GaussianMixture([1, 1], [[0, 0, 0], [1, 1, 1]], [0.25 * np.eye(3), 4.0 * np.eye(3)])
    np.testing.assert_allclose(iso.isotropic_vars, [0.25, 4.0])
    assert iso.max_std == pytest.approx(2.0)
    assert MIX.isotropic_vars is None
    x = MIX.sample(200_000, np.random.default_rng(3))
    mean = MIX.weights @ MIX.means
    assert np.all(np.abs(x.mean(axis=0) - mean) < 4 * x.std(axis=0) / np.sqrt(len(x)))


def test_marginal_precisions_match_the_marginal():
    rng = np.random.default_rng(3)
    root = rng.normal(size=(3, 2, 2))
    mix = GaussianMixture([0.2, 0.3, 0.5], rng.normal(size=(3, 2)), root @ np.swapaxes(root, 1, 2) + 0.1 * np.eye(2))
    scales, variances = np.array([1.0, 0.6, 0.05]), np.array([0.0, 0.64, 0.9975])
    at_once = mix.marginal_precisions(scales, variances)
    for i, (a, var) in enumerate(zip(scales, variances)):
        for mine, theirs in zip(mix.marginal_precisions(a, var), at_once):
            np.testing.assert_array_equal(mine, theirs[i])
        marg = mix.marginal(a, var)
        means, precisions, log_norms = mix.marginal_precisions(a, var)
        np.testing.assert_allclose(means, marg.means, rtol=1e-15)
        np.testing.assert_allclose(precisions, marg.cov_invs, rtol=1e-12, atol=1e-12 * np.abs(marg.cov_invs).max())
        np.testing.assert_allclose(log_norms, marg.log_weights - 0.5 * marg.cov_logdets, rtol=1e-13)
