"""The approximate control ũ* of (3.28) against u*: η, the bound (3.33) and the measured TV.

Proposition 3.7 with ν̃* = ν*: TV(Q_T^{ũ*, ν*}, p_ftune) ≤ (η/2) sqrt(∫_0^T ς(t)^{-2} dt),
η² = max_t E_{Q*_t} |ũ*(t, Y) - u*(t, Y)|². Its proof also gives the sharper
TV ≤ sqrt(KL/2) ≤ sqrt(¼ E ∫_0^T |ũ* - u*|²/ς² dt) (Girsanov + Pinsker), reported beside it.
Expectations under Q*_t come from particles of the optimally controlled process (u*, ν*).
"""
import numpy as np

from ..errors import HJSolveError
from . import tilted

HIST_BINS = 200


class ControlTable:
    """A control tabulated on a (t, y) grid in 1-D and interpolated linearly (a callable (t, y) -> (n, 1)).

    ``times`` (m,), ``xs`` (q,), ``values`` (m, q).
    """

    def __init__(self, times, xs, values):
        self.times, self.xs, self.values = np.asarray(times), np.asarray(xs), np.asarray(values)

    @classmethod
    def from_function(cls, func, times, xs):
        """Tabulate ``func(t, y (q, 1)) -> (q, 1)`` at every time."""
        return cls(times, xs, np.stack([np.asarray(func(float(t), xs[:, None]))[:, 0] for t in times]))

    def __call__(self, t, y):
        j = int(np.clip(np.searchsorted(self.times, t) - 1, 0, len(self.times) - 2))
        t0, t1 = self.times[j], self.times[j + 1]
        lam = float(np.clip((t - t0) / (t1 - t0), 0.0, 1.0))
        row = (1.0 - lam) * self.values[j] + lam * self.values[j + 1]
        return np.interp(y[:, 0], self.xs, row)[:, None]


def histogram_tv(samples, log_density, lo, hi, bins=HIST_BINS):
    """½ Σ |p̂ - p| Δx on a histogram of 1-D ``samples`` (n, 1) against a density (callable on (m, 1))."""
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(samples[:, 0], bins=edges)
    width = edges[1] - edges[0]
    fine = np.linspace(lo, hi, 8 * bins + 1)
    dens = np.exp(log_density(fine[:, None]))
    cell = np.array([np.trapezoid(dens[8 * i:8 * i + 9], fine[8 * i:8 * i + 9]) for i in range(bins)])
    inside = counts.sum() / len(samples)
    outside_true = max(0.0, 1.0 - cell.sum())
    return float(0.5 * (np.sum(np.abs(counts / len(samples) - cell)) + (1 - inside) + outside_true))


def exact_control_table(exact, n_times=41, n_points=241):
    """The exact control tabulated on a fine (t, y) grid over the plot box (1-D): a fast u*."""
    lo, hi = exact.plot_box()
    T = float(exact.problem.sde.T)
    return ControlTable.from_function(exact.control, np.linspace(0.0, T, n_times), np.linspace(lo[0], hi[0], n_points))


def proposition_3_7(problem, sampler, exact, approx_control, n, seed, tv=True, exact_control=None):
    """η, the bound (3.33), the sharper path bound and (d = 1) the measured TV of the terminal law.

    ``exact``: an `ExactSolution` (u*, ν* and p_ftune); ``approx_control``: (t, y) -> (n, d).
    Returns a dict: ``eta``, ``eta_t`` (per grid time), ``bound``, ``path_bound``, ``tv``,
    ``tv_floor`` (the same histogram TV for exact samples: the Monte Carlo noise floor),
    ``samples_approx``, ``samples_exact`` (n, d). ``exact_control`` (default ``exact.control``)
    may be a faster stand-in for u*, e.g. `exact_control_table`.
    """
    u_star = exact.control if exact_control is None else exact_control
    if problem.dimension != 1 and tv:
        raise HJSolveError("particle: the measured TV of Proposition 3.7 is computed in 1-D only")
    sched, _ = sampler.grid(0.0)
    y0 = exact.sample_initial(n, seed=seed)
    gaps = np.zeros(sched.n_steps)

    def record(k, t, y):
        gaps[k] = np.mean(np.sum((approx_control(t, y) - u_star(t, y)) ** 2, axis=1))

    x_exact = tilted.controlled(problem, sampler, u_star, y0, seed, record=record)
    sigma2 = problem.sde.sampler_sigma2(sched.times[:-1])
    dt = np.diff(sched.times)
    eta = float(np.sqrt(gaps.max()))
    out = {"eta": eta, "eta_t": np.sqrt(gaps), "times": sched.times[:-1],
           "bound": 0.5 * eta * float(np.sqrt(np.sum(dt / sigma2))),
           "path_bound": float(np.sqrt(0.25 * np.sum(dt * gaps / sigma2))),
           "samples_exact": x_exact}
    x_approx = tilted.controlled(problem, sampler, approx_control, y0, seed + 1)
    out["samples_approx"] = x_approx
    if tv:
        lo, hi = exact.plot_box()
        out["tv"] = histogram_tv(x_approx, exact.terminal_log_density, lo[0], hi[0])
        out["tv_floor"] = histogram_tv(exact.sample(n, seed=seed + 2), exact.terminal_log_density, lo[0], hi[0])
    return out
