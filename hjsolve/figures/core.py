"""The core figures of paper 000 (tilted law, Proposition 3.2, f-divergences).

Every figure is built from 1-D cases constructed in code around one pretrained model, the
bimodal Gaussian mixture ½N(-2, 0.5²) + ½N(2, 0.5²) under a VP diffusion (`BASE`), and solved
with the exact method, so every number is a closed form or a converged quadrature:

``reward_collapse.png``
    The tilted law p_ftune ∝ exp(r/α) p_pre of paper 000, (3.2), for α from 10 down to 0.02
    with a quadratic reward centred at x = 1, and, against α, the fine-tuned reward E_ftune[r]
    and the standard deviation of p_ftune: as α → 0 the reward rises to sup r while the
    diversity collapses to a spike (the reward collapse discussed after (3.6)).
``tv_bound.png``
    Proposition 3.2, (3.3): TV(p_ftune, p_data), measured on a grid, against the bound
    TV(p_pre, p_data) + ½ sqrt(E_pre[exp(2r/α)]) and the cruder ½ exp(r̄/α) of (3.6), for a
    bump reward with r̄ = sup r = 1. The bound blows up as α → 0 while the measured TV stays ≤ 1.
``divergences.png``
    Definition 4.2, (4.5)–(4.6): the effective log-tilts r_f and the laws
    p_ftune^f ∝ exp(r_f) p_pre for kl, gamma (γ = 0.1, 0.5, 0.9) and forward KL with the same
    bump reward; gamma tilts harder than kl (r_f ≥ r/α, → kl as γ → 0), and forward KL's
    r_f = -ln(r/α) tilts *away* from high reward.

The ``*_data`` functions return the numbers each figure shows (tests check them); the
``plot_*`` functions draw one figure each. Output is deterministic: exact solutions, fixed
grids, matplotlib's default style and no timestamp or software tag in the PNG metadata.
"""
import copy
from pathlib import Path

import numpy as np

from ..case import case_from_dict
from ..solvers import solve
from .style import DPI, new_figure as _new_figure, save as _save, style as _style

#: The pretrained model and SDE that every figure uses (1-D bimodal mixture, VP).
BASE = {
    "title": "figures: 1-D bimodal mixture",
    "sde": {"kind": "vp", "T": 1.0},
    "pretrained": {"kind": "gaussian_mixture", "weights": [0.5, 0.5], "means": [[-2.0], [2.0]],
                   "stds": [0.5, 0.5]},
    "reward": {"kind": "quadratic", "center": [1.0], "scale": 1.0},
    "finetune": {"alpha": 1.0, "divergence": "kl"},
    "solver": {"method": "exact"},
}
#: Evaluation grid for densities and the integrals taken on it (trapezoid-free Riemann sums:
#: the densities vanish at both ends, so the plain sum is as accurate as the trapezoid rule).
GRID = np.linspace(-7.0, 7.0, 2801)

COLLAPSE_REWARD = {"kind": "quadratic", "center": [1.0], "scale": 1.0}
COLLAPSE_CURVE_ALPHAS = (10.0, 2.0, 0.5, 0.1, 0.02)
COLLAPSE_SWEEP_ALPHAS = tuple(np.geomspace(0.01, 30.0, 25))

TV_REWARD = {"kind": "bump", "center": [1.0], "height": 1.0, "width": 0.75}
TV_ALPHAS = tuple(np.geomspace(0.05, 20.0, 12))

#: Bump for the divergence comparison: height > 0 (forward KL needs r > 0), width 1 > the
#: largest component std 0.5 (forward KL needs E_pre[α/r] < ∞), sup r = 1 < α/γ for γ ≤ 0.9.
DIVERGENCE_REWARD = {"kind": "bump", "center": [1.0], "height": 1.0, "width": 1.0}
DIVERGENCE_ALPHA = 1.0
DIVERGENCE_GAMMAS = (0.1, 0.5, 0.9)



# --------------------------------------------------------------------------- cases and grids


def figure_case(reward, alpha, divergence="kl", gamma=None):
    """The `BASE` case with ``reward`` (a ``[reward]`` dict), α and the divergence."""
    data = copy.deepcopy(BASE)
    data["reward"] = copy.deepcopy(reward)
    data["finetune"] = {"alpha": float(alpha), "divergence": divergence}
    if gamma is not None:
        data["finetune"]["gamma"] = float(gamma)
    return case_from_dict(data)


def _grid_points():
    return GRID[:, None], float(GRID[1] - GRID[0])


def _moments(density, dx):
    """Mass, mean and standard deviation of a density sampled on `GRID`."""
    mass = float(np.sum(density) * dx)
    mean = float(np.sum(GRID * density) * dx / mass)
    var = float(np.sum((GRID - mean) ** 2 * density) * dx / mass)
    return mass, mean, np.sqrt(var)


# --------------------------------------------------------------------------- data


def reward_collapse_data(alphas=COLLAPSE_SWEEP_ALPHAS, reward=None):
    """Numbers of the reward-collapse figure, for the kl tilt of `COLLAPSE_REWARD`.

    Returns a dict of arrays: ``alpha`` (m,), ``x`` (nx,) the grid, ``density`` (m, nx)
    p_ftune on the grid, ``pretrained_density`` (nx,), ``reward_finetuned`` (m,) E_ftune[r]
    from the solver's summary, ``reward_finetuned_grid`` (m,) the same integrated on the grid,
    ``mean``, ``std`` and ``mass`` (m,) of p_ftune on the grid, and the scalars
    ``reward_pretrained``, ``std_pretrained``.
    """
    reward = COLLAPSE_REWARD if reward is None else reward
    points, dx = _grid_points()
    alphas = np.asarray(alphas, dtype=float)
    out = {key: [] for key in ("density", "reward_finetuned", "reward_finetuned_grid", "mean", "std", "mass")}
    pretrained = reward_pretrained = r = None
    for alpha in alphas:
        case = figure_case(reward, alpha)
        solution = solve(case, "exact")
        density = np.exp(solution.terminal_log_density(points))
        if pretrained is None:
            pretrained = np.exp(solution.pretrained_log_density(points))
            reward_pretrained = solution.summary["reward_pretrained"]
            r = case.problem.reward(points)
        mass, mean, std = _moments(density, dx)
        out["density"].append(density)
        out["reward_finetuned"].append(solution.summary["reward_finetuned"])
        out["reward_finetuned_grid"].append(float(np.sum(r * density) * dx / mass))
        out["mean"].append(mean)
        out["std"].append(std)
        out["mass"].append(mass)
    data = {key: np.asarray(value) for key, value in out.items()}
    data.update({
        "alpha": alphas, "x": GRID.copy(), "pretrained_density": pretrained,
        "reward_pretrained": float(reward_pretrained), "std_pretrained": _moments(pretrained, dx)[2],
    })
    return data


def tv_bound_data(alphas=TV_ALPHAS, reward=None):
    """Numbers of the Proposition 3.2 figure, for the kl tilt of the bounded `TV_REWARD`.

    Returns a dict of arrays over ``alpha``: ``tv_measured`` = ½∫|p_ftune - p_data| on the
    grid, ``tv_pretrained_data`` and ``tv_bound`` from the solver's summary (the first and
    second terms of (3.3)), ``bound`` = their sum (the right side of (3.3)), ``bound_36`` =
    TV(p_pre, p_data) + ½ exp(r̄/α) (the bounded-reward form of (3.6)), ``bound_var`` =
    TV(p_pre, p_data) + ½ sqrt(Var_pre[exp(r/α)]) (the sharper step inside the proof of
    Proposition 3.2, valid for r ≥ 0; it vanishes as α → ∞ where (3.3) tends to ½), ``mass`` of
    p_ftune on the grid; and the scalars ``r_bar`` = sup r and ``tv_pretrained_data_grid``
    (½∫|p_pre - p_data| on the grid).
    """
    reward = TV_REWARD if reward is None else reward
    points, dx = _grid_points()
    alphas = np.asarray(alphas, dtype=float)
    keys = ("tv_measured", "tv_pretrained_data", "tv_bound", "bound", "bound_36", "bound_var", "mass")
    out = {key: [] for key in keys}
    data_density = pretrained = r_bar = None
    for alpha in alphas:
        case = figure_case(reward, alpha)
        solution = solve(case, "exact")
        if data_density is None:
            data_density = np.exp(case.problem.pretrained.log_pdf(points))
            pretrained = np.exp(solution.pretrained_log_density(points))
            r_bar = float(case.problem.reward.sup)
        density = np.exp(solution.terminal_log_density(points))
        tv_pre = float(solution.summary["tv_pretrained_data"])
        second = float(solution.summary["tv_bound"])
        out["tv_measured"].append(0.5 * float(np.sum(np.abs(density - data_density)) * dx))
        out["tv_pretrained_data"].append(tv_pre)
        out["tv_bound"].append(second)
        out["bound"].append(tv_pre + second)
        out["bound_36"].append(tv_pre + 0.5 * np.exp(r_bar / alpha))
        # Var_pre[e^{r/α}] = E_pre[e^{2r/α}] - C², with E_pre[e^{2r/α}] = (2 tv_bound)² for kl.
        log_m2 = 2.0 * np.log(2.0 * second)
        log_c2 = 2.0 * float(solution.summary["log_normalizer"])
        var = np.exp(log_m2) * -np.expm1(min(log_c2 - log_m2, 0.0))
        out["bound_var"].append(tv_pre + 0.5 * np.sqrt(var))
        out["mass"].append(float(np.sum(density) * dx))
    data = {key: np.asarray(value) for key, value in out.items()}
    data["alpha"] = alphas
    data["r_bar"] = r_bar
    data["tv_pretrained_data_grid"] = 0.5 * float(np.sum(np.abs(pretrained - data_density)) * dx)
    return data


def _divergence_label(name, gamma=None):
    if name == "kl":
        return r"kl: $r_f = r/\alpha$  (= $r$ here)"
    if name == "forward_kl":
        return r"forward KL: $r_f = -\ln(r/\alpha)$"
    return rf"$\gamma$ = {gamma:g}: $r_f = -\frac{{1}}{{\gamma}}\ln(1-\gamma r/\alpha)$"


def divergences_data(alpha=DIVERGENCE_ALPHA, gammas=DIVERGENCE_GAMMAS, reward=None):
    """Numbers of the f-divergence figure: one entry per regulariser, same bump reward and α.

    Returns a dict: ``x`` (nx,), ``reward`` (nx,) r on the grid, ``pretrained_density`` (nx,),
    ``alpha``, and ``laws``: a list of dicts with ``name``, ``gamma`` (or None), ``label``,
    ``r_eff`` (nx,) r_f on the grid, ``density`` (nx,) p_ftune^f on the grid, ``mass``,
    ``reward_finetuned`` (summary E_ftune[r]) and ``tv_bound`` (summary, second term of (4.7)).
    """
    reward = DIVERGENCE_REWARD if reward is None else reward
    points, dx = _grid_points()
    specs = [("kl", None)] + [("gamma", g) for g in gammas] + [("forward_kl", None)]
    laws, pretrained, r, reward_pretrained = [], None, None, None
    for name, gamma in specs:
        case = figure_case(reward, alpha, name, gamma)
        solution = solve(case, "exact")
        if pretrained is None:
            pretrained = np.exp(solution.pretrained_log_density(points))
            r = case.problem.reward(points)
            reward_pretrained = solution.summary["reward_pretrained"]
        density = np.exp(solution.terminal_log_density(points))
        laws.append({
            "name": name, "gamma": gamma, "label": _divergence_label(name, gamma),
            "short": rf"$\gamma$ = {gamma:g}" if name == "gamma" else {"kl": "kl", "forward_kl": "forward KL"}[name],
            "r_eff": case.problem.effective_reward(points), "density": density,
            "mass": float(np.sum(density) * dx),
            "reward_finetuned": float(solution.summary["reward_finetuned"]),
            "tv_bound": float(solution.summary["tv_bound"]),
        })
    return {"x": GRID.copy(), "reward": r, "pretrained_density": pretrained, "alpha": float(alpha),
            "reward_pretrained": float(reward_pretrained), "laws": laws}


# --------------------------------------------------------------------------- plotting


def _colors(count):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(v) for v in np.linspace(0.0, 0.9, count)]


def plot_reward_collapse(path, curve_alphas=COLLAPSE_CURVE_ALPHAS, sweep_alphas=COLLAPSE_SWEEP_ALPHAS):
    """``reward_collapse.png``: p_ftune for several α, and E_ftune[r] and std(p_ftune) against α."""
    curves = reward_collapse_data(curve_alphas)
    sweep = reward_collapse_data(sweep_alphas)
    center = COLLAPSE_REWARD["center"][0]
    with _style():
        fig = _new_figure(11.0, 4.2)
        left, right = fig.subplots(1, 2)
        x = curves["x"]
        left.fill_between(x, curves["pretrained_density"], color="0.85", label=r"$p_{pre}$ (pretrained)")
        for alpha, density, color in zip(curves["alpha"], curves["density"], _colors(len(curves["alpha"]))):
            left.plot(x, density, color=color, lw=1.6, label=rf"$p_{{ftune}}$, $\alpha$ = {alpha:g}")
        left.axvline(center, color="crimson", ls=":", lw=1.2, label=f"reward maximiser x = {center:g}")
        left.set_xlim(-4.5, 4.5)
        left.set_xlabel("x")
        left.set_ylabel("density")
        left.set_title(r"$p_{ftune} \propto e^{r/\alpha} p_{pre}$  (3.2),  $r = -\frac{1}{2}(x-1)^2$")
        left.legend(fontsize=8, loc="upper left")

        alpha = sweep["alpha"]
        right.plot(alpha, sweep["reward_finetuned"], "o-", color="C0", ms=3.5, label=r"$E_{ftune}[r]$ (reward)")
        right.axhline(sweep["reward_pretrained"], color="C0", ls="--", lw=1, label=r"$E_{pre}[r]$")
        right.set_xscale("log")
        right.set_xlabel(r"$\alpha$ (KL weight; smaller = weaker regularisation)")
        right.set_ylabel(r"$E_{ftune}[r]$", color="C0")
        right.tick_params(axis="y", labelcolor="C0")
        twin = right.twinx()
        twin.plot(alpha, sweep["std"], "s-", color="C3", ms=3.5, label=r"std of $p_{ftune}$ (diversity)")
        twin.axhline(sweep["std_pretrained"], color="C3", ls="--", lw=1, label=r"std of $p_{pre}$")
        twin.set_ylabel(r"std of $p_{ftune}$", color="C3")
        twin.tick_params(axis="y", labelcolor="C3")
        twin.set_ylim(bottom=0.0)
        right.set_title("reward collapse as " + r"$\alpha \to 0$ (paper 000, after (3.6))")
        handles = right.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        labels = right.get_legend_handles_labels()[1] + twin.get_legend_handles_labels()[1]
        right.legend(handles, labels, fontsize=8, loc="center left")
        return _save(fig, path)


def plot_tv_bound(path, alphas=TV_ALPHAS):
    """``tv_bound.png``: measured TV(p_ftune, p_data) against the bound (3.3) and (3.6)."""
    data = tv_bound_data(alphas)
    alpha = data["alpha"]
    with _style():
        fig = _new_figure(7.0, 4.6)
        ax = fig.subplots()
        ax.plot(alpha, data["bound_36"], "^--", color="0.45", ms=4,
                label=r"(3.6): $TV(p_{pre},p_{data}) + \frac{1}{2}e^{\bar r/\alpha}$")
        ax.plot(alpha, data["bound"], "s-", color="C3", ms=4,
                label=r"(3.3): $TV(p_{pre},p_{data}) + \frac{1}{2}\sqrt{E_{pre}[e^{2r/\alpha}]}$")
        ax.plot(alpha, data["bound_var"], "d-.", color="C1", ms=4,
                label=r"proof of Prop. 3.2: $TV(p_{pre},p_{data}) + \frac{1}{2}\sqrt{Var_{pre}[e^{r/\alpha}]}$")
        ax.plot(alpha, data["tv_measured"], "o-", color="C0", ms=4,
                label=r"measured $TV(p_{ftune}, p_{data})$")
        ax.axhline(1.0, color="k", lw=0.8, ls=":", label="TV ≤ 1 (trivial)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$\alpha$")
        ax.set_ylabel("total variation distance")
        ax.set_title(r"Proposition 3.2: bump reward, $\bar r = \sup\, r$ = " + f"{data['r_bar']:g}; "
                     + r"$TV(p_{pre}, p_{data})$ = " + f"{data['tv_pretrained_data'][0]:.1e} (VP, T = 1)",
                     fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
        ax.set_ylim(top=float(np.max(data["bound_36"])) * 30.0)
        return _save(fig, path)


def plot_divergences(path, alpha=DIVERGENCE_ALPHA, gammas=DIVERGENCE_GAMMAS):
    """``divergences.png``: r_f and p_ftune^f for kl, gamma (several γ) and forward KL."""
    data = divergences_data(alpha, gammas)
    x = data["x"]
    colors = {"kl": "C0", "forward_kl": "C3"}
    gamma_colors = dict(zip(gammas, ("C1", "C2", "C4", "C5", "C6")))
    with _style():
        fig = _new_figure(11.0, 4.4)
        left, right = fig.subplots(1, 2)
        right.fill_between(x, data["pretrained_density"], color="0.85", label=r"$p_{pre}$ (pretrained)")
        for law in data["laws"]:
            color = colors.get(law["name"]) or gamma_colors.get(law["gamma"], "k")
            style = "--" if law["name"] == "forward_kl" else "-"
            left.plot(x, law["r_eff"], style, color=color, lw=1.5, label=law["label"])
            right.plot(x, law["density"], style, color=color, lw=1.5,
                       label=f"{law['short']}:  " + r"$E[r]$" + f" = {law['reward_finetuned']:.2f}")
        left.set_xlim(-4.5, 4.5)
        left.set_ylim(-0.3, 4.0)
        left.set_xlabel("x")
        left.set_ylabel(r"effective log-tilt $r_f(x)$")
        left.set_title(r"$r_f = \ln (f'_\pm)^{-1}(r/\alpha)$  (4.6),  $\alpha$ = " + f"{alpha:g},  "
                       + r"$r = e^{-(x-1)^2/2}$", fontsize=10)
        left.legend(fontsize=8, loc="upper left")
        right.set_xlim(-5.0, 4.5)
        right.set_ylim(0.0, 1.0)
        right.set_xlabel("x")
        right.set_ylabel("density")
        right.set_title(r"$p^f_{ftune} \propto e^{r_f} p_{pre}$  (4.5);  $E_{pre}[r]$ = "
                        + f"{data['reward_pretrained']:.2f}")
        right.legend(fontsize=8, loc="upper right", ncols=2)
        return _save(fig, path)


FIGURES = {
    "reward_collapse.png": plot_reward_collapse,
    "tv_bound.png": plot_tv_bound,
    "divergences.png": plot_divergences,
}
