"""Backward (Feynman–Kac) and forward (Fokker–Planck) passes on the z-grid.

Time grid: s = T - t from 0 to T in nt steps, graded towards s = 0 (`TimeGrid`). One step S_k
maps h(t = T - s_k) to h(T - s_{k+1}) (backward in t); it is a Strang splitting of per-axis
θ-steps with the rates frozen at the step's midpoint (second order in Δs; no CFL restriction:
each factor is implicit):  S_k = A_0(Δs/2) ⋯ A_{d-2}(Δs/2) A_{d-1}(Δs) A_{d-2}(Δs/2) ⋯ A_0(Δs/2), with
A_i(τ) = (I - τ/2 L_i)⁻¹ (I + τ/2 L_i) (Crank–Nicolson). The first `RANNACHER` steps are
split into two halves with θ = 1 (backward Euler) to damp the stiff modes of exp(r_eff).

The forward pass applies S_kᵀ (the same factors with Lᵀ, in reverse order) to node masses,
from p_noise at t = 0 to p_pre at t = T. Hence Σ h(t)·m(t) is the same at every t, exactly:
the two ways of computing log C (∫ h(0)·p_noise and ∫ exp(r_eff)·p_pre) agree to round-off.

Log space: h is rescaled by its sum after every step and the log of the factor is kept
(`offset`), so r_eff of any size is fine; log h is stored as log(max(h, `FLOOR`)) + offset,
so values below e^{-690} of the sum are floored (far outside the mass of Q*_t). The next
step's first sweep applies the factor (`axis_step`'s ``scale``), not a pass over h of its own
(`kernels.normalise`).
"""
import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ..threads import thread_count, use_threads
from . import mixture_passes
from .coefficients import Generator
from .kernels import floored_log, normalise
from .sweeps import axis_step

RANNACHER = 2
FLOOR = 1e-300
CHUNK_CELL_STEPS = 2**24


def step_factors(d, rannacher):
    """[(axis, fraction of Δs, θ)] of one step, in the order applied to h."""
    strang = [(k, 0.5) for k in range(d - 1)] + [(d - 1, 1.0)] + [(k, 0.5) for k in range(d - 2, -1, -1)]
    if not rannacher:
        return [(k, f, 0.5) for k, f in strang]
    return [(k, 0.5 * f, 1.0) for k, f in strang] * 2


def axis_view_shape(shape, axis):
    """(P, n_axis, Q) view of a C-ordered grid array for a sweep along ``axis``."""
    return (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))


def apply_step(u, rates, factors, ds, transpose, threads, scale=1.0):
    """Apply S_k (or S_kᵀ with ``transpose``) to scale·u, u the grid array (n,)*d, in place.

    rates : (up, down) from `Generator.rates`. ``threads`` > 1: parallel sweeps on Numba's
    thread count, which the caller sets (``with use_threads(...)``); 1: in the calling thread.
    """
    flat = u.reshape(-1)
    up, down = rates
    for axis, fraction, theta in (factors[::-1] if transpose else factors):
        P, n, Q = axis_view_shape(u.shape, axis)
        axis_step(flat, up[axis], down[axis], P, n, Q, fraction * ds, theta, transpose, threads, scale)
        scale = 1.0


class TimeGrid:
    """Steps in s = T - t, graded towards s = 0; levels saved every ``save_every`` steps.

    s_k = T φ(k / nt) with φ(σ) = (1 - g) σ + g σ², g = ``grading`` ∈ [0, 1] (0: uniform).
    Near t = T the pretrained marginals are as sharp as the data and change fastest (var(s)
    grows from 0), so the local error of the frozen-rate splitting is largest there; graded
    steps put the small ones there at no extra cost. Level j is at σ = j·save_every/nt, and
    time interpolation is cubic in σ (`sigma`), in which log h is smooth.
    """

    def __init__(self, T, nt, save_every, grading=0.0):
        self.T, self.nt, self.save_every = float(T), int(nt), int(save_every)
        self.grading = float(grading)
        self.levels = self.nt // self.save_every + 1
        self.s = self.T * self.phi(np.arange(self.nt + 1) / self.nt)

    def phi(self, sigma):
        g = self.grading
        return (1.0 - g) * sigma + g * sigma * sigma

    def sigma(self, t):
        """σ ∈ [0, 1] of sampler time t (the inverse of φ at s = T - t)."""
        u = min(max((self.T - float(t)) / self.T, 0.0), 1.0)
        g = self.grading
        return 2.0 * u / ((1.0 - g) + np.sqrt((1.0 - g) ** 2 + 4.0 * g * u)) if u > 0.0 else 0.0

    def step(self, k):
        """(Δs_k, sampler time of the midpoint) of step k, from s_k to s_{k+1}."""
        return self.s[k + 1] - self.s[k], self.T - 0.5 * (self.s[k] + self.s[k + 1])

    @property
    def midpoints(self):
        """(nt,) sampler times of the steps' midpoints (those of `step`)."""
        return self.T - 0.5 * (self.s[:-1] + self.s[1:])

    @property
    def ds(self):
        """T / nt: the step of a uniform grid (grading 0)."""
        return self.T / self.nt

    @property
    def level_times(self):
        """(L,) sampler times of the saved levels, decreasing from T to 0."""
        return self.T - self.s[::self.save_every]


def solve_passes(problem, domain, time_grid, log_h_terminal, mass_initial, cache_bytes):
    """(log h̃ (L, N) from `backward`, node masses (L, N) from `forward`).

    The passes are independent when the rates are recomputed in each (a Gaussian mixture):
    with 2 or 3 threads for Numba they then run side by side, one thread each (the backward
    pass in the calling thread), each looping in Numba (`mixture_passes`), so that no
    kernel pays for a parallel region (on 2 cores, 1.25-1.6x faster than the passes in turn
    with parallel kernels, from 121^2 to 481^2). Otherwise (a python score, whose rates the
    forward pass takes from the backward pass' cache, or 4+ threads) they run in turn, each
    kernel on up to all threads (`thread_count`).
    """
    generator = Generator(problem, domain, cache_bytes)
    if generator.mixture is not None and 2 <= numba.config.NUMBA_NUM_THREADS < 4:
        stop = threading.Event()  # set if the backward pass fails or is interrupted (Ctrl-C)
        mass = _forward_thread().submit(forward, Generator(problem, domain), time_grid, mass_initial, 1, stop)
        try:
            log_h = backward(generator, time_grid, log_h_terminal, 1)
        except BaseException:
            stop.set()
            raise
        return log_h, mass.result()
    cells = domain.n**domain.d
    with use_threads(cells):
        return (backward(generator, time_grid, log_h_terminal, thread_count(cells)),
                forward(generator, time_grid, mass_initial, thread_count(cells)))


@functools.cache
def _forward_thread():
    """The thread that runs the forward pass beside the backward pass, started once per process
    (starting a thread took 2-5 ms here). A forked child starts its own: the parent's thread does
    not exist there."""
    return ThreadPoolExecutor(1, thread_name_prefix="hjsolve-forward")


os.register_at_fork(after_in_child=_forward_thread.cache_clear)


def backward(generator, time_grid, log_h_terminal, threads):
    """log h̃ at the saved levels, (L, N), from log h(T) = r_eff on the nodes (N,). ``threads``:
    as in `apply_step`; a mixture score on one thread runs in Numba, a chunk of steps per call
    (`mixture_passes.backward`, `_chunks`)."""
    top = float(np.max(log_h_terminal))
    h = np.exp(log_h_terminal - top)
    out = np.empty((time_grid.levels, h.size))
    floored_log(h, FLOOR, top, out[0])
    generator.prepare(time_grid.midpoints)
    if generator.mixture is not None and threads == 1:
        ok = _backward_in_numba(generator, time_grid, h, top, out)
    else:
        ok = _backward_steps(generator, time_grid, h.reshape(generator.domain.shape), top, out, threads)
    if not ok:
        from ..errors import HJSolveError
        raise HJSolveError("grid: h lost positivity in the backward pass; refine the grid or time steps")
    return out


def _backward_in_numba(generator, time_grid, h, offset, out):
    """The steps of `backward` for a mixture score on one thread; False if h lost positivity."""
    fixed = (time_grid.s, time_grid.save_every, *_factor_arrays(generator), RANNACHER, FLOOR,
             *_mixture_arguments(generator))
    scale = 1.0
    for first, last in _chunks(time_grid.nt, h.size):
        offset, scale = mixture_passes.backward(h, out, offset, scale, first, last, *fixed)
        if np.isnan(scale):
            return False
    return True


def _chunks(steps, cells):
    """The ranges of steps [(first, stop)] of a pass' Numba calls: about `CHUNK_CELL_STEPS`
    cell-steps each (a fraction of a second), so that Python handles Ctrl-C (and the forward
    pass its ``stop``) between them, at a cost of a few µs per call."""
    size = max(1, CHUNK_CELL_STEPS // cells)
    return [(first, min(first + size, steps)) for first in range(0, steps, size)]


def _backward_steps(generator, time_grid, h, offset, out, threads):
    """The steps of `backward` from Python, one at a time; False if h lost positivity."""
    plain, start = step_factors(h.ndim, False), step_factors(h.ndim, True)
    scale = 1.0
    for k in range(time_grid.nt):
        ds, t = time_grid.step(k)
        apply_step(h, generator.rates(t, threads), start if k < RANNACHER else plain, ds, False, threads, scale)
        offset, scale = normalise(h.reshape(-1), k, time_grid.save_every, FLOOR, offset, out)
        if np.isnan(scale):
            return False
    return True


def forward(generator, time_grid, mass_initial, threads, stop=None):
    """Node masses of Q_t at the saved levels, (L, N), from the masses of p_noise (N,).
    ``threads``: as in `backward`. ``stop``: a `threading.Event` that ends the pass between
    chunks of steps, its output then incomplete (the backward pass beside it failed)."""
    m = np.array(mass_initial, dtype=float)
    out = np.empty((time_grid.levels, m.size))
    out[-1] = m
    generator.prepare(time_grid.midpoints)
    every = time_grid.save_every
    if generator.mixture is not None and threads == 1:
        fixed = (time_grid.s, every, *_factor_arrays(generator), RANNACHER, *_mixture_arguments(generator))
        for first, last in _chunks(time_grid.nt, m.size)[::-1]:
            if stop is not None and stop.is_set():
                break
            mixture_passes.forward(m, out, first, last, *fixed)
        return out
    m = m.reshape(generator.domain.shape)
    plain, start = step_factors(m.ndim, False), step_factors(m.ndim, True)
    for k in range(time_grid.nt - 1, -1, -1):
        if stop is not None and stop.is_set():
            break
        ds, t = time_grid.step(k)
        apply_step(m, generator.rates(t, threads), start if k < RANNACHER else plain, ds, True, threads)
        if k % every == 0:
            out[k // every] = m.reshape(-1)
    return out


def _factor_arrays(generator):
    """`step_factors` of the plain and the starting steps as arrays (F, 3)."""
    d = generator.domain.d
    return np.array(step_factors(d, False), dtype=float), np.array(step_factors(d, True), dtype=float)


def _mixture_arguments(generator):
    """The prepared per-step arguments, nodes, Δz, separability and a rate buffer of `mixture_passes`."""
    return (generator.stacked, generator.axis_nodes, generator.domain.dz, generator.separable,
            np.zeros(generator.shape))
