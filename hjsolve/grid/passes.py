"""Backward (Feynman–Kac) and forward (Fokker–Planck) passes on the z-grid.

Time grid: uniform in s = T - t, s_k = k Δs, k = 0..nt. One step S_k maps h(t = T - s_k) to
h(T - s_{k+1}) (backward in t); it is a Strang splitting of per-axis θ-steps with the rates
frozen at the step's midpoint (second order in Δs; no CFL restriction: each factor is
implicit):  S_k = A_0(Δs/2) ⋯ A_{d-2}(Δs/2) A_{d-1}(Δs) A_{d-2}(Δs/2) ⋯ A_0(Δs/2), with
A_i(τ) = (I - τ/2 L_i)⁻¹ (I + τ/2 L_i) (Crank–Nicolson). The first `RANNACHER` steps are
split into two halves with θ = 1 (backward Euler) to damp the stiff modes of exp(r_eff).

The forward pass applies S_kᵀ (the same factors with Lᵀ, in reverse order) to node masses,
from p_noise at t = 0 to p_pre at t = T. Hence Σ h(t)·m(t) is the same at every t, exactly:
the two ways of computing log C (∫ h(0)·p_noise and ∫ exp(r_eff)·p_pre) agree to round-off.

Log space: h is rescaled by its maximum after every step and the log of the factor is kept
(`offset`), so r_eff of any size is fine; log h is stored as log(max(h, `FLOOR`)) + offset,
so values below e^{-690} of the maximum are floored (far outside the mass of Q*_t).
"""
import numpy as np

from .coefficients import axis_view_shape
from .kernels import axis_step, use_threads

RANNACHER = 2
FLOOR = 1e-300


def step_factors(d, rannacher):
    """[(axis, fraction of Δs, θ)] of one step, in the order applied to h."""
    strang = [(k, 0.5) for k in range(d - 1)] + [(d - 1, 1.0)] + [(k, 0.5) for k in range(d - 2, -1, -1)]
    if not rannacher:
        return [(k, f, 0.5) for k, f in strang]
    return [(k, 0.5 * f, 1.0) for k, f in strang] * 2


def apply_step(u, rates, factors, ds, transpose):
    """Apply S_k (or S_kᵀ with ``transpose``) to the grid array u in place."""
    order = factors[::-1] if transpose else factors
    use_threads(u.size)
    for axis, fraction, theta in order:
        view = u.reshape(axis_view_shape(u.shape, axis))
        up, down = rates[axis]
        axis_step(view, up, down, fraction * ds, theta, transpose)


class TimeGrid:
    """Uniform steps in s; levels saved every ``save_every`` steps (level j at t = T - j Δs_save)."""

    def __init__(self, T, nt, save_every):
        self.T, self.nt, self.save_every = float(T), int(nt), int(save_every)
        self.ds = self.T / self.nt
        self.levels = self.nt // self.save_every + 1

    def mid_time(self, k):
        return self.T - (k + 0.5) * self.ds

    @property
    def level_times(self):
        """(L,) sampler times of the saved levels, decreasing from T to 0."""
        return self.T - np.arange(self.levels) * self.save_every * self.ds


def backward(generator, time_grid, log_h_terminal):
    """log h̃ at the saved levels, (L, N), from log h(T) = r_eff on the nodes (N,)."""
    shape = generator.domain.shape
    top = float(np.max(log_h_terminal))
    h = np.exp(log_h_terminal - top).reshape(shape)
    offset = top
    out = np.empty((time_grid.levels, h.size))
    out[0] = _log(h, offset)
    d = len(shape)
    for k in range(time_grid.nt):
        rates = generator.rates(time_grid.mid_time(k))
        apply_step(h, rates, step_factors(d, k < RANNACHER), time_grid.ds, transpose=False)
        top = float(np.max(h))
        if not top > 0.0 or not np.isfinite(top):
            from ..errors import HJSolveError
            raise HJSolveError("grid: h lost positivity in the backward pass; refine the grid or time steps")
        h /= top
        offset += np.log(top)
        if (k + 1) % time_grid.save_every == 0:
            out[(k + 1) // time_grid.save_every] = _log(h, offset)
    return out


def forward(generator, time_grid, mass_initial):
    """Node masses of Q_t at the saved levels, (L, N), from the masses of p_noise (N,)."""
    shape = generator.domain.shape
    m = mass_initial.reshape(shape).copy()
    out = np.empty((time_grid.levels, m.size))
    out[-1] = m.ravel()
    d = len(shape)
    for k in range(time_grid.nt - 1, -1, -1):
        rates = generator.rates(time_grid.mid_time(k))
        apply_step(m, rates, step_factors(d, k < RANNACHER), time_grid.ds, transpose=True)
        if k % time_grid.save_every == 0:
            out[k // time_grid.save_every] = m.ravel()
    return out


def _log(h, offset):
    return np.log(np.maximum(h.ravel(), FLOOR)) + offset
