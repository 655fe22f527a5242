"""The backward and forward passes for a Gaussian-mixture score, looping over the steps in Numba.

`hjsolve.grid.passes` drives a pass from Python, one step at a time. For a mixture score on
one thread (the two passes side by side, or Numba on one thread) these functions take the same
steps with the same kernels (`rates.mixture_rates_in_thread`, `sweeps.sweep`), so the results
are identical, but no Python runs between the steps. From Python a step costs about 50 µs per
pass in calls and bookkeeping, and the two passes side by side take the GIL in turn.

Per-step arguments come stacked over the steps (`Generator.prepare` at the steps' midpoints);
``factors`` are `passes.step_factors` as arrays (F, 3) of (axis, fraction of Δs, θ). The
caller makes one call per chunk of steps (`passes._chunks`), so that Ctrl-C is handled between
them.
"""
import numpy as np
from numba import njit

from .kernels import normalise
from .rates import mixture_rates_in_thread
from .sweeps import sweep


@njit(cache=True, nogil=True, error_model="numpy")
def _step(u, k, ds, factors, transpose, scale, arguments, z, dz, separable, rates):
    """S_k (or S_kᵀ) applied to scale·u, u flat (n^d,), with the rates of step k written to
    rates (2, d, L) first (`Generator.rates`, `passes.apply_step`)."""
    mu, c, dmu, dc, f, g2, means, prec, logc, diffusion = arguments
    d, n = mu.shape[1], z.shape[0]
    mixture_rates_in_thread(mu[k], c[k], dmu[k], dc[k], f[k], g2[k], means[k], prec[k], logc[k], diffusion[k], z,
                            dz, rates[0], rates[1], separable)
    count = factors.shape[0]
    for m in range(count):
        axis, fraction, theta = factors[count - 1 - m] if transpose else factors[m]
        a = int(axis)
        sweep(u, rates[0, a], rates[1, a], n ** a, n, n ** (d - 1 - a), fraction * ds, theta, transpose,
              scale if m == 0 else 1.0)


@njit(cache=True, nogil=True, error_model="numpy")
def backward(h, out, offset, scale, first, stop, s, save_every, plain, start, rannacher, floor, arguments, z, dz,
             separable, rates):
    """Steps ``first`` to ``stop`` - 1 of `passes.backward` on h (n^d,), h̃ = scale·h e^{offset},
    writing the saved levels among them into out (L, n^d) (`normalise`). Returns the offset and
    scale after them; the scale is NaN if Σ h stopped being positive and finite."""
    for k in range(first, stop):
        _step(h, k, s[k + 1] - s[k], start if k < rannacher else plain, False, scale, arguments, z, dz, separable,
              rates)
        offset, scale = normalise(h, k, save_every, floor, offset, out)
        if np.isnan(scale):
            break
    return offset, scale


@njit(cache=True, nogil=True, error_model="numpy")
def forward(m, out, first, stop, s, save_every, plain, start, rannacher, arguments, z, dz, separable, rates):
    """Steps ``stop`` - 1 down to ``first`` of `passes.forward` on the masses m (n^d,), writing
    the saved levels among them into out (L, n^d)."""
    for k in range(stop - 1, first - 1, -1):
        _step(m, k, s[k + 1] - s[k], start if k < rannacher else plain, True, 1.0, arguments, z, dz, separable,
              rates)
        if k % save_every == 0:
            out[k // save_every] = m
