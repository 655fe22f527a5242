"""Nested Monte Carlo at query points (t, y): log h, ∇log h and ∇E[r_eff] with standard errors.

For each query point y_q, M inner paths of the pretrained sampler start at Y_t = y_q
(Feynman–Kac, (3.24)); with w_j = exp(r_eff(Y_T^j)):

- log h = log mean_j w_j, standard error sd(w)/(sqrt(M) w̄) (delta method);
- pathwise (3.29)–(3.30): ∇log h = Σ w_j Z_Tᵀ∇r_eff(Y_T^j) / Σ w_j (discrete tangent of the
  integrator, by an adjoint sweep), standard error of the self-normalised ratio;
- likelihood ratio (Bismut–Elworthy–Li, needs no ∇r): ∇log h = mean((w_j - w̄) β_j) / w̄ with
  the weight β of `kernels.adjoint` over the first ``bismut_fraction`` of the steps (w̄ is a
  control variate: E β = 0);
- the approximate control's direction (3.28): ∇E[r_eff(Y_T)] = mean_j Z_Tᵀ∇r_eff(Y_T^j)
  (pathwise, (3.29)) or mean_j (r_eff(Y_T^j) - mean r_eff) β_j (likelihood ratio).

At t = T everything is exact: h = exp(r_eff(y)), ∇log h = ∇r_eff(y).
"""
import numpy as np

from .rng import stream_key
from .stats import log_mean_exp, mean_and_se, weighted_mean

GRADIENTS = ("pathwise", "likelihood_ratio")


def nested_estimates(problem, sampler, t, y, inner_paths, seed, gradient=True, bismut_fraction=0.5, tag=0):
    """Estimates at the query points y (q, d) and time t; returns a dict of arrays.

    ``log_h``, ``log_h_se`` (q,); with ``gradient``: ``grad_pathwise``, ``grad_pathwise_se``,
    ``grad_lr``, ``grad_lr_se``, ``grad_reward``, ``grad_reward_se``, ``grad_reward_lr``,
    ``grad_reward_lr_se`` (q, d) (∇log h and ∇E[r_eff(Y_T) | Y_t = y] by both estimators), ``ess`` (q,).
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    q, d = y.shape
    keys = ("log_h", "log_h_se", "ess") + (("grad_pathwise", "grad_pathwise_se", "grad_lr", "grad_lr_se",
                                            "grad_reward", "grad_reward_se", "grad_reward_lr", "grad_reward_lr_se") if gradient else ())
    out = {k: np.zeros((q,) if k in ("log_h", "log_h_se", "ess") else (q, d)) for k in keys}
    if t >= sampler.T:
        r_eff = problem.effective_reward(y)
        out["log_h"][:] = r_eff
        out["ess"][:] = inner_paths
        if gradient:
            g = problem.effective_reward_gradient(y)
            out["grad_pathwise"][:] = g
            out["grad_lr"][:] = g
            out["grad_reward"][:] = g
            out["grad_reward_lr"][:] = g
        return out
    t_tag = int(round(float(t) * 1e9))
    for i in range(q):
        key = stream_key(seed, 7, tag, t_tag, i)
        _, y_T, path, sched = sampler.run(key, inner_paths, t, y[i][None, :], store=gradient)
        r_eff = problem.effective_reward(y_T)
        out["log_h"][i], out["log_h_se"][i], out["ess"][i] = log_mean_exp(r_eff)
        if not gradient:
            continue
        grad_r = problem.effective_reward_gradient(y_T)
        n_bismut = max(1, int(round(bismut_fraction * sched.n_steps)))
        lam0, beta = sampler.adjoint(key, path, grad_r, n_bismut, t)
        out["grad_pathwise"][i], out["grad_pathwise_se"][i] = weighted_mean(r_eff, lam0)
        w = np.exp(r_eff - np.max(r_eff))
        terms = (w - np.mean(w))[:, None] * beta
        ratio = np.sum(terms, axis=0) / np.sum(w)
        out["grad_lr"][i] = ratio
        out["grad_lr_se"][i] = np.sqrt(np.sum((terms - w[:, None] * ratio) ** 2, axis=0)) / np.sum(w)
        out["grad_reward"][i], out["grad_reward_se"][i] = mean_and_se(lam0)
        out["grad_reward_lr"][i], out["grad_reward_lr_se"][i] = mean_and_se((r_eff - np.mean(r_eff))[:, None] * beta)
    return out
