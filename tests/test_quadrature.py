"""Gauss–Hermite rules: exact on polynomials, reduced rule against closed-form Gaussian integrals."""
import numpy as np
import pytest

from hjsolve.quadrature import gauss_hermite, orthonormal_basis, reduced_isotropic_rule, tensor_rule


def test_tensor_rule_moments():
    nodes, log_w = gauss_hermite(6, 2)
    w = np.exp(log_w)
    assert w.sum() == pytest.approx(1.0)
    assert w @ nodes[:, 0] ** 4 == pytest.approx(3.0)
    assert w @ (nodes[:, 0] ** 2 * nodes[:, 1] ** 2) == pytest.approx(1.0)
    pts, lw = tensor_rule(np.array([[1.0, 2.0]]), 0.5, 5)
    np.testing.assert_allclose(np.exp(lw) @ pts[0], [1.0, 2.0])


@pytest.mark.parametrize("d", [4, 7, 30])
def test_reduced_rule_on_gaussian_integrals(d):
    rng = np.random.default_rng(d)
    basis = orthonormal_basis(rng.normal(size=(2, d)), d)
    centers = rng.normal(size=(3, d))
    var, lam = 0.6, 0.9
    z = basis @ np.array([0.4, -0.2])  # a point in the span
    pts, log_w = reduced_isotropic_rule(centers, var, basis, 16, 24)
    got = np.exp(log_w) @ np.exp(-0.5 * lam * np.sum((pts - z) ** 2, axis=-1)).T
    A = 1 + lam * var
    expected = A ** (-d / 2) * np.exp(-0.5 * lam * np.sum((centers - z) ** 2, axis=1) / A)
    np.testing.assert_allclose(got, expected, rtol=1e-8)
