"""The `Solution` contract (DESIGN §3) shared by every solver, and `load`."""
import json
from pathlib import Path

import numpy as np

from .errors import HJSolveError
from .io import write_json, write_npz
from .mixture import GaussianMixture
from .progress import progress

SUMMARY_KEYS = (
    "case", "method", "dimension", "alpha", "divergence", "log_normalizer", "reward_pretrained",
    "reward_finetuned", "kl_finetuned_pretrained", "tv_bound", "wall_time_s",
)


class Solution:
    """Result of a solver: value, control, samples and a summary.

    Subclasses implement `log_h`, `grad_log_h`, `sample` and (where there is a density)
    `terminal_log_density`, and list in `_state()` the arrays needed to rebuild them.
    """

    method = "abstract"

    def __init__(self, case, summary=None):
        self.case = case
        self.problem = case.problem
        self.summary = dict(summary or {})

    # ----- DESIGN §3 -------------------------------------------------------------
    def value(self, t, y):
        """v(t, y) (n,) for y (n, d): α log h for kl, log h_f otherwise (3.17), (4.9)."""
        y = self._check_points(y)
        return self.problem.divergence.value_scale * self.log_h(self._check_time(t), y)

    def control(self, t, y):
        """u*(t, y) = ς(t)² ∇log h(t, y), shape (n, d) (Proposition 3.5, Corollary 4.4)."""
        y = self._check_points(y)
        t = self._check_time(t)
        return float(self.problem.sde.sampler_sigma2(t)) * self.grad_log_h(t, y)

    def value_and_control(self, t, y):
        """(value (n,), control (n, d)) together; solvers override this when sharing work pays."""
        return self.value(t, y), self.control(t, y)

    def log_h(self, t, y):
        raise NotImplementedError

    def grad_log_h(self, t, y):
        raise NotImplementedError

    def sample(self, n, seed=0):
        """(n, d) samples of the fine-tuned terminal law p_ftune."""
        raise NotImplementedError

    def terminal_log_density(self, y):
        """(n,) log p_ftune(y)."""
        raise HJSolveError(f"method '{self.method}' has no terminal density")

    # ----- persistence -----------------------------------------------------------
    def _state(self):
        """Arrays (name -> ndarray) that `from_state` needs, besides the case and summary."""
        return {}

    @classmethod
    def from_state(cls, case, summary, state):
        return cls(case, summary=summary)

    def tabulate(self):
        """Value and control on a plotting grid (saved for users who want plain arrays), cached.

        d = 1: ``t`` (nt,), ``x`` (nx,), ``value`` and ``control`` (nt, nx).
        d ≥ 2: ``t`` (3,), axes ``x0``, ``x1`` (nx,) of the slice through the box centre in
        the other coordinates, ``value`` (3, nx, nx) and ``control`` (3, nx, nx, d).
        """
        if getattr(self, "_table", None) is None:
            self._table = self._compute_table()
        return self._table

    def _compute_table(self):
        lo, hi = self.plot_box()
        T = float(self.problem.sde.T)
        d = self.problem.dimension
        if d == 1:
            ts = np.linspace(0.0, T, 41)
            xs = np.linspace(lo[0], hi[0], 201)
            pairs = [self.value_and_control(t, xs[:, None]) for t in progress(ts, desc="tabulating")]
            return {"t": ts, "x": xs, "value": np.stack([v for v, _ in pairs]),
                    "control": np.stack([u[:, 0] for _, u in pairs])}
        ts = np.array([0.0, 0.5 * T, T])
        x0, x1 = np.linspace(lo[0], hi[0], 41), np.linspace(lo[1], hi[1], 41)
        g0, g1 = np.meshgrid(x0, x1, indexing="ij")
        pts = np.tile(0.5 * (lo + hi), (g0.size, 1))
        pts[:, 0], pts[:, 1] = g0.ravel(), g1.ravel()
        pairs = [self.value_and_control(t, pts) for t in progress(ts, desc="tabulating")]
        return {"t": ts, "x0": x0, "x1": x1, "value": np.stack([v.reshape(g0.shape) for v, _ in pairs]),
                "control": np.stack([u.reshape(g0.shape + (d,)) for _, u in pairs])}

    def plot_box(self):
        """(lo, hi) arrays (d,) covering the pretrained mixture and the reward's features; for a
        model without a closed form (python score), the grid's box from a pilot simulation."""
        pre = self.problem.pretrained
        if not isinstance(pre, GaussianMixture):
            from .grid.domain import choose_data_box

            center, radius = choose_data_box(self.problem)
            return center - radius, center + radius
        spread = 4.0 * pre.max_std
        lo = pre.means.min(axis=0) - spread
        hi = pre.means.max(axis=0) + spread
        return lo, hi

    def save(self, directory):
        """Write ``solution.npz`` and ``summary.json`` into ``directory`` atomically."""
        directory = Path(directory)
        arrays = {f"state_{k}": np.asarray(v) for k, v in self._state().items()}
        arrays.update({f"table_{k}": v for k, v in self.tabulate().items()})
        arrays["case_json"] = np.array(json.dumps(self.case.raw))
        arrays["case_source"] = np.array(str(self.case.source))
        arrays["method"] = np.array(self.method)
        write_npz(directory / "solution.npz", arrays)
        write_json(directory / "summary.json", self.summary)
        return directory

    # ----- helpers ---------------------------------------------------------------
    def _check_time(self, t):
        T = float(self.problem.sde.T)
        t = float(t)
        if not 0.0 <= t <= T:
            raise HJSolveError(f"time t = {t} is outside [0, T] = [0, {T}]")
        return t

    def _check_points(self, y):
        y = np.asarray(y, dtype=float)
        if y.ndim == 1:
            y = y[None, :]
        d = self.problem.dimension
        if y.ndim != 2 or y.shape[1] != d:
            raise HJSolveError(f"points must have shape (n, {d}); got {np.shape(y)}")
        return y


def load(directory):
    """Read a solution written by `Solution.save` back into a `Solution`."""
    from .case import case_from_dict
    from .solvers import solution_class

    directory = Path(directory)
    try:
        data = np.load(directory / "solution.npz", allow_pickle=False)
        summary = json.loads((directory / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise HJSolveError(f"{directory}: cannot read a saved solution ({exc})") from None
    source = str(data["case_source"])
    case = case_from_dict(json.loads(str(data["case_json"])), source=source, base_dir=Path(source).parent)
    state = {k[len("state_"):]: data[k] for k in data.files if k.startswith("state_")}
    return solution_class(str(data["method"])).from_state(case, summary, state)
