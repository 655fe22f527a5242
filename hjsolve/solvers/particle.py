"""Particle (Monte Carlo) solver: value, control and tilted law in any dimension.

Paper 000, Lemma 3.1 and the rejection discussion after it, (3.9), (3.16), (3.24), (3.27)–(3.33).
The pretrained sampler (2.4) runs as Numba kernels over particles (`hjsolve.particle`), with
the exact Gaussian-mixture score inside the kernel (other pretrained models: numpy step loops
calling ``problem.score``, with central-difference Jacobian-vector products in the adjoint).
Everything is reproducible from ``seed`` (counter-based streams).

- `value(t, y)`, `control(t, y)`: nested Monte Carlo from each query point, ``inner_paths``
  paths: log h by log-mean-exp, ∇log h by the pathwise tangent (3.29)–(3.30) or a
  Bismut–Elworthy–Li likelihood-ratio weight (option ``gradient``); with
  ``approximate_control`` the control is ũ* = ς² ∇E[r_eff(Y_T) | Y_t = y] of (3.28)
  (= ς²/α ∇E[r] for kl). `estimates(t, y)` returns every estimate with its standard error.
- `summary`: one outer simulation of ``n_paths`` paths from p_noise: log C = log mean exp(r_eff),
  E_pre r, E_ftune r (self-normalised), KL = E_ftune r_eff - log C, the TV bound of (3.3)/(4.7)
  from log mean exp(2 r_eff), each with a delta-method standard error (``*_stderr``), the ESS
  and the particle-steps per second.
- `sample(n, seed)`: ``sampler`` = "resampling" (importance resampling, ESS reported),
  "rejection" (von Neumann, exact for bounded rewards, acceptance rate vs theory) or
  "controlled" (one pass of (3.9) from ν* with this solution's own control — nested Monte Carlo
  at every step and particle, expensive). `sample_controlled(n, control, seed)` takes any control.
  The statistics of the last draw go to ``self.sampling``.
"""
import time

import numpy as np

from ..errors import HJSolveError, NotApplicableError
from ..particle import tilted
from ..particle.estimators import GRADIENTS, nested_estimates
from ..particle.rng import stream_key
from ..particle.sampler import PretrainedSampler
from ..particle.schedule import INTEGRATORS
from ..particle.stats import kl_estimate, log_mean_exp, mean_and_se, weighted_mean
from ..solution import Solution

OPTIONS = {
    "n_paths": (int, 100_000),  # outer paths for the summary
    "n_steps": (int, 400),  # steps on [0, T] (fewer for a query at t > 0)
    "inner_paths": (int, 4096),  # nested paths per query point for value/control
    "integrator": (str, "exponential"),  # exponential | euler
    "sampler": (str, "resampling"),  # resampling | rejection | controlled
    "gradient": (str, "likelihood_ratio"),  # likelihood_ratio | pathwise (both always estimated)
    "approximate_control": (bool, False),  # control(t, y) = ũ* of (3.28) instead of u*
    "bismut_fraction": (float, 0.5),  # fraction of the steps the likelihood-ratio weight averages over
    "resampling_factor": (int, 20),  # pool = max(n_paths, factor * n) for resampling / ν*
    "max_proposals": (int, 50_000_000),  # rejection budget
    "table_inner_paths": (int, 256),  # nested paths per point of the saved table (tabulate)
    "seed": (int, 0),
}
SAMPLERS = ("resampling", "rejection", "controlled")


class ParticleSolution(Solution):
    """Monte Carlo solution; see the module docstring. Nothing but the options is persisted."""

    method = "particle"

    def __init__(self, case, summary=None, options=None):
        super().__init__(case, summary)
        problem = self.problem
        if problem.is_discrete:
            raise NotApplicableError("particle: sde.kind = 'ddpm' is discrete; use method 'pift'")
        self.options = {name: default for name, (_, default) in OPTIONS.items()}
        self.options.update(options or {})
        opts = self.options
        for name, allowed in (("integrator", INTEGRATORS), ("sampler", SAMPLERS), ("gradient", GRADIENTS)):
            if opts[name] not in allowed:
                raise HJSolveError(f"solver.particle.{name}: must be one of {', '.join(allowed)} (got {opts[name]!r})")
        for name in ("n_paths", "n_steps", "inner_paths"):
            if opts[name] < (2 if name != "n_steps" else 1):
                raise HJSolveError(f"solver.particle.{name}: must be >= {2 if name != 'n_steps' else 1} (got {opts[name]})")
        if not 0.0 < opts["bismut_fraction"] <= 1.0:
            raise HJSolveError(f"solver.particle.bismut_fraction: must be in (0, 1] (got {opts['bismut_fraction']})")
        self.sampler = PretrainedSampler(problem, opts["n_steps"], opts["integrator"])
        self.sampling = None
        self._memo = {}

    # ----- value and control -------------------------------------------------------
    def estimates(self, t, y, gradient=True):
        """Every nested estimate at (t, y (n, d)) with its standard error (see `nested_estimates`)."""
        y, t = self._check_points(y), self._check_time(t)
        opts = self.options
        return nested_estimates(self.problem, self.sampler, t, y, opts["inner_paths"], opts["seed"],
                                gradient=gradient, bismut_fraction=opts["bismut_fraction"])

    def _cached(self, t, y, gradient):
        key = (float(t), y.tobytes(), gradient)
        if key not in self._memo:
            self._memo = {key: self.estimates(t, y, gradient)}
        return self._memo[key]

    def log_h(self, t, y):
        """(n,) nested Monte Carlo log h(t, y) (3.24)."""
        return self._cached(t, y, False)["log_h"].copy()

    def grad_log_h(self, t, y):
        """(n, d) ∇log h by the ``gradient`` estimator; ∇E[r_eff] with ``approximate_control`` (3.28)."""
        est = self._cached(t, y, True)
        pathwise = self.options["gradient"] == "pathwise"
        if self.options["approximate_control"]:
            return (est["grad_reward"] if pathwise else est["grad_reward_lr"]).copy()
        return (est["grad_pathwise"] if pathwise else est["grad_lr"]).copy()

    def value_and_control(self, t, y):
        y, t = self._check_points(y), self._check_time(t)
        est = self._cached(t, y, True)
        grad = self.grad_log_h(t, y)
        return (self.problem.divergence.value_scale * est["log_h"],
                float(self.problem.sde.sampler_sigma2(t)) * grad)

    def approximate_control(self, t, y):
        """(n, d) ũ*(t, y) = ς² ∇E[r_eff(Y_T) | Y_t = y] of (3.28)."""
        y, t = self._check_points(y), self._check_time(t)
        est = self._cached(t, y, True)
        grad = est["grad_reward"] if self.options["gradient"] == "pathwise" else est["grad_reward_lr"]
        return float(self.problem.sde.sampler_sigma2(t)) * grad

    def _compute_table(self):
        """A coarser `Solution.tabulate` table (11 × 41 in 1-D, 3 × 21 × 21 slices otherwise) with
        ``table_inner_paths`` nested paths per point: the full grid would cost ~1e10 particle-steps."""
        lo, hi = self.plot_box()
        T, d = float(self.problem.sde.T), self.problem.dimension
        saved = self.options["inner_paths"]
        self.options["inner_paths"] = self.options["table_inner_paths"]
        try:
            if d == 1:
                ts, xs = np.linspace(0.0, T, 11), np.linspace(lo[0], hi[0], 41)
                pairs = [self.value_and_control(t, xs[:, None]) for t in ts]
                return {"t": ts, "x": xs, "value": np.stack([v for v, _ in pairs]),
                        "control": np.stack([u[:, 0] for _, u in pairs])}
            ts = np.array([0.0, 0.5 * T, T])
            x0, x1 = np.linspace(lo[0], hi[0], 21), np.linspace(lo[1], hi[1], 21)
            g0, g1 = np.meshgrid(x0, x1, indexing="ij")
            pts = np.tile(0.5 * (lo + hi), (g0.size, 1))
            pts[:, 0], pts[:, 1] = g0.ravel(), g1.ravel()
            pairs = [self.value_and_control(t, pts) for t in ts]
            return {"t": ts, "x0": x0, "x1": x1, "value": np.stack([v.reshape(g0.shape) for v, _ in pairs]),
                    "control": np.stack([u.reshape(g0.shape + (d,)) for _, u in pairs])}
        finally:
            self.options["inner_paths"] = saved
            self._memo = {}

    # ----- sampling ----------------------------------------------------------------------
    def sample(self, n, seed=0):
        """(n, d) samples of p_ftune by the ``sampler`` option."""
        return self.sample_pairs(n, seed)[0]

    def sample_pairs(self, n, seed=0):
        """(Y_T, Y_0) pairs (n, d) of the chosen sampler; statistics in ``self.sampling``."""
        kind, opts = self.options["sampler"], self.options
        pool = max(opts["n_paths"], opts["resampling_factor"] * int(n))
        if kind == "resampling":
            x, y, stats = tilted.importance_resampling(self.problem, self.sampler, int(n), seed, pool)
        elif kind == "rejection":
            x, y, stats = tilted.rejection(self.problem, self.sampler, int(n), seed,
                                           self.summary.get("log_normalizer"), opts["max_proposals"])
        else:
            control = self.approximate_control if opts["approximate_control"] else self.control
            return self.sample_controlled(n, control, seed, return_initial=True)
        self.sampling = stats
        return x, y

    def sample_controlled(self, n, control, seed=0, initial=None, log_h0=None, return_initial=False):
        """Y_T (n, d) of one pass of (3.9) with ``control`` (t, y) -> (n, d).

        Y_0 = ``initial`` (n, d) if given, else ν* by `tilted.initial_by_weights` (with
        ``log_h0`` if given, else one-pass resampling of pretrained paths).
        """
        opts = self.options
        ess = None
        if initial is None:
            pool = max(opts["n_paths"], opts["resampling_factor"] * int(n))
            initial, ess = tilted.initial_by_weights(self.problem, self.sampler, int(n), seed, pool, log_h0)
        y_T = tilted.controlled(self.problem, self.sampler, control, initial, seed)
        self.sampling = {"sampler": "controlled", "exact": False, "initial_ess": ess}
        return (y_T, initial) if return_initial else y_T

    # ----- summary -------------------------------------------------------------------------
    def compute_summary(self):
        """Fill the DESIGN §3 keys from ``n_paths`` pretrained paths, with standard errors."""
        problem, opts = self.problem, self.options
        n = opts["n_paths"]
        start = time.perf_counter()
        _, y_T, _, sched = self.sampler.run(stream_key(opts["seed"], 1), n)
        elapsed = time.perf_counter() - start
        r = problem.reward(y_T)
        r_eff = problem.divergence.effective(r)
        if not np.all(np.isfinite(r_eff)):
            raise HJSolveError("particle: the effective reward is not finite on some pretrained samples")
        log_c, log_c_se, ess = log_mean_exp(r_eff)
        log_m2, log_m2_se, _ = log_mean_exp(2.0 * r_eff)
        r_pre, r_pre_se = mean_and_se(r)
        r_ft, r_ft_se = weighted_mean(r_eff, r)
        kl, kl_se = kl_estimate(r_eff, r_eff)
        kappa = problem.divergence.effective_bounds(problem.reward)[0]
        with np.errstate(over="ignore"):  # +inf is the honest bound when it overflows
            shifted = 0.5 * np.exp(0.5 * log_m2 - kappa) if np.isfinite(kappa) else np.inf
            tv_bound = 0.5 * np.exp(0.5 * log_m2) if problem.divergence.name == "kl" else shifted
        valid = problem.reward.inf >= 0 if problem.divergence.name == "kl" else bool(np.isfinite(kappa))
        self.summary.update({
            "case": self.case.title,
            "method": self.method,
            "dimension": problem.dimension,
            "alpha": problem.alpha,
            "divergence": problem.divergence.name,
            "log_normalizer": log_c,
            "reward_pretrained": float(r_pre),
            "reward_finetuned": float(r_ft),
            "kl_finetuned_pretrained": kl,
            "tv_bound": float(tv_bound),
            "wall_time_s": None,
            "log_normalizer_stderr": log_c_se,
            "reward_pretrained_stderr": float(r_pre_se),
            "reward_finetuned_stderr": float(r_ft_se),
            "kl_finetuned_pretrained_stderr": kl_se,
            "tv_bound_stderr": float(tv_bound * 0.5 * log_m2_se) if np.isfinite(tv_bound) else None,
            "tv_bound_valid": bool(valid),
            "tv_bound_shifted": float(shifted),
            "ess": ess,
            "ess_fraction": ess / n,
            "acceptance_rate_theory": (float(np.exp(log_c - problem.divergence.effective_bounds(problem.reward)[1]))
                                       if np.isfinite(problem.divergence.effective_bounds(problem.reward)[1]) else None),
            "particle_steps_per_second": n * sched.n_steps / elapsed,
            "n_paths": n,
            "n_steps": sched.n_steps,
            "integrator": opts["integrator"],
            "sampler": opts["sampler"],
            "score": "numba_mixture" if self.sampler.kernel else "callback",
            "sde": problem.sde.kind,
            "reward": problem.reward.kind,
            "options": dict(opts),
        })
        bad = [k for k, v in self.summary.items() if isinstance(v, float) and np.isnan(v)]
        if bad:
            raise HJSolveError(f"particle: the summary has NaN in {', '.join(bad)}")
        return self

    @classmethod
    def from_state(cls, case, summary, state):
        return cls(case, summary=summary, options=summary.get("options"))


SOLUTION = ParticleSolution


def solve(case, options):
    """Simulate the pretrained sampler and fill the summary (value/control are computed on demand)."""
    return ParticleSolution(case, options=options).compute_summary()
