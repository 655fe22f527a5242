"""Importance-sampling estimates with the learned control as the proposal (paper 000, (3.12), (3.16)).

For paths from (t, y) under u_θ, L = r_eff(Y_T) + girsanov (see `paths`) satisfies
E[exp L] = h(t, y) for any control, with zero variance at u = u*:
- value:   log h(t, y) ≈ log mean_m exp L_m over ``value_paths`` paths per point;
- log C:   log E_{p_noise}[h(0, Y_0)] ≈ log mean exp L over paths from Y_0 ~ p_noise;
- initial law "importance": ν* ∝ h(0, ·) p_noise (3.16). Draws Y_0^i ~ p_noise are resampled
  with probabilities ∝ exp L_i (a one-path unbiased estimate of h(0, Y_0^i)), so the kept Y_0
  follow ν* as the number of draws grows, whatever the control; the effective sample size
  ESS = (Σw)²/Σw² is reported;
- E_ftune f ≈ Σ_i w_i f(Y_T^i)/Σ_i w_i (self-normalised, exact in the limit).
"""
import numpy as np
import torch
from scipy.special import logsumexp

from .paths import simulate, time_grid


def controlled_log_weights(sampler, net, y0, t0, steps, generator, control=True):
    """(Y_T (n, d) numpy, L (n,) numpy) for paths from (t0, y0) (numpy (n, d)) under u_θ."""
    coeffs = sampler.grid(time_grid(t0, sampler.T, steps, sampler.sde))
    y = torch.as_tensor(y0, dtype=sampler.dtype, device=sampler.device)
    noise = torch.randn(len(coeffs.times), *y.shape, generator=generator, dtype=sampler.dtype).to(sampler.device)
    with torch.no_grad():
        out = simulate(coeffs, net, y, noise, control=control)
    y_T = out["y"].double().cpu().numpy()
    log_w = sampler.problem.effective_reward(y_T) + out["girsanov"].double().cpu().numpy()
    return y_T, log_w


def log_h(sampler, net, t, y, paths, steps, generator, chunk=65536):
    """(n,) log h(t, y) for y (n, d) by importance sampling with ``paths`` paths per point."""
    n, d = y.shape
    per = max(1, chunk // paths)
    out = []
    for i in range(0, n, per):
        block = np.repeat(y[i:i + per], paths, axis=0)
        _, log_w = controlled_log_weights(sampler, net, block, t, steps, generator)
        out.append(logsumexp(log_w.reshape(-1, paths), axis=1) - np.log(paths))
    return np.concatenate(out)


def effective_sample_size(log_w):
    """(Σw)²/Σw² for log-weights (n,)."""
    return float(np.exp(2 * logsumexp(log_w) - logsumexp(2 * log_w)))


def _resample(log_w, n, generator):
    """(n,) indices drawn with probabilities ∝ exp(log_w) (inverse CDF on the run's generator)."""
    p = np.exp(log_w - logsumexp(log_w))
    u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
    return np.minimum(np.searchsorted(np.cumsum(p), u), len(log_w) - 1)


def resample_paths(sampler, net, n, factor, steps, generator):
    """(Y_T (n, d), stats): Y_T of factor·n controlled paths from p_noise, resampled ∝ path weights."""
    m = max(factor, 1) * n
    y0 = sampler.problem.noise_std() * torch.randn(m, sampler.dimension, generator=generator, dtype=torch.float64).numpy()
    y_T, log_w = controlled_log_weights(sampler, net, y0, 0.0, steps, generator)
    ess = effective_sample_size(log_w)
    return y_T[_resample(log_w, n, generator)], {"sampler": "path_resampling", "path_ess": ess, "path_ess_fraction": ess / m}


def learned_initial_stats(log_w, log_ratio):
    """Stats of learned initial draws: the ESS of exp(log_w + log_ratio) ∝ ν*/ν̃ (`initial`), from the
    controlled sampler's log-weights (n,) and the auxiliary paths' log dP⁰/dP^q (n,)."""
    ess = effective_sample_size(log_w + log_ratio)
    return {"initial_law": "learned", "initial_ess": ess, "initial_ess_fraction": ess / len(log_w)}


def draw_initial(sampler, net, n, factor, steps, generator, law="importance", learned=None):
    """(Y_0 (n, d), stats): n draws of the initial law ("importance": resampled p_noise; "noise":
    p_noise; "learned": the end points of ``learned``, a `initial.LearnedInitialLaw`, with the ESS of
    their importance weights against ν*)."""
    d = sampler.dimension
    if law == "learned":
        y0, log_ratio = learned.sample(n, generator)
        _, log_w = controlled_log_weights(sampler, net, y0, 0.0, steps, generator)
        return y0, learned_initial_stats(log_w, log_ratio)
    std = sampler.problem.noise_std()
    if law == "noise":
        y0 = std * torch.randn(n, d, generator=generator, dtype=torch.float64).numpy()
        return y0, {"initial_law": "noise"}
    m = max(factor, 1) * n
    y0 = std * torch.randn(m, d, generator=generator, dtype=torch.float64).numpy()
    _, log_w = controlled_log_weights(sampler, net, y0, 0.0, steps, generator)
    ess = effective_sample_size(log_w)
    return y0[_resample(log_w, n, generator)], {"initial_law": "importance", "initial_ess": ess, "initial_ess_fraction": ess / m}
