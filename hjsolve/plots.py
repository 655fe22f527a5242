"""Figures of one solved case, written by ``hjsolve run``: value, control and terminal law.

Every figure is drawn on a `matplotlib.figure.Figure` with an Agg canvas (no pyplot, no
display, no global state), then written atomically with `hjsolve.io.atomic_path`.
In d ≥ 2 the value and control are shown on the slice through the plot box centre
(`Solution.tabulate`) and the terminal laws as scatter plots of the first two coordinates.
"""
import textwrap
from pathlib import Path

import numpy as np

from .errors import HJSolveError
from .figures.style import new_figure, save
from .progress import progress

#: Samples of p_ftune for the terminal-law histogram (1-D) and the pool for the scatter (d ≥ 2).
N_SAMPLES = 20_000
#: Points shown per law in the d ≥ 2 scatter plots.
N_SCATTER = 4_000
#: Sampler times drawn as curves in the 1-D control figure.
N_CONTROL_CURVES = 6
#: Every QUIVER_STRIDE-th grid point carries an arrow in the d ≥ 2 control figure.
QUIVER_STRIDE = 6
TITLE_CHARS_PER_INCH = 11
MIN_WIDTH = 6.4  # inches


def write_run_figures(solution, directory, table=None):
    """Write ``value.png``, ``control.png`` and ``terminal_law.png`` into ``directory``.

    ``table`` is ``solution.tabulate()`` if already computed. Returns the written paths;
    each file is written atomically. A solution with its own figures (``write_figures(directory)``,
    e.g. the latent-space image grid) writes those instead.
    """
    if hasattr(solution, "write_figures"):
        return solution.write_figures(directory)
    directory = Path(directory)
    paths = []
    with progress(total=len(FIGURES) + 1, desc="figures") as bar:
        table = solution.tabulate() if table is None else table
        bar.update()
        for name, draw in FIGURES.items():
            paths.append(save_figure(draw(solution, table), directory / name))
            bar.update()
    return paths


def save_figure(figure, path):
    """Write ``figure`` as PNG to ``path`` atomically and return ``path``."""
    save(figure, path)
    figure.clear()
    return Path(path)


# --------------------------------------------------------------------------- figures


def value_figure(solution, table):
    """v(t, y): a time × space heat map in 1-D, slices at t = 0, T/2, T in d ≥ 2."""
    if solution.problem.dimension == 1:
        figure, ax = _figure(1)
        _heat_map(figure, ax[0], table["x"], table["t"], table["value"], "v(t, y)")
        ax[0].set(xlabel="y", ylabel="sampler time t")
    else:
        figure, ax = _figure(len(table["t"]))
        for axis, t, value in zip(ax, table["t"], table["value"]):
            _heat_map(figure, axis, table["x0"], table["x1"], value.T, "v(t, y)")
            _label_slice(axis, t)
    _suptitle(figure, solution, "value function v(t, y)")
    return figure


def control_figure(solution, table):
    """u*(t, y): curves of u vs y in 1-D; quiver plots of (u_1, u_2) on the slices in d ≥ 2."""
    if solution.problem.dimension == 1:
        figure, ax = _figure(1)
        rows = np.unique(np.linspace(0, len(table["t"]) - 1, N_CONTROL_CURVES).astype(int))
        for row in rows:
            ax[0].plot(table["x"], table["control"][row], label=f"t = {table['t'][row]:.3g}")
        ax[0].set(xlabel="y", ylabel="u*(t, y)")
        ax[0].legend(fontsize="small")
    else:
        figure, ax = _figure(len(table["t"]))
        for axis, t, control in zip(ax, table["t"], table["control"]):
            _quiver(figure, axis, table["x0"], table["x1"], control)
            _label_slice(axis, t)
    _suptitle(figure, solution, "optimal control u*(t, y)")
    return figure


def terminal_law_figure(solution, table):
    """The fine-tuned terminal law against the pretrained one."""
    samples = solution.sample(N_SAMPLES, seed=0)
    if solution.problem.dimension == 1:
        figure = _terminal_law_1d(solution, samples)
    else:
        figure = _terminal_law_scatter(solution, samples)
    _suptitle(figure, solution, "terminal law: fine-tuned vs pretrained")
    return figure


FIGURES = {
    "value.png": value_figure,
    "control.png": control_figure,
    "terminal_law.png": terminal_law_figure,
}


# --------------------------------------------------------------------------- terminal law


def _terminal_law_1d(solution, samples):
    """Densities of p_ftune and p_pre where known, a histogram of p_ftune samples, the reward."""
    figure, ax = _figure(1)
    lo, hi = solution.plot_box()
    ys = np.linspace(min(lo[0], samples.min()), max(hi[0], samples.max()), 400)[:, None]
    ax[0].hist(samples[:, 0], bins=80, density=True, alpha=0.35, color="C1", label="p_ftune samples")
    for label, color, log_density in (("p_ftune", "C1", _terminal_log_density(solution, ys)),
                                      ("p_pre", "C0", _pretrained_log_density(solution, ys))):
        if log_density is not None:
            ax[0].plot(ys[:, 0], np.exp(log_density), color=color, label=label)
    ax[0].set(xlabel="y", ylabel="density")
    reward_axis = ax[0].twinx()
    reward_axis.plot(ys[:, 0], solution.problem.reward(ys), color="0.4", linestyle="--", label="reward r")
    reward_axis.set_ylabel("reward r(y)")
    _merged_legend(ax[0], reward_axis)
    return figure


def _terminal_law_scatter(solution, samples):
    """Scatter of p_ftune and p_pre samples on (y_1, y_2) over the reward's contours."""
    figure, ax = _figure(1, width=5.5)
    pretrained = _pretrained_samples(solution, N_SCATTER)
    _reward_contours(ax[0], solution)
    ax[0].scatter(pretrained[:, 0], pretrained[:, 1], s=2, alpha=0.3, color="C0", label="p_pre")
    shown = samples[:N_SCATTER]
    ax[0].scatter(shown[:, 0], shown[:, 1], s=2, alpha=0.3, color="C1", label="p_ftune")
    ax[0].set(xlabel="y_1", ylabel="y_2")
    ax[0].legend(markerscale=4, fontsize="small")
    return figure


def _terminal_log_density(solution, ys):
    """log p_ftune on ``ys`` if the method has a terminal density, else None."""
    try:
        return solution.terminal_log_density(ys)
    except HJSolveError:
        return None


def _pretrained_log_density(solution, ys):
    """log p_pre on ``ys`` if the solution knows it (the exact solution does), else None."""
    density = getattr(solution, "pretrained_log_density", None)
    return None if density is None else density(ys)


def _pretrained_samples(solution, n):
    """(n, d) samples of p_pre: the solution's exact pretrained sampler, else the pretrained model."""
    rng = np.random.default_rng(0)
    sampler = getattr(solution, "sample_pretrained", None)
    if sampler is not None:
        return sampler(n, rng)[0]
    return solution.problem.pretrained.sample(n, rng)


def _reward_contours(axis, solution, n=81):
    """Filled contours of r on the slice through the plot box centre."""
    lo, hi = solution.plot_box()
    x0, x1 = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    g0, g1 = np.meshgrid(x0, x1, indexing="ij")
    points = np.tile(0.5 * (lo + hi), (g0.size, 1))
    points[:, 0], points[:, 1] = g0.ravel(), g1.ravel()
    reward = solution.problem.reward(points).reshape(g0.shape)
    filled = axis.contourf(x0, x1, reward.T, levels=12, cmap="Greys", alpha=0.5)
    axis.figure.colorbar(filled, ax=axis, label="reward r")


# --------------------------------------------------------------------------- small helpers


def _figure(panels, width=4.6):
    """A figure with ``panels`` axes side by side, on an Agg canvas."""
    figure = new_figure(max(width * panels + 0.6, MIN_WIDTH), 4.2)
    return figure, np.atleast_1d(figure.subplots(1, panels))


def _heat_map(figure, axis, x, y, values, label):
    """pcolormesh of ``values`` (len(y), len(x)) with a colour bar; non-finite cells left blank."""
    mesh = axis.pcolormesh(x, y, np.ma.masked_invalid(values), shading="auto", cmap="viridis")
    figure.colorbar(mesh, ax=axis, label=label)


def _quiver(figure, axis, x0, x1, control):
    """Arrows of the first two control components, coloured by |u|, on a thinned grid."""
    s = slice(None, None, QUIVER_STRIDE)
    u, v = control[s, s, 0], control[s, s, 1]
    g0, g1 = np.meshgrid(x0[s], x1[s], indexing="ij")
    arrows = axis.quiver(g0, g1, u, v, np.hypot(u, v), cmap="viridis")
    figure.colorbar(arrows, ax=axis, label="|(u_1, u_2)|")


def _label_slice(axis, t):
    axis.set(xlabel="y_1", ylabel="y_2", title=f"t = {t:.3g}")


def _merged_legend(*axes):
    handles, labels = [], []
    for axis in axes:
        h, lab = axis.get_legend_handles_labels()
        handles += h
        labels += lab
    axes[0].legend(handles, labels, fontsize="small")


def _suptitle(figure, solution, what):
    """Title: the case title, then what is shown with α, the divergence, the method (and the slice in d ≥ 3).

    Lines are wrapped to the figure's width.
    """
    problem = solution.problem
    details = [f"α = {problem.alpha:g}", f"divergence {problem.divergence.name}", f"method {solution.method}"]
    if problem.dimension >= 3:
        details.append(f"d = {problem.dimension}, slice through the box centre")
    width = int(TITLE_CHARS_PER_INCH * figure.get_figwidth())
    lines = [solution.case.title, f"{what} ({', '.join(details)})"]
    figure.suptitle("\n".join(textwrap.fill(line, width) for line in lines))
