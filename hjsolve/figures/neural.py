"""``neural_convergence.png``: the neural-SDE solver against the exact solution, 1-D bimodal case.

Trains the control network (objective ``bridge_matching``, the default; one CPU thread) on the
1-D bimodal mixture of `core.BASE` with the quadratic reward centred at 2 and α = 0.5, and shows
(left) the weighted relative L2 error of u over (t, Q*_t) and the energy distance of 1000
terminal samples to exact ones against training steps; (middle) u_θ(t, ·) beside the exact
u*(t, ·) at three times; (right) a histogram of the neural samples over the exact p_ftune.
Training is seeded and single-threaded, so the PNG is reproducible on one machine (the step axis,
not the measured time, is plotted; `neural_convergence_data` also returns the measured times).
Without torch, `FIGURES` is empty and ``hjsolve figures`` skips it.
"""
import copy

import numpy as np

from ..case import case_from_dict
from ..solvers import solve
from ..solvers.neural import OPTIONS as NEURAL_OPTIONS
from .core import BASE
from .style import new_figure, save, style

try:
    import torch  # noqa: F401
except ImportError:  # the figure needs the neural extra
    torch = None

CASE = copy.deepcopy(BASE)
CASE.update(reward={"kind": "quadratic", "center": [2.0], "scale": 1.0}, finetune={"alpha": 0.5, "divergence": "kl"})
OPTIONS = {"objective": "bridge_matching", "train_steps": 300, "sample_steps": 100, "resampling_factor": 2, "seed": 0}
TIMES = (0.3, 0.6, 0.9)


def neural_convergence_data(options=None, evals=6, n_eval=500, n_samples=1000):
    """Numbers of the figure: dict with ``time``, ``step``, ``error`` and ``energy`` (evals,) along
    training, ``x`` (nx,), ``control`` and ``control_exact`` (len(TIMES), nx), ``samples`` (n,),
    ``density_exact`` (nx,) p_ftune on ``x``, and ``error_final``.
    """
    from ..neural.metrics import energy_distance, weighted_relative_l2
    from ..solvers.neural import train_solution

    opts = {k: v for k, (_, v) in NEURAL_OPTIONS.items()}
    opts.update(OPTIONS if options is None else options)
    case = case_from_dict(CASE)
    exact = solve(case, "exact")
    reference = exact.sample(n_samples, seed=123)
    every = max(opts["train_steps"] // evals, 1)
    rows = []

    def callback(trainer):
        if trainer.step % every == 0 or trainer.step == opts["train_steps"]:
            sol = trainer.solution
            sol.net.eval()
            y = sol.sample(n_samples, seed=trainer.step)
            rows.append((trainer.step, trainer.elapsed, weighted_relative_l2(sol.control, exact, n=n_eval),
                         energy_distance(y, reference)))
            sol.net.train()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        solution, _ = train_solution(case, opts, callback=callback)
    finally:
        torch.set_num_threads(threads)
    x = np.linspace(-4.0, 4.5, 341)[:, None]
    step, time, error, energy = (np.array(c) for c in zip(*rows))
    return {"step": step, "time": time, "error": error, "energy": energy, "x": x[:, 0],
            "control": np.stack([solution.control(t, x)[:, 0] for t in TIMES]),
            "control_exact": np.stack([exact.control(t, x)[:, 0] for t in TIMES]),
            "samples": solution.sample(4000, seed=1)[:, 0],
            "density_exact": np.exp(exact.terminal_log_density(x)),
            "density_pretrained": np.exp(exact.pretrained_log_density(x))}


def plot_neural_convergence(path):
    """``neural_convergence.png`` (module docstring)."""
    data = neural_convergence_data()
    with style():
        fig = new_figure(13.0, 4.0)
        left, middle, right = fig.subplots(1, 3)
        left.semilogy(data["step"], data["error"], "o-", color="C0", label=r"rel. $L^2$ error of $u$ over $(t, Q^*_t)$")
        left.semilogy(data["step"], data["energy"], "s-", color="C3", label="energy distance of samples")
        left.set_xlabel("training steps (Adam, batch 256, 1 CPU thread)")
        left.set_title("neural SDE vs exact (bridge matching)")
        left.legend(fontsize=8)
        x = data["x"]
        for t, u, u_exact, color in zip(TIMES, data["control"], data["control_exact"], ("C0", "C1", "C2")):
            middle.plot(x, u_exact, color=color, lw=2.2, alpha=0.45, label=f"exact $u^*$, t = {t:g}")
            middle.plot(x, u, color=color, lw=1.2, ls="--", label=rf"neural $u_\theta$, t = {t:g}")
        middle.set_xlim(-1.5, 4.5)
        middle.set_ylim(-6, 30)
        middle.set_xlabel("y")
        middle.set_title(r"control $u(t, y) = \varsigma^2 \nabla \log h$ (Prop. 3.5)")
        middle.legend(fontsize=7, ncol=2)
        right.fill_between(x, data["density_pretrained"], color="0.85", label=r"$p_{pre}$")
        right.hist(data["samples"], bins=80, range=(x[0], x[-1]), density=True, color="C0", alpha=0.5,
                   label="neural samples")
        right.plot(x, data["density_exact"], color="k", lw=1.5, label=r"exact $p_{ftune}$ (3.2)")
        right.set_xlabel("y")
        right.set_title(r"samples: $Y_0 \sim \hat\nu$ (3.16), then $u_\theta$")
        right.legend(fontsize=8)
        return save(fig, path)


FIGURES = {"neural_convergence.png": plot_neural_convergence} if torch is not None else {}
