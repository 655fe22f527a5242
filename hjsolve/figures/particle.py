"""Figures of the particle solver (paper 000, (3.9), (3.16), (3.28), Proposition 3.7).

``particle_approximate_control.png``
    The approximate control ũ* = ς²/α ∇E[r(Y_T) | Y_t = y] of (3.28) (particle, likelihood-ratio
    estimator, ±2 standard errors) against the exact u* at two times, for a bump reward on the
    bimodal mixture; and the terminal law of the sampler driven by ũ* from ν* against p_ftune,
    with the measured TV distance beside the bound of Proposition 3.7 (3.33) and its sharper
    path form.
``particle_controlled_generation.png``
    One-pass controlled generation (3.9): ν* drawn by resampling the starts of pretrained paths
    by exp(r(Y_T)/α) (3.16), then the exact control u*; histograms of Y_0 and Y_T against the
    exact ν* and p_ftune, with a two-sample KS p-value against exact samples.

The ``*_data`` functions return the numbers each figure shows; fixed seeds make them reproducible.
"""
import copy

import numpy as np
from scipy.stats import ks_2samp

from ..case import case_from_dict
from ..particle.bound import ControlTable, exact_control_table, proposition_3_7
from ..solvers import solve
from .core import BASE
from .style import new_figure, save, style

BUMP = {"kind": "bump", "center": [1.0], "height": 1.0, "width": 0.5}
QUADRATIC = {"kind": "quadratic", "center": [1.0], "scale": 1.0}
ALPHA = 0.5
CURVE_TIMES = (0.5, 0.8)
N_SAMPLES = 20_000
X = np.linspace(-5.0, 5.0, 41)


def _case(reward):
    data = copy.deepcopy(BASE)
    data["reward"] = copy.deepcopy(reward)
    data["finetune"] = {"alpha": ALPHA, "divergence": "kl"}
    return case_from_dict(data)


def approximate_control_data(n=N_SAMPLES, inner_paths=2000, seed=0):
    """ũ* and u* on `X` at `CURVE_TIMES`, and Proposition 3.7 for the bump case.

    Returns ``x`` (q,), ``times``, ``u_exact``, ``u_tilde``, ``u_tilde_se`` (m, q); ``eta``,
    ``bound``, ``path_bound``, ``tv``, ``tv_floor``; ``samples`` (n,) of the ũ*-driven terminal
    law, ``grid`` and ``density`` (p_ftune), ``pretrained_density``.
    """
    case = _case(BUMP)
    exact = solve(case, "exact")
    sol = solve(case, "particle", n_paths=2000, n_steps=100, inner_paths=inner_paths, approximate_control=True,
                seed=seed)
    sigma2 = case.problem.sde.sampler_sigma2
    u_exact, u_tilde, u_se = [], [], []
    for t in CURVE_TIMES:
        est = sol.estimates(t, X[:, None])
        u_exact.append(exact.control(t, X[:, None])[:, 0])
        u_tilde.append(sigma2(t) * est["grad_reward_lr"][:, 0])
        u_se.append(sigma2(t) * est["grad_reward_lr_se"][:, 0])
    table = ControlTable.from_function(sol.control, np.linspace(0.0, 1.0, 11), X)
    out = proposition_3_7(case.problem, sol.sampler, exact, table, n, seed=seed, exact_control=exact_control_table(exact))
    grid = np.linspace(-5.0, 5.0, 801)
    return {"x": X, "times": np.array(CURVE_TIMES), "u_exact": np.array(u_exact), "u_tilde": np.array(u_tilde),
            "u_tilde_se": np.array(u_se), "eta": out["eta"], "bound": out["bound"], "path_bound": out["path_bound"],
            "tv": out["tv"], "tv_floor": out["tv_floor"], "samples": out["samples_approx"][:, 0], "grid": grid,
            "density": np.exp(exact.terminal_log_density(grid[:, None])),
            "pretrained_density": np.exp(exact.pretrained_log_density(grid[:, None]))}


def controlled_generation_data(n=N_SAMPLES, seed=0):
    """One-pass generation for the quadratic case: ``initial`` and ``terminal`` samples (n,),
    exact ``initial_density`` and ``density`` on ``grid``, ``pretrained_density``, ``ks_pvalue``,
    ``initial_ess``."""
    case = _case(QUADRATIC)
    exact = solve(case, "exact")
    sol = solve(case, "particle", n_paths=2000, n_steps=200, seed=seed)
    y_T, y_0 = sol.sample_controlled(n, exact.control, seed=seed, return_initial=True)
    grid = np.linspace(-5.0, 5.0, 801)
    return {"initial": y_0[:, 0], "terminal": y_T[:, 0], "grid": grid,
            "initial_density": np.exp(exact.initial_log_density(grid[:, None])),
            "density": np.exp(exact.terminal_log_density(grid[:, None])),
            "pretrained_density": np.exp(exact.pretrained_log_density(grid[:, None])),
            "ks_pvalue": float(ks_2samp(y_T[:, 0], exact.sample(n, seed=seed + 7)[:, 0]).pvalue),
            "initial_ess": sol.sampling["initial_ess"]}


def plot_approximate_control(path):
    """``particle_approximate_control.png``: ũ* (3.28) vs u*, and Proposition 3.7."""
    data = approximate_control_data()
    with style():
        fig = new_figure(11.0, 4.2)
        left, right = fig.subplots(1, 2)
        for i, (t, color) in enumerate(zip(data["times"], ("C0", "C3"))):
            left.plot(data["x"], data["u_exact"][i], color=color, lw=1.8, label=rf"$u^*$ exact, t = {t:g}")
            left.errorbar(data["x"], data["u_tilde"][i], yerr=2 * data["u_tilde_se"][i], fmt="o", ms=3, color=color,
                          mfc="white", elinewidth=0.8, label=rf"$\tilde u^*$ (3.28) particle ±2 se, t = {t:g}")
        left.set_xlabel("y")
        left.set_ylabel("control")
        left.set_title("bump reward: exact vs approximate control")
        left.legend(fontsize=7.5)
        right.fill_between(data["grid"], data["pretrained_density"], color="0.87", label=r"$p_{pre}$")
        right.plot(data["grid"], data["density"], color="k", lw=1.6, label=r"$p_{ftune}$ (exact)")
        right.hist(data["samples"], bins=120, range=(-5, 5), density=True, histtype="step", color="C3", lw=1.2,
                   label=r"terminal law under $\tilde u^*$ from $\nu^*$")
        right.text(0.02, 0.97, f"measured TV = {data['tv']:.3f} (MC floor {data['tv_floor']:.3f})\n"
                   f"bound (3.33): η/2·sqrt(∫ς⁻²) = {data['bound']:.3f}  (η = {data['eta']:.2f})\n"
                   f"path form sqrt(¼E∫|Δu|²/ς²) = {data['path_bound']:.3f}",
                   transform=right.transAxes, va="top", fontsize=8)
        right.set_xlabel("x")
        right.set_ylabel("density")
        right.set_title("Proposition 3.7")
        right.legend(fontsize=7.5, loc="center left")
        return save(fig, path)


def plot_controlled_generation(path):
    """``particle_controlled_generation.png``: one-pass generation (3.9) from ν* (3.16)."""
    data = controlled_generation_data()
    with style():
        fig = new_figure(11.0, 4.2)
        left, right = fig.subplots(1, 2)
        left.hist(data["initial"], bins=100, range=(-5, 5), density=True, histtype="step", color="C0", lw=1.2,
                  label=rf"$Y_0$: resampled pretrained starts (ESS {data['initial_ess']:.0f})")
        left.plot(data["grid"], data["initial_density"], color="k", lw=1.5, label=r"$\nu^* \propto h(0,\cdot)\,p_{noise}$ (exact)")
        left.set_xlabel("y")
        left.set_ylabel("density")
        left.set_title(r"optimal initial law $\nu^*$ (3.16)")
        left.legend(fontsize=8)
        right.fill_between(data["grid"], data["pretrained_density"], color="0.87", label=r"$p_{pre}$")
        right.hist(data["terminal"], bins=120, range=(-5, 5), density=True, histtype="step", color="C3", lw=1.2,
                   label=r"$Y_T$ of (3.9) with $u^*$, one pass")
        right.plot(data["grid"], data["density"], color="k", lw=1.5, label=r"$p_{ftune}$ (exact)")
        right.text(0.02, 0.97, f"KS p-value vs exact samples: {data['ks_pvalue']:.2f}", transform=right.transAxes,
                   va="top", fontsize=8)
        right.set_xlabel("x")
        right.set_title(r"controlled generation reproduces $p_{ftune}$")
        right.legend(fontsize=8, loc="center left")
        return save(fig, path)


FIGURES = {
    "particle_approximate_control.png": plot_approximate_control,
    "particle_controlled_generation.png": plot_controlled_generation,
}
