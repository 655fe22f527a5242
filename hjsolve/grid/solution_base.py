"""`TensorGridSolution`: what a solved grid gives (shared by the `grid` and `fipy` methods).

Stored: log h̃ (L, N) and the node masses of Q_t (L, N) at L saved levels (level 0 at t = T,
level L-1 at t = 0) on the z-grid of a `Domain`. Everything else follows:
value/control by cubic interpolation (u* = ς² ∇log h, Proposition 3.5), ν* ∝ h(0) p_noise
(3.16), Q*_t = h Q_t / C (3.21), p_ftune ∝ exp(r_eff) p_pre (3.2), and samples of p_ftune by
running the controlled SDE (3.9) from ν* (Proposition 3.6).
"""
import warnings

import numpy as np

from ..errors import HJSolveError, HJSolveWarning
from ..solution import Solution
from .domain import Domain
from .interpolation import evaluate
from .kernels import euler_maruyama_update
from .passes import TimeGrid

#: Mass of Q_t or Q*_t in the outermost layer of nodes above which `HJSolveWarning` is raised.
LEAK_TOLERANCE = 1e-6
TINY = 1e-300


class TensorGridSolution(Solution):
    """Solution on a tensor grid; see the module docstring. Subclasses set ``method``."""

    method = "tensor_grid"

    def __init__(self, case, summary=None, state=None, options=None):
        super().__init__(case, summary)
        self.options = dict(options or {})
        if state is not None:
            self._load(state)

    # ----- state -------------------------------------------------------------------
    def _load(self, state):
        sde = self.problem.sde
        self.domain = Domain(sde, np.asarray(state["center"], dtype=float), np.asarray(state["radius"], dtype=float),
                             int(state["n"]), float(state["noise_width"]))
        self.time_grid = TimeGrid(sde.T, int(state["nt"]), int(state["save_every"]),
                                  float(state["grading"]) if "grading" in state else 0.0)
        self.log_h_levels = np.ascontiguousarray(state["log_h"], dtype=float)
        self.mass_levels = np.ascontiguousarray(state["mass"], dtype=float)
        self.log_C = float(state["log_C"])

    def _state(self):
        dom, tg = self.domain, self.time_grid
        return {"center": dom.center, "radius": dom.radius, "n": np.array(dom.n),
                "noise_width": np.array(dom.noise_width), "nt": np.array(tg.nt),
                "save_every": np.array(tg.save_every), "grading": np.array(tg.grading), "log_h": self.log_h_levels,
                "mass": self.mass_levels, "log_C": np.array(self.log_C)}

    @classmethod
    def from_state(cls, case, summary, state):
        return cls(case, summary=summary, state=state, options=summary.get("options"))

    # ----- value and control ------------------------------------------------------------
    def log_h(self, t, y):
        """(n,) log h(t, y) interpolated from the grid."""
        return evaluate(self.log_h_levels, self.domain, self.time_grid, t, self._check_points(y))[0]

    def grad_log_h(self, t, y):
        """(n, d) ∇log h(t, y) interpolated from the grid."""
        return evaluate(self.log_h_levels, self.domain, self.time_grid, t, self._check_points(y))[1]

    def value_and_control(self, t, y):
        y, t = self._check_points(y), self._check_time(t)
        log_h, grad = evaluate(self.log_h_levels, self.domain, self.time_grid, t, y)
        return (self.problem.divergence.value_scale * log_h,
                float(self.problem.sde.sampler_sigma2(t)) * grad)

    # ----- laws on the grid ---------------------------------------------------------------
    def level_points(self, level):
        """(N, d) y-coordinates of the nodes at saved level ``level``."""
        t = self.time_grid.level_times[level]
        return self.domain.to_y(t, self.domain.nodes())

    def controlled_masses(self, level):
        """(N,) node masses of Q*_t = h Q_t / C at a saved level (3.21)."""
        return np.exp(self.log_h_levels[level] - self.log_C) * self.mass_levels[level]

    def initial_masses(self):
        """(N,) node masses of ν* ∝ h(0) p_noise (3.16)."""
        return self.controlled_masses(self.time_grid.levels - 1)

    def pretrained_log_density(self, y):
        """(n,) log p_pre(y) from the forward pass (floored at log 1e-300)."""
        y = self._check_points(y)
        dom = self.domain
        T = self.time_grid.T
        density = self.mass_levels[:1] / dom.dz**dom.d
        p, _ = _evaluate_level(density, dom, T, y)
        p = p / np.prod(dom.c(T))
        return np.log(np.maximum(p, TINY))

    def terminal_log_density(self, y):
        """(n,) log p_ftune(y) = r_eff(y) + log p_pre(y) - log C  (3.2)."""
        y = self._check_points(y)
        return self.problem.effective_reward(y) + self.pretrained_log_density(y) - self.log_C

    # ----- sampling (Proposition 3.6) ---------------------------------------------------------
    def sample_initial(self, n, seed=0):
        """(n, d) samples of ν* from its node masses (uniform jitter within a cell)."""
        return self._sample_initial(n, np.random.default_rng(seed))

    def _sample_initial(self, n, rng):
        dom = self.domain
        w = np.maximum(self.initial_masses(), 0.0)
        idx = rng.choice(w.size, size=n, p=w / w.sum())
        z = dom.nodes()[idx] + dom.dz * (rng.random((n, dom.d)) - 0.5)
        return dom.to_y(0.0, np.clip(z, -1.0, 1.0))

    def sample(self, n, seed=0):
        """(n, d) samples of p_ftune: the controlled SDE (3.9) from ν* with the grid control,
        Euler–Maruyama with ``sample_steps`` steps (Proposition 3.6's one-pass generation)."""
        rng = np.random.default_rng(seed)
        y = np.ascontiguousarray(self._sample_initial(n, rng))
        steps = int(self.options.get("sample_steps") or 1000)
        T = self.time_grid.T
        dt = T / steps
        for k in range(steps):
            t = k * dt
            sigma2 = float(self.problem.sde.sampler_sigma2(t))
            drift = np.ascontiguousarray(self.problem.sampler_drift(t, y))
            _, grad = evaluate(self.log_h_levels, self.domain, self.time_grid, t, y)
            noise = rng.standard_normal(y.shape)
            euler_maruyama_update(y, drift, sigma2 * grad, np.sqrt(sigma2 * dt), noise, dt)
        return y

    def plot_box(self):
        dom = self.domain
        return dom.center - dom.radius, dom.center + dom.radius

    # ----- summary --------------------------------------------------------------------------------
    def compute_summary(self, extra=None, terminal_reward=None):
        """Fill the DESIGN §3 keys from the grid and check the boundary leak. ``terminal_reward``:
        the reward at the nodes at t = T (N,) if the caller has it, else evaluated here."""
        problem, dom = self.problem, self.domain
        r = problem.reward(self.level_points(0)) if terminal_reward is None else terminal_reward
        r_eff = problem.divergence.effective(r)
        m_T, m_0 = self.mass_levels[0], self.mass_levels[-1]
        # log C = log Σ exp(r_eff) m_T = log Σ h(0) m_0, and E_pre[exp(2 r_eff)], from one exp each
        top_T, top_0 = np.max(r_eff), np.max(self.log_h_levels[-1])
        tilt = np.exp(r_eff - top_T)
        q_T = tilt * m_T
        sum_T, sum_0 = q_T.sum(), np.exp(self.log_h_levels[-1] - top_0) @ m_0
        with np.errstate(divide="ignore", invalid="ignore"):
            log_C_fwd, log_C_bwd = top_T + np.log(sum_T), top_0 + np.log(sum_0)
        if not (sum_T > 0 and sum_0 > 0 and np.isfinite(log_C_fwd) and np.isfinite(log_C_bwd)):
            raise HJSolveError(f"{self.method}: log C is not finite; refine the grid")
        self.log_C = float(log_C_bwd)
        q_T = q_T / sum_T
        mass_T = m_T.sum()
        log_m2 = float(2.0 * top_T + np.log((tilt * tilt) @ np.maximum(m_T, 0.0)) - np.log(mass_T))
        kappa = problem.divergence.effective_bounds(problem.reward)[0]
        with np.errstate(over="ignore"):
            shifted = 0.5 * np.exp(0.5 * log_m2 - kappa) if np.isfinite(kappa) else np.inf
            tv_bound = 0.5 * np.exp(0.5 * log_m2) if problem.divergence.name == "kl" else shifted
        leak = self.boundary_mass()
        self.summary.update({
            "case": self.case.title, "method": self.method, "dimension": problem.dimension,
            "alpha": problem.alpha, "divergence": problem.divergence.name,
            "log_normalizer": float(log_C_bwd),
            "reward_pretrained": float(r @ m_T / mass_T),
            "reward_finetuned": float(r @ q_T),
            "kl_finetuned_pretrained": float(q_T @ r_eff - log_C_fwd),
            "tv_bound": float(tv_bound), "wall_time_s": None,
            "log_normalizer_backward": float(log_C_bwd),
            "log_normalizer_forward": float(log_C_fwd),
            "log_normalizer_difference": float(log_C_bwd - log_C_fwd),
            "points_per_axis": dom.n, "time_steps": self.time_grid.nt, "time_grading": self.time_grid.grading,
            "cells": int(dom.n**dom.d),
            "data_box": np.stack([dom.center - dom.radius, dom.center + dom.radius], axis=1).tolist(),
            "boundary_mass": leak, "mass_error": float(abs(mass_T - 1.0)),
            "sde": problem.sde.kind, "reward": problem.reward.kind,
        })
        self.summary.update(extra or {})
        if leak > LEAK_TOLERANCE:
            warnings.warn(f"{self.method}: {leak:.2e} of the mass of Q_t or Q*_t reaches the boundary of the grid "
                          f"(tolerance {LEAK_TOLERANCE:g}); widen the domain (options domain, noise_width)",
                          HJSolveWarning, stacklevel=3)
        bad = [k for k, v in self.summary.items() if isinstance(v, float) and np.isnan(v)]
        if bad:
            raise HJSolveError(f"{self.method}: the summary has NaN in {', '.join(bad)}")
        return self

    def boundary_mass(self):
        """Largest mass of Q_t or Q*_t on the outermost layer of nodes over the saved levels."""
        dom = self.domain
        idx = np.indices(dom.shape).reshape(dom.d, -1)
        edge = np.any((idx == 0) | (idx == dom.n - 1), axis=0)
        pretrained = np.abs(self.mass_levels[:, edge])
        controlled = np.exp(self.log_h_levels[:, edge] - self.log_C) * pretrained  # Q* = h Q / C on the edge
        return float(max(pretrained.sum(axis=1).max(), controlled.sum(axis=1).max()))


def _evaluate_level(levels, domain, t, y):
    from .kernels import interpolate
    idx = np.ascontiguousarray(domain.to_index(t, y))
    value = np.empty(len(y))
    grad = np.empty_like(idx)
    interpolate(np.ascontiguousarray(levels), np.array(domain.shape, dtype=np.int64), np.zeros(1, dtype=np.int64),
                np.ones(1), idx, value, grad)
    return value, grad
