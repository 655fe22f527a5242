"""Comparison of a solution with a reference one (numpy only; usable without torch).

- `bridge_samples`: exact draws of Q*_t, the optimally controlled marginal (3.21).
  Under Q* = Q^{u*,ν*} the path given (Y_0, Y_T) is the pretrained bridge (an h-transform
  keeps bridges), and with the exact mixture score the pretrained sampler is the time reversal
  of the forward SDE, whose bridge is Gaussian: with s = T - t, X_s | X_0 = x, X_T = y_0 is
          N( (w a(s) x + c var(s) y_0)/var(T),  var(s) w/var(T) ),
  c = a(T)/a(s), w = var(T) - c² var(s). Exact (Y_T, Y_0) pairs come from
  `ExactSolution.sample_pairs`.
- `controlled_marginals`: draws of Q*_t for any reference solution (a grid solution where no
  closed form exists): Euler–Maruyama of the controlled SDE (3.9) under the reference's own
  control, from its ν*.
- `reference_marginals`: exact bridges for an exact reference, else `controlled_marginals`.
- `weighted_relative_l2`: sqrt(Σ_t E_{Q*_t}|u - u*|² / Σ_t E_{Q*_t}|u*|²) over a uniform
  midpoint time grid: the weighted relative L2 error of a control over (t, Q*_t).
- `energy_distance` and `two_sample_pvalue` for terminal samples.
"""
import numpy as np
from scipy.stats import ks_2samp


def bridge_coefficients(sde, t):
    """(weight of Y_T, weight of Y_0, standard deviation) of the Gaussian bridge at sampler
    times t (scalar or (K,)): Y_t | (Y_0, Y_T) = N(w_T Y_T + w_0 Y_0, std²) (module docstring)."""
    T = float(sde.T)
    s = T - np.asarray(t, dtype=float)
    a_s, v_s = np.asarray(sde.a(s), dtype=float) * np.ones_like(s), np.asarray(sde.var(s), dtype=float)
    a_T, v_T = float(sde.a(T)), float(sde.var(T))
    c = a_T / a_s
    w = v_T - c * c * v_s
    return w * a_s / v_T, c * v_s / v_T, np.sqrt(np.maximum(v_s * w / v_T, 0.0))


def bridge_samples(sde, x_T, y_0, t, rng):
    """(n, d) draws of Q*_t from exact pairs x_T = Y_T (n, d), y_0 = Y_0 (n, d) (module docstring)."""
    weight_T, weight_0, std = (float(v) for v in bridge_coefficients(sde, float(t)))
    return weight_T * x_T + weight_0 * y_0 + std * rng.standard_normal(x_T.shape)


def evaluation_times(T, count=20):
    """(count,) midpoints (k + ½) T / count."""
    return (np.arange(count) + 0.5) * float(T) / count


def controlled_marginals(reference, times, n, seed, max_dt):
    """[(t, (n, d) draws of Q*_t)] at increasing ``times`` ≥ 0: Euler–Maruyama of (3.9) with the
    reference's control from n draws of its ν* (steps ≤ ``max_dt``, ending on every time)."""
    problem = reference.problem
    rng = np.random.default_rng(seed)
    y, t, out = reference.sample_initial(n, seed=seed), 0.0, []
    for target in times:
        m = int(np.ceil((target - t) / max_dt - 1e-9))
        dt = (target - t) / m if m else 0.0
        for _ in range(m):
            sigma2 = float(problem.sde.sampler_sigma2(t))
            _, u = reference.value_and_control(t, y)
            y = y + (problem.sampler_drift(t, y) + u) * dt + np.sqrt(sigma2 * dt) * rng.standard_normal(y.shape)
            t += dt
        t = float(target)
        out.append((t, y.copy()))
    return out


def reference_marginals(reference, times, n, seed=0, max_dt=None):
    """[(t, (n, d) draws of Q*_t)]: exact bridges when ``reference`` is the exact solution, else
    `controlled_marginals` with steps ≤ ``max_dt`` (default T/200)."""
    sde = reference.problem.sde
    if reference.method == "exact":
        rng = np.random.default_rng(seed)
        x_T, y_0 = reference.sample_pairs(n, seed=seed)
        return [(t, bridge_samples(sde, x_T, y_0, t, rng)) for t in times]
    return controlled_marginals(reference, times, n, seed, max_dt or float(sde.T) / 200)


def weighted_relative_l2(control, reference, n=2000, times=20, seed=0):
    """Weighted relative L2 error of ``control(t, y) -> (n, d)`` against the reference u* over (t, Q*_t).

    reference : an `ExactSolution`, or any solution taken as the truth (e.g. a grid solution);
    n draws of Q*_t (`reference_marginals`) per time at ``times`` midpoint times.
    Returns the float sqrt(Σ|u - u*|² / Σ|u*|²).
    """
    num = den = 0.0
    for t, y in reference_marginals(reference, evaluation_times(reference.problem.sde.T, times), n, seed):
        u_star = reference.control(t, y)
        num += float(np.sum((control(t, y) - u_star) ** 2))
        den += float(np.sum(u_star**2))
    return float(np.sqrt(num / den))


def energy_distance(x, y, max_points=2000):
    """2E|X-Y| - E|X-X'| - E|Y-Y'| (≥ 0, 0 iff equal laws) from samples (n, d), (m, d).

    At most ``max_points`` of each sample are used (the first ones); V-statistics.
    """
    x, y = np.asarray(x, float)[:max_points], np.asarray(y, float)[:max_points]

    def mean_dist(a, b):
        total = 0.0
        for i in range(0, len(a), 500):
            total += np.sqrt(((a[i:i + 500, None, :] - b[None, :, :]) ** 2).sum(-1)).sum()
        return total / (len(a) * len(b))

    return float(2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y))


def projection_directions(d, extra=2, seed=12345):
    """(d + extra, d) unit directions: the coordinate axes and ``extra`` fixed random ones (d ≥ 2)."""
    dirs = [np.eye(d)]
    if d >= 2 and extra:
        r = np.random.default_rng(seed).standard_normal((extra, d))
        dirs.append(r / np.linalg.norm(r, axis=1, keepdims=True))
    return np.concatenate(dirs)


def two_sample_pvalue(x, y):
    """p-value of H0: x and y (n, d) have the same law.

    Kolmogorov–Smirnov tests on the projections onto `projection_directions`, Bonferroni-combined
    (min p times the number of projections, capped at 1): a valid level-α test.
    """
    x, y = np.atleast_2d(x), np.atleast_2d(y)
    dirs = projection_directions(x.shape[1])
    p = min(ks_2samp(x @ e, y @ e).pvalue for e in dirs)
    return float(min(1.0, p * len(dirs)))
