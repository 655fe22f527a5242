"""The vectorisable exp and log against numpy's."""
import numpy as np
from numba import njit

from hjsolve.vexp import exp, exp_estrin, log


@njit
def _exp(x, estrin=False):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = exp_estrin(x[i]) if estrin else exp(x[i])
    return out


def test_exp_matches_numpy_to_a_few_ulp():
    x = np.concatenate([np.linspace(-708.0, 709.0, 1_000_001), np.random.default_rng(0).normal(0, 5, 100_000),
                        [0.0, -0.0, 1e-300, -1e-300, 0.5 * np.log(2), -0.5 * np.log(2)]])
    np.testing.assert_allclose(_exp(x), np.exp(x), rtol=3e-16, atol=0)


def test_exp_clamps_instead_of_overflowing():
    out = _exp(np.array([-1e4, -709.5, 710.0, 1e4]))
    assert np.all(np.isfinite(out)) and np.all(out > 0)
    np.testing.assert_allclose(out, np.exp([-708.0, -708.0, 709.0, 709.0]), rtol=3e-16)


def test_estrin_exp_matches_numpy_to_two_ulp():
    x = np.concatenate([np.linspace(-708.0, 709.0, 1_000_001), np.random.default_rng(1).normal(0, 5, 100_000)])
    np.testing.assert_allclose(_exp(x, True), np.exp(x), rtol=5e-16, atol=0)


@njit
def _log(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = log(x[i])
    return out


def test_log_matches_numpy_to_an_ulp():
    rng = np.random.default_rng(2)
    x = np.concatenate([np.exp(rng.uniform(-700.0, 709.0, 1_000_000)), 1.0 + rng.normal(0, 1e-3, 100_000),
                        np.nextafter(np.sqrt(2.0), [0.0, 3.0]), [1.0, 2.0, 0.5, 1e-300, 2.2250738585072014e-308,
                                                              1.7976931348623157e308, np.e]])
    expected = np.log(x)
    np.testing.assert_allclose(_log(x), expected, rtol=2.3e-16, atol=1e-300)
    assert _log(np.array([1.0]))[0] == 0.0
