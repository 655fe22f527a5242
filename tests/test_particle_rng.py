"""The counter-based ziggurat normals against the normal law: the tables' construction,
moments, a Kolmogorov–Smirnov test, and the rare wedge and tail paths (rates in units of their
binomial standard error)."""
import math

import numpy as np
from scipy import stats

from hjsolve.particle.rng import (ZIG_K, ZIGGURAT_LAYERS, normal_at, normals_block, normals_fill,
                                  particle_base, stream_key, ziggurat_tables)
from numba import njit


def test_ziggurat_layers_have_equal_areas():
    area, x = ziggurat_tables()
    layers = x[1:-1] * (np.exp(-0.5 * x[2:] ** 2) - np.exp(-0.5 * x[1:-1] ** 2))
    # layers 1..255, the top one [0, x_255] × [f(x_255), 1] included; layer 0 holds the tail
    np.testing.assert_allclose(layers, area, rtol=1e-12)
    assert 0.985 < np.mean(ZIG_K / 2.0**52) < 0.995  # share of draws accepted without a wedge test


def test_normals_are_standard():
    z = normals_block(stream_key(0, 2), 0, 500_000, 2, 0)
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(np.mean(z[:, 0] * z[:, 1])) < 4 / np.sqrt(len(z))
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    assert abs(stats.kurtosis(z.ravel())) < 4 * np.sqrt(24 / n)


def test_tails_and_wedges_have_the_normal_rates():
    """P(|Z| > r) for r at the tail start R, in the tail, and inside a wedge-heavy band."""
    z = np.abs(normals_block(stream_key(7), 0, 2_000_000, 2, 5).ravel())
    for r in (1.0, 2.5, 3.6541528853610088, 4.5):
        p = math.erfc(r / math.sqrt(2))
        assert abs(np.mean(z > r) - p) < 4 * math.sqrt(p * (1 - p) / z.size), r


@njit
def _fill(key, n, m):
    base = np.empty(n, dtype=np.uint64)
    for i in range(n):
        base[i] = particle_base(key, i)
    z = np.empty(n)
    rejected = np.empty(n, dtype=np.bool_)
    normals_fill(base, m, n, z, rejected)
    return z, rejected


@njit
def _at(key, n, m):
    out = np.empty(n)
    for i in range(n):
        out[i] = normal_at(particle_base(key, i), m)
    return out


def test_block_fill_equals_the_scalar_stream():
    key = stream_key(1, 9)
    z, rejected = _fill(key, 100_000, 11)
    np.testing.assert_array_equal(z, _at(key, 100_000, 11))
    assert 0.005 < rejected.mean() < 0.02  # the wedge/tail path was exercised
    assert ZIGGURAT_LAYERS == 256
