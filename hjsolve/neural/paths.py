"""Euler–Maruyama paths of the controlled sampler (3.9) with Girsanov log-weights (3.12).

On a grid t_0 < ... < t_N (= T) with steps Δ_j and standard normals ξ_j (n, d):

    Y_{j+1} = Y_j + Δ_j (b̄(t_j, Y_j) + u_j) + ς(t_j) sqrt(Δ_j) ξ_j,   u_j = ς(t_j)² g_θ(t_j, Y_j).

Along the path, with u/ς = ς g:
    cost      = ½ Σ_j ς_j² |g_j|² Δ_j                         (½∫|u/ς|² dt)
    girsanov  = -Σ_j ς_j g_j · ξ_j sqrt(Δ_j) - cost           (log dQ/dQ^u on the path)
so that exp(r_eff(Y_T) + girsanov) has mean h(t_0, Y_{t_0}) for any control (importance sampling
with the control as proposal; zero variance at u = u*).
"""
import numpy as np
import torch
from torch.utils.checkpoint import checkpoint


def time_grid(t0, T, steps, sde=None):
    """(m+1,) grid from t0 to T with m = max(1, round(steps (T - t0)/T)) steps.

    With ``sde``, the grid is uniform in the clock τ(t) = ∫ (ς(t')² + mean ς²) dt', so steps
    shrink where ς² (and with it the drift's Lipschitz constant) is large: the VP sampler's
    first steps (ς² ≈ β_max) are half as long as uniform ones. OU (constant ς²) stays uniform.
    """
    m = max(1, int(round(steps * (T - t0) / T)))
    if sde is None:
        return np.linspace(t0, T, m + 1)
    fine = np.linspace(0.0, T, 4097)
    rate = np.asarray(sde.sampler_sigma2(fine), dtype=float) * np.ones_like(fine)
    rate = rate + rate.mean()
    clock = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(fine))])
    lo = np.interp(t0, fine, clock)
    grid = np.interp(np.linspace(lo, clock[-1], m + 1), clock, fine)
    grid[0], grid[-1] = t0, T
    return grid


def _steps(coeffs, net, dts, y, noise, lo, hi, control, keep):
    """Steps lo..hi-1; returns (y, cost, stochastic integral, list of visited states)."""
    n = y.shape[0]
    cost = y.new_zeros(n)
    ito = y.new_zeros(n)
    visited = []
    for j in range(lo, hi):
        if keep:
            visited.append(y)
        score = coeffs.score(j, y)  # shared by the drift and the network's score input
        drift = coeffs.drift(j, y, score)
        sig = coeffs.sigma[j]
        if control:
            t = y.new_full((n,), float(coeffs.times[j]))
            g = net(t, y, coeffs.scale[j].expand(n), score=score)
            drift = drift + coeffs.sigma2[j] * g
            cost = cost + 0.5 * dts[j] * coeffs.sigma2[j] * (g * g).sum(1)
            ito = ito + sig * np.sqrt(dts[j]) * (g * noise[j]).sum(1)
        y = y + dts[j] * drift + sig * np.sqrt(dts[j]) * noise[j]
    return y, cost, ito, visited


def simulate(coeffs, net, y0, noise, control=True, keep_path=False, segments=0):
    """Euler–Maruyama from y0 (n, d) on the grid of ``coeffs`` (times t_0..t_N, N = len(noise)).

    noise : (N, n, d) standard normals. segments > 0 recomputes the forward pass in that many
    `torch.utils.checkpoint` segments during backward (memory O(N/segments + segments)).
    Returns dict: ``y`` (n, d) = Y_T, ``cost`` (n,), ``girsanov`` (n,), and ``path`` (N, n, d)
    (the states Y_0..Y_{N-1} where the control acts) when keep_path.
    """
    times = coeffs.times
    dts = np.diff(np.append(times, coeffs.T_end))
    N = len(noise)
    y = y0
    cost = y0.new_zeros(y0.shape[0])
    ito = y0.new_zeros(y0.shape[0])
    visited = []
    bounds = np.linspace(0, N, max(segments, 1) + 1).astype(int)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if segments > 0 and torch.is_grad_enabled() and not keep_path:
            fn = lambda yy, lo=lo, hi=hi: _steps(coeffs, net, dts, yy, noise, lo, hi, control, False)[:3]
            y, c, i = checkpoint(fn, y, use_reentrant=False)
        else:
            y, c, i, v = _steps(coeffs, net, dts, y, noise, lo, hi, control, keep_path)
            visited += v
        cost, ito = cost + c, ito + i
    out = {"y": y, "cost": cost, "girsanov": -ito - cost}
    if keep_path:
        out["path"] = torch.stack(visited)
    return out
