"""Figure of the grid solvers: exact, grid (Numba) and FiPy side by side on the 1-D bimodal case.

``grid_comparison.png``
    Top: the value v(t, y) = α log h (3.17) of the exact solution as a heat map over (t, y),
    and the absolute errors |v_grid - v_exact| and |v_fipy - v_exact| (log colour scale).
    Bottom: the optimal control u*(t, y) = ς² ∇log h (Proposition 3.5) at t = 0.5 and 0.9
    for the three methods, and the fine-tuned terminal densities (3.2). The grid errors sit
    orders of magnitude below FiPy's (first order in time). No timings are drawn, so the PNG is
    byte-stable.
"""
import copy
import warnings

import numpy as np

from ..case import case_from_dict
from ..errors import HJSolveWarning
from ..solvers import solve
from .core import BASE
from .style import new_figure, save, style

CASE = copy.deepcopy(BASE) | {"title": "figures: grid vs fipy vs exact"}
CASE["reward"] = {"kind": "quadratic", "center": [1.0], "scale": 1.0}
GRID_OPTIONS = {"points": 801, "time_steps": 400}
FIPY_OPTIONS = {"points": 161, "time_steps": 80}
TIMES = np.linspace(0.0, 1.0, 41)
Y = np.linspace(-4.0, 4.0, 161)
CONTROL_TIMES = (0.5, 0.9)


def grid_comparison_data():
    """Value maps (3, nt, ny), controls at `CONTROL_TIMES` (3, 2, ny), terminal densities (3, ny),
    log C and wall times (not drawn) of exact, grid and fipy."""
    case = case_from_dict(copy.deepcopy(CASE))
    with warnings.catch_warnings():  # FiPy's coarse box keeps ~1.5e-6 of Q*_t on its outer cells
        warnings.simplefilter("ignore", HJSolveWarning)
        solutions = [solve(case, "exact"), solve(case, "grid", **GRID_OPTIONS), solve(case, "fipy", **FIPY_OPTIONS)]
    y = Y[:, None]
    return {
        "methods": ["exact", "grid", "fipy"],
        "value": np.stack([np.stack([s.value(t, y) for t in TIMES]) for s in solutions]),
        "control": np.stack([np.stack([s.control(t, y)[:, 0] for t in CONTROL_TIMES]) for s in solutions]),
        "density": np.stack([np.exp(s.terminal_log_density(y)) for s in solutions]),
        "log_normalizer": np.array([s.summary["log_normalizer"] for s in solutions]),
        "wall_time_s": np.array([s.summary["wall_time_s"] for s in solutions]),
    }


def plot_grid_comparison(path):
    from matplotlib.colors import LogNorm

    data = grid_comparison_data()
    with style():
        fig = new_figure(13.0, 7.0)
        axes = fig.subplots(2, 3)
        extent = (Y[0], Y[-1], TIMES[-1], TIMES[0])
        im = axes[0, 0].imshow(data["value"][0], aspect="auto", extent=extent, cmap="viridis")
        fig.colorbar(im, ax=axes[0, 0], label="v(t, y)")
        axes[0, 0].set_title("exact value v = α log h")
        norm = LogNorm(1e-7, 1e-1)
        for k, name in ((1, "grid"), (2, "fipy")):
            err = np.maximum(np.abs(data["value"][k] - data["value"][0]), 1e-12)
            im = axes[0, k].imshow(err, aspect="auto", extent=extent, cmap="magma", norm=norm)
            fig.colorbar(im, ax=axes[0, k], label=f"|v_{name} - v_exact|")
            dlogc = abs(data["log_normalizer"][k] - data["log_normalizer"][0])
            opts = GRID_OPTIONS if name == "grid" else FIPY_OPTIONS
            axes[0, k].set_title(f"{name} ({opts['points']} points, {opts['time_steps']} steps): |Δ log C| = {dlogc:.1e}",
                                 fontsize=10)
        for ax in axes[0]:
            ax.set_xlabel("y")
            ax.set_ylabel("sampler time t")
        styles = {"exact": ("k", "-"), "grid": ("tab:blue", "--"), "fipy": ("tab:red", ":")}
        for j, t in enumerate(CONTROL_TIMES):
            ax = axes[1, j]
            for k, name in enumerate(data["methods"]):
                color, ls = styles[name]
                ax.plot(Y, data["control"][k, j], color=color, ls=ls, lw=1.6, label=name)
            ax.set_title(f"control u*(t = {t:g}, y)")
            ax.set_xlabel("y")
            ax.legend()
        ax = axes[1, 2]
        for k, name in enumerate(data["methods"]):
            color, ls = styles[name]
            ax.plot(Y, data["density"][k], color=color, ls=ls, lw=1.6, label=name)
        ax.set_title("fine-tuned law p_ftune (3.2)")
        ax.set_xlabel("y")
        ax.legend()
        return save(fig, path)


FIGURES = {"grid_comparison.png": plot_grid_comparison}
