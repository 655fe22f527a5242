"""Samplers of the tilted terminal law p_ftune ∝ exp(r_eff) p_pre (3.2) from particles.

- `importance_resampling`: self-normalised importance resampling of pretrained paths by
  exp(r_eff(Y_T)); reports the effective sample size (approximate: exact as the pool grows).
- `rejection`: von Neumann rejection (after Lemma 3.1), exact when sup r_eff < ∞: accept
  Y_T ~ p_pre with probability exp(r_eff - sup r_eff); the acceptance rate is
  C / sup exp(r_eff) in theory, reported beside the measured one.
- `controlled`: one pass of the controlled sampler (3.9), dY = (b̄ + u) dt + ς dB, from given
  initial points, with any control callable u(t, y) -> (n, d) (exact, grid, particle, neural).
- `initial_by_weights`: ν*(y) ∝ h(0, y) p_noise(y) (3.16): either importance resampling of
  p_noise draws by h(0, ·) from a ``log_h0`` callable, or (one-pass, no h needed) resampling
  the starting points Y_0 of pretrained paths by exp(r_eff(Y_T)), since
  E[exp(r_eff(Y_T)) | Y_0 = y] = h(0, y).
"""
import numpy as np
from scipy.special import softmax

from ..errors import HJSolveError
from .rng import normals_block, stream_key
from .stats import log_mean_exp

CHUNK = 1_000_000


def _ess(log_w):
    w = softmax(log_w)
    return float(1.0 / np.sum(w * w))


def importance_resampling(problem, sampler, n, seed, pool):
    """(Y_T (n, d), Y_0 (n, d), stats) by resampling ``pool`` pretrained paths."""
    y0, yT, _, _ = sampler.run(stream_key(seed, 11), pool)
    log_w = problem.effective_reward(yT)
    idx = np.random.default_rng(stream_key(seed, 12)).choice(pool, size=n, p=softmax(log_w))
    stats = {"sampler": "resampling", "exact": False, "ess": _ess(log_w), "proposals": int(pool)}
    return yT[idx], y0[idx], stats


def rejection(problem, sampler, n, seed, log_normalizer=None, max_proposals=50_000_000):
    """(Y_T, Y_0, stats) by von Neumann rejection; needs sup r_eff < ∞."""
    sup = problem.divergence.effective_bounds(problem.reward)[1]
    if not np.isfinite(sup):
        raise HJSolveError("particle: sampler 'rejection' needs a reward bounded above (sup r_eff < inf); "
                           "use sampler = 'resampling' or 'controlled'")
    rng = np.random.default_rng(stream_key(seed, 13))
    xs, ys, proposed, accepted, batch = [], [], 0, 0, 0
    log_c_parts = []
    while accepted < n:
        m = int(min(CHUNK, max(4 * (n - accepted), 10_000)))
        y0, yT, _, _ = sampler.run(stream_key(seed, 14, batch), m)
        r_eff = problem.effective_reward(yT)
        log_c_parts.append(r_eff)
        keep = np.log(rng.random(m)) < r_eff - sup
        xs.append(yT[keep])
        ys.append(y0[keep])
        proposed += m
        accepted += int(keep.sum())
        batch += 1
        if proposed >= max_proposals and accepted < n:
            raise HJSolveError(f"particle: rejection accepted {accepted} of {proposed} proposals "
                               f"(rate {accepted / proposed:.2e}); raise max_proposals or use 'resampling'")
    log_c, log_c_se, _ = log_mean_exp(np.concatenate(log_c_parts))
    if log_normalizer is not None:
        log_c = log_normalizer
    stats = {"sampler": "rejection", "exact": True, "acceptance_rate": accepted / proposed, "proposals": proposed,
             "acceptance_rate_theory": float(np.exp(log_c - sup)),
             "acceptance_rate_theory_stderr": float(np.exp(log_c - sup) * log_c_se)}
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n], stats


def initial_by_weights(problem, sampler, n, seed, pool, log_h0=None):
    """(n, d) draws of ν* (3.16) and their ESS; see the module docstring."""
    rng = np.random.default_rng(stream_key(seed, 15))
    if log_h0 is None:
        y0, yT, _, _ = sampler.run(stream_key(seed, 16), pool)
        log_w = problem.effective_reward(yT)
    else:
        y0 = float(np.sqrt(problem.sde.noise_var())) * normals_block(stream_key(seed, 16), 0, pool, problem.dimension, 0)
        log_w = np.asarray(log_h0(y0), dtype=float)
    idx = rng.choice(pool, size=n, p=softmax(log_w))
    return y0[idx], _ess(log_w)


def controlled(problem, sampler, control, y0, seed, record=None):
    """Y_T (n, d) of the controlled sampler (3.9) from Y_0 = y0 (n, d) with u = control(t, y).

    ``record(k, t, y)`` (optional) is called at every grid time before the step.
    """
    sched, _ = sampler.grid(0.0)
    key = stream_key(seed, 17)
    y = np.array(y0, dtype=float)
    for k in range(sched.n_steps):
        t = float(sched.times[k])
        if record is not None:
            record(k, t, y)
        u = np.asarray(control(t, y), dtype=float)
        if u.shape != y.shape:
            raise HJSolveError(f"particle: the control returned shape {u.shape}, expected {y.shape}")
        y = sampler.controlled_step(key, k, y, u, sched)
    return y
