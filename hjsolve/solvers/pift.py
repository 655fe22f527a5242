"""Method ``pift``: policy iteration for DDPM fine-tuning (paper 002, Algorithm 1 and Section 4.1).

``mode = "functional"`` (d ≤ 2): Algorithm 1 on a tensor grid, any Gaussian-mixture model and
any reward (`hjsolve.ddpm.functional`). ``mode = "parametric"`` (any d): controls linear in
features, u_t = φ(x) K_t, fitted by least squares on pretrained-chain states with a quadratic
critic (`hjsolve.ddpm.parametric`). Both record, per step and inner iteration, the control change,
the one-step gradient norm and the measured contraction factor, and check the strong-concavity
condition 2 w_t c_t > b_t² Lip(∇V_{t+1}); an HJSolveWarning names the steps where it fails and
the weight w_t (``finetune.alpha``) that would satisfy it. Summary integrals (DESIGN §3; see
`hjsolve.ddpm.solution`) are Monte Carlo over ``n_eval`` chains with seed ``seed``.
"""
import warnings

import numpy as np
from scipy.special import logsumexp

from ..ddpm.chain import make_chain
from ..ddpm.features import FEATURE_KINDS, Features, QuadraticValue
from ..ddpm.functional import run_functional
from ..ddpm.grid import Grid
from ..ddpm.parametric import run_parametric
from ..ddpm.solution import DDPMSolution
from ..errors import HJSolveError, HJSolveWarning, NotApplicableError

OPTIONS = {
    "mode": (str, "functional"),  # functional (grid, d ≤ 2) | parametric (features, any d)
    "grid_points": (int, 0),  # functional: points per axis; 0: 401 (d = 1), 81 (d = 2)
    "box": (float, 0.0),  # functional: grid half-width; 0: auto (covers N(0, I), data and reward)
    "gh_nodes": (int, 0),  # functional: Gauss–Hermite nodes per axis over W; 0: 20 (d = 1), 12 (d = 2)
    "tol": (float, 1e-10),  # inner loop: stop when |u^{m+1} - u^m| ≤ tol · max(1, |u|)
    "max_iter": (int, 200),  # inner loop: iteration cap per step
    "relax": (bool, True),  # damp the update by λ = 2/(2 + ρ_t) where the factor bound ρ_t ≥ 1/2
    "features": (str, "affine"),  # parametric: affine | quadratic | rbf (hjsolve.ddpm.features)
    "n_states": (int, 4000),  # parametric: pretrained-chain states per step for the least squares
    "n_eval": (int, 20_000),  # Monte Carlo chains for the summary integrals
    "seed": (int, 0),
}
MODES = ("functional", "parametric")
DEFAULT_GRID = {1: 401, 2: 81}
DEFAULT_GH = {1: 20, 2: 12}


def default_box(problem):
    """(lo, hi) (d,) of the functional grid: N(0, I) ± 6, data ± 6 std, reward centre ± 3."""
    pre = problem.pretrained
    spread = 6.0 * max(pre.max_std, 1.0)
    lo = np.minimum(pre.means.min(axis=0) - spread, -6.0)
    hi = np.maximum(pre.means.max(axis=0) + spread, 6.0)
    center = getattr(problem.reward, "center", None)
    if center is not None:
        lo, hi = np.minimum(lo, center - 3.0), np.maximum(hi, center + 3.0)
    return lo, hi


class PIFTSolution(DDPMSolution):
    """PI-FT solution; ``state`` (from `from_state`) skips the computation."""

    method = "pift"

    def __init__(self, case, options, summary=None, state=None):
        chain = make_chain(case)
        super().__init__(case, chain, summary)
        self.options = dict(options)
        self.mode = self.options["mode"]
        d = chain.dimension
        if self.mode not in MODES:
            raise HJSolveError(f"solver.pift.mode: must be one of {', '.join(MODES)} (got {self.mode!r})")
        if self.mode == "functional":
            if d > 2:
                raise NotApplicableError(f"pift: mode 'functional' runs on a grid in d ≤ 2 (d = {d}); use mode = 'parametric'")
            n = self.options["grid_points"] or DEFAULT_GRID[d]
            if n < 3:
                raise HJSolveError("solver.pift.grid_points: must be ≥ 3")
            box = self.options["box"]
            lo, hi = (np.full(d, -box), np.full(d, box)) if box > 0 else default_box(self.problem)
            self.grid = Grid(lo=np.asarray(lo, float), hi=np.asarray(hi, float), n=np.full(d, n, dtype=np.int64))
            if state is None:
                state = run_functional(chain, self.grid, self.options["gh_nodes"] or DEFAULT_GH[d],
                                       self.options["tol"], self.options["max_iter"], self.options["relax"])
            self.V, self.G, self.U = state["V"], state["G"], state["U"]
            self._zero_values = np.zeros(self.V.shape[1])
            x = self.grid.points
            # u_t = s_t + (u_t - s_t): the exact score plus the interpolated (smooth) correction.
            self.correction = np.stack([self.U[t] - chain.score(t, x) for t in range(self.steps)])
        else:
            if self.options["features"] not in FEATURE_KINDS:
                raise HJSolveError(f"solver.pift.features: must be one of {', '.join(FEATURE_KINDS)} (got {self.options['features']!r})")
            self.features = Features(self.options["features"], self.problem.pretrained)
            if state is None:
                out = run_parametric(chain, self.features, self.options["n_states"], self.options["seed"],
                                     self.options["tol"], self.options["max_iter"], self.options["relax"])
                state = {"K": out["K"], "records": out["records"],
                         "P": np.stack([v.P for v in out["values"]]), "q": np.stack([v.q for v in out["values"]]),
                         "kappa": np.array([v.kappa for v in out["values"]])}
            self.K = state["K"]
            self.values = [QuadraticValue(P, q, k) for P, q, k in zip(state["P"], state["q"], state["kappa"])]
        self.records = state.get("records", self.summary.get("records"))

    # ----- value and control --------------------------------------------------------------
    def _value(self, t, y):
        if self.mode == "parametric":
            return self.values[t](y)
        return self.grid.interpolate(self.V[t], self.G[t], y)[0]

    def _control(self, t, y):
        if self.mode == "parametric":
            return np.einsum("nf,fd->nd", self.features(y), self.K[t])  # einsum: no BLAS threads
        return self.chain.score(t, y) + self.grid.interpolate(self._zero_values, self.correction[t], y)[1]

    def sample(self, n, seed=0):
        """(n, d) terminal states of the controlled chain from X_0 ~ N(0, I) (vectorised over particles)."""
        return self.chain.simulate(self._control, n, seed)

    # ----- summary ------------------------------------------------------------------------
    def compute_summary(self):
        chain, reward = self.chain, self.problem.reward
        n, seed = self.options["n_eval"], self.options["seed"]
        r_pre = reward(chain.simulate(chain.score, n, seed + 1))
        kl_record = []
        r_fine = reward(chain.simulate(self._control, n, seed + 2, record=kl_record))
        lam = 1.0 / chain.w[0]
        records = self.records
        measured = [r["factor_measured"] for r in records if r["factor_measured"] is not None]
        failed = [r["t"] for r in records if not r["condition_ok"]]
        extra = {
            "mode": self.mode,
            "reward_pretrained_stderr": float(r_pre.std() / np.sqrt(n)),
            "reward_finetuned_stderr": float(r_fine.std() / np.sqrt(n)),
            "contraction_factor_measured": max(measured) if measured else None,
            "contraction_factor_bound": max(r["factor_bound"] for r in records),
            "iterations_total": int(sum(r["iterations"] for r in records)),
            "iterations_max": int(max(r["iterations"] for r in records)),
            "converged": bool(all(r["converged"] for r in records)),
            "condition_failed_steps": failed,
            "weight_needed": max(r["weight_needed"] for r in records),
            "records": records,
            "options": dict(self.options),
        }
        self.fill_summary(
            log_normalizer=logsumexp(lam * r_pre) - np.log(n),
            log_second_moment=logsumexp(2.0 * lam * r_pre) - np.log(n),
            reward_pretrained=r_pre.mean(), reward_finetuned=r_fine.mean(), kl_steps=kl_record[0], extra=extra)
        return self

    # ----- persistence --------------------------------------------------------------------
    def _state(self):
        if self.mode == "functional":
            return {"V": self.V, "G": self.G, "U": self.U}
        return {"K": self.K, "P": np.stack([v.P for v in self.values]),
                "q": np.stack([v.q for v in self.values]), "kappa": np.array([v.kappa for v in self.values])}

    @classmethod
    def from_state(cls, case, summary, state):
        options = {name: default for name, (_, default) in OPTIONS.items()}
        options.update(summary.get("options", {}))
        return cls(case, options, summary=summary, state=dict(state))


SOLUTION = PIFTSolution


def warn_condition(solution):
    """HJSolveWarning naming the steps where 2 w_t c_t > b_t² Lip(∇V_{t+1}) fails and the w_t needed."""
    failed = solution.summary["condition_failed_steps"]
    if not failed:
        return
    shown = ", ".join(str(t) for t in failed[:8]) + (f", ... ({len(failed)} steps)" if len(failed) > 8 else "")
    needed = max(r["weight_needed"] for r in solution.records if not r["condition_ok"])
    warnings.warn(
        f"pift: strong concavity 2 w_t c_t > b_t^2 Lip(grad V_(t+1)) fails at steps {shown}; "
        f"PI-FT's linear convergence needs finetune.alpha (w_t, beta_t in paper 002) > {needed:.4g} there"
        + (" (relaxed updates were used)" if solution.options["relax"] else ""),
        HJSolveWarning, stacklevel=3)


def solve(case, options):
    """Run PI-FT on a ddpm ``case`` (see the module docstring)."""
    solution = PIFTSolution(case, options).compute_summary()
    warn_condition(solution)
    return solution
