"""Counter-based normal streams for parallel, reproducible Monte Carlo.

Choice (issue 4): every particle i of a simulation owns its own stream, a pure function of
(key, i, m) where m counts the normals the particle has used. A 64-bit draw is
``splitmix64(base_i + p·φ)`` with ``base_i = splitmix64(key ^ splitmix64(i))`` and pair index
p = m // 2; its two 32-bit halves give two normals by Box–Muller (cos for even m, sin for odd
m). Results therefore do not depend on the number of threads or on how prange schedules the
particles, and a numpy step loop (`normals_block`) reproduces the Numba kernels' noise exactly.

Normals 0..d-1 of a particle draw its initial point (p_noise); step k (0-based) of a
simulation uses normals d(k+1) .. d(k+1)+d-1.

Python side: `stream_key(seed, *purpose)` turns a user seed and a purpose tag into the 64-bit
key through `numpy.random.SeedSequence`, so different estimators never share streams.
"""
import numpy as np
from numba import njit, prange, uint64

GOLDEN = uint64(0x9E3779B97F4A7C15)
M1 = uint64(0xBF58476D1CE4E5B9)
M2 = uint64(0x94D049BB133111EB)
TWO_PI = 2.0 * np.pi
INV_2_32 = 1.0 / 4294967296.0


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
def normal_pair(base, p):
    """The two normals of pair ``p`` of a stream (Box–Muller on two 32-bit uniforms)."""
    z = splitmix64(base + uint64(p) * GOLDEN)
    u1 = (float(z >> uint64(32)) + 0.5) * INV_2_32
    u2 = (float(z & uint64(0xFFFFFFFF)) + 0.5) * INV_2_32
    rad = np.sqrt(-2.0 * np.log(u1))
    ang = TWO_PI * u2
    return rad * np.cos(ang), rad * np.sin(ang)


@njit(cache=True, inline="always")
def normal_at(base, m):
    """Normal number ``m`` of a stream."""
    c, s = normal_pair(base, m >> 1)
    return c if (m & 1) == 0 else s


@njit(cache=True, parallel=True)
def normals_block(key, first, n, d, m0):
    """(n, d) normals m0 .. m0+d-1 of particles first .. first+n-1."""
    out = np.empty((n, d))
    for i in prange(n):
        base = particle_base(key, first + i)
        for j in range(d):
            out[i, j] = normal_at(base, m0 + j)
    return out
