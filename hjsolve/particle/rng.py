"""Counter-based normal streams for parallel, reproducible Monte Carlo.

Choice (issue 4): every particle i of a simulation owns its own stream, a pure function of
(key, i, m) where m counts the normals the particle has used. Normal m is drawn from the 64-bit
word ``splitmix64(base_i + m·φ)`` with ``base_i = splitmix64(key ^ splitmix64(i))``, by the
256-layer ziggurat of Marsaglia & Tsang (2000): 8 bits choose a layer, 1 bit the sign and 52 bits
the abscissa, and 98.8 % of draws are accepted at once with one multiply and one compare. The
rare rest (wedges and the tail beyond R) draws further words from a second counter stream of
(i, m), so normal m is still a pure function of (key, i, m). Results therefore do not depend on
the number of threads or on how prange schedules the particles, and a numpy step loop
(`normals_block`) reproduces the Numba kernels' noise exactly. `normals_fill` draws one normal
for a whole block of particles in a loop that LLVM vectorises (the accepted fast path), then
finishes the rejected ones.

Normals 0..d-1 of a particle draw its initial point (p_noise); step k (0-based) of a
simulation uses normals d(k+1) .. d(k+1)+d-1.

Python side: `stream_key(seed, *purpose)` turns a user seed and a purpose tag into the 64-bit
key through `numpy.random.SeedSequence`, so different estimators never share streams.
"""
import math

import numpy as np
from numba import int64, njit, prange, uint64

from ..threads import use_threads

GOLDEN = uint64(0x9E3779B97F4A7C15)
M1 = uint64(0xBF58476D1CE4E5B9)
M2 = uint64(0x94D049BB133111EB)
#: Offsets the second (rejection) stream of a particle from its first.
SLOW_KEY = uint64(0xD1B54A32D192ED03)
#: Words of the rejection stream reserved per normal (the chance of needing more is < 1e-150).
SLOW_WORDS = uint64(64)
TWO_52 = 2.0**52
INV_2_53 = 1.0 / 2.0**53

#: Ziggurat with 256 layers of equal area ZIGGURAT_AREA under f(x) = exp(-x²/2) (x ≥ 0),
#: the base layer including the tail beyond ZIGGURAT_R (Marsaglia & Tsang 2000).
ZIGGURAT_LAYERS = 256
ZIGGURAT_R = 3.6541528853610088


def _gauss(x):
    return np.exp(-0.5 * x * x)


def ziggurat_tables(r=ZIGGURAT_R, layers=ZIGGURAT_LAYERS):
    """(area, x (layers+1,)) of the ziggurat: layer i is [0, x_i] × [f(x_i), f(x_{i+1})], with
    x_0 = area/f(r) (the base layer and tail as one box), x_1 = r, x_layers = 0."""
    area = r * _gauss(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
    x = np.empty(layers + 1)
    x[0], x[1] = area / _gauss(r), r
    for i in range(1, layers - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(area / x[i] + _gauss(x[i])))
    x[layers] = 0.0
    return area, x


_AREA, _X = ziggurat_tables()
#: 52-bit acceptance thresholds, abscissa scales and heights f(x_i) of the layers.
ZIG_K = np.floor(TWO_52 * _X[1:] / _X[:-1]).astype(np.uint64)
ZIG_W = _X[:-1] / TWO_52
ZIG_F = _gauss(_X)


def stream_key(seed, *purpose):
    """A 64-bit stream key (numpy uint64) from ``seed`` and integer purpose tags."""
    seq = np.random.SeedSequence(int(seed), spawn_key=tuple(int(p) for p in purpose))
    return np.uint64(seq.generate_state(1, dtype=np.uint64)[0])


@njit(cache=True, inline="always")
def splitmix64(x):
    z = x + GOLDEN
    z = (z ^ (z >> uint64(30))) * M1
    z = (z ^ (z >> uint64(27))) * M2
    return z ^ (z >> uint64(31))


@njit(cache=True, inline="always")
def particle_base(key, i):
    """The base state of particle ``i``'s stream."""
    return splitmix64(key ^ splitmix64(uint64(i)))


@njit(cache=True, inline="always")
def _word(base, m):
    """The 64-bit word of normal ``m``."""
    return splitmix64(base + uint64(m) * GOLDEN)


@njit(cache=True, inline="always")
def _slow_uniform(base, m, j):
    """Uniform (0, 1) number j of normal m's rejection stream."""
    z = splitmix64((base ^ SLOW_KEY) + (uint64(m) * SLOW_WORDS + uint64(j)) * GOLDEN)
    return (float(z >> uint64(11)) + 0.5) * INV_2_53


@njit(cache=True)
def _finish(base, m, word):
    """Normal ``m`` whose first word fell outside its layer's core: the wedge test, the tail
    (Marsaglia's exponential method beyond R), or a fresh ziggurat draw, until accepted."""
    j = 0
    while True:
        layer = int64(word & uint64(255))
        negative = (word & uint64(256)) != uint64(0)
        bits = word >> uint64(12)
        x = float(bits) * ZIG_W[layer]
        if bits < ZIG_K[layer]:
            return -x if negative else x
        if layer == 0:
            while True:
                tail = -math.log(_slow_uniform(base, m, j)) / ZIGGURAT_R
                height = -math.log(_slow_uniform(base, m, j + 1))
                j += 2
                if height + height > tail * tail:
                    return -(ZIGGURAT_R + tail) if negative else ZIGGURAT_R + tail
        u = _slow_uniform(base, m, j)
        j += 1
        if ZIG_F[layer] + u * (ZIG_F[layer + 1] - ZIG_F[layer]) < math.exp(-0.5 * x * x):
            return -x if negative else x
        word = splitmix64((base ^ SLOW_KEY) + (uint64(m) * SLOW_WORDS + uint64(j)) * GOLDEN)
        j += 1


@njit(cache=True, inline="always")
def normal_at(base, m):
    """Normal number ``m`` of a stream."""
    word = _word(base, m)
    layer = int64(word & uint64(255))
    bits = word >> uint64(12)
    if bits < ZIG_K[layer]:
        x = float(bits) * ZIG_W[layer]
        return -x if (word & uint64(256)) != uint64(0) else x
    return _finish(base, m, word)


@njit(cache=True, inline="always")
def normals_fill(base, m, w, z, rejected):
    """z[i] = normal m of stream base[i] for i < w (base (B,) uint64, z (B,), rejected (B,) bool)."""
    for i in range(w):
        word = _word(base[i], m)
        layer = int64(word & uint64(255))
        bits = word >> uint64(12)
        z[i] = (1.0 - float((word >> uint64(7)) & uint64(2))) * float(bits) * ZIG_W[layer]
        rejected[i] = bits >= ZIG_K[layer]
    for i in range(w):
        if rejected[i]:
            z[i] = _finish(base[i], m, _word(base[i], m))


def normals_block(key, first, n, d, m0):
    """(n, d) normals m0 .. m0+d-1 of particles first .. first+n-1, on as many threads as the
    n·d normals pay for (the numpy step loops ask for a block of a few hundred rows per step:
    two threads cost milliseconds per call there on a busy machine, one costs microseconds)."""
    with use_threads(n * d):
        return _normals_block(key, first, n, d, m0)


@njit(cache=True, parallel=True)
def _normals_block(key, first, n, d, m0):
    out = np.empty((n, d))
    for i in prange(n):
        base = particle_base(key, first + i)
        for j in range(d):
            out[i, j] = normal_at(base, m0 + j)
    return out
