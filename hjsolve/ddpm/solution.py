"""`DDPMSolution`: the `Solution` contract (DESIGN §3) for the discrete chain, integer steps.

value(t, y) = V_t(y) for t = 0..N (V_N = r); control(t, y) = u*_t(y) for t = 0..N-1 (the
fine-tuned score that replaces s_t in X_{t+1} = a_t X_t + b_t u + σ_k W).

Summary entries (DESIGN §3, read for the discrete problem):
``log_normalizer``   log E_pre[exp(r(X_N)/α)] under the *pretrained DDPM chain* with α = w_0 (for
                     constant weights w_t = α this is the log-normaliser of the tilted law
                     exp(r/α) p_pre; the DDPM optimum with X_0 ~ N(0, I) fixed is only
                     approximately that tilted law — exactly it as N → ∞ with ν* free);
``reward_pretrained`` / ``reward_finetuned``  E r(X_N) under the pretrained / controlled chain;
``kl_finetuned_pretrained``  the path KL Σ_t E c_t |u_t - s_t|² of the controlled chain against the
                     pretrained one (Lemma 2.5; it bounds KL of the terminal laws from above);
``tv_bound``         ½ sqrt(E_pre exp(2r/α)) (second term of paper 000, (3.3)) with the chain's p_pre;
``objective``        E r(X_N) - Σ_t w_t KL_t under the computed control (= E V_0(X_0) at the optimum).
"""
import numpy as np

from ..errors import HJSolveError
from ..progress import progress
from ..solution import Solution


class DDPMSolution(Solution):
    """Base class of the DDPM solutions; subclasses give `_value(t, y)` and `_control(t, y)`."""

    def __init__(self, case, chain, summary=None):
        super().__init__(case, summary)
        self.chain = chain
        self.steps = chain.steps

    # ----- DESIGN §3 with integer steps --------------------------------------------------
    def value(self, t, y):
        """(n,) V_t(y) for y (n, d); t an integer in 0..N (V_N = r)."""
        return self._value(self._check_step(t, self.steps), self._check_points(y))

    def control(self, t, y):
        """(n, d) u*_t(y); t an integer in 0..N-1."""
        return self._control(self._check_step(t, self.steps - 1), self._check_points(y))

    def value_and_control(self, t, y):
        return self.value(t, y), self.control(t, y)

    def log_h(self, t, y):
        """V_t / w_t: the discrete analogue of log h (exact for the tilted problem only as N → ∞)."""
        t = self._check_step(t, self.steps)
        return self.value(t, y) / self.chain.w[min(t, self.steps - 1)]

    def sample_pretrained(self, n, rng):
        """(X_N, X_0) pairs (n, d) of the pretrained chain (u = s) from X_0 ~ N(0, I)."""
        x0 = rng.standard_normal((n, self.problem.dimension))
        return self.chain.run(self.chain.score, x0, rng), x0

    def _check_step(self, t, last):
        try:
            as_float = float(t)
        except (TypeError, ValueError):
            raise HJSolveError(f"ddpm: step t must be an integer in 0..{last} (got {t!r})") from None
        if not as_float.is_integer() or not 0 <= as_float <= last:
            raise HJSolveError(f"ddpm: step t must be an integer in 0..{last} (got {t!r})")
        return int(as_float)

    # ----- tables and plots --------------------------------------------------------------
    def plot_box(self):
        """(lo, hi) (d,) covering N(0, I) (X_0), the data mixture and the reward's centre."""
        pre = self.problem.pretrained
        spread = 4.0 * max(pre.max_std, 1.0)
        lo = np.minimum(pre.means.min(axis=0) - spread, -4.0)
        hi = np.maximum(pre.means.max(axis=0) + spread, 4.0)
        center = getattr(self.problem.reward, "center", None)
        if center is not None:
            lo, hi = np.minimum(lo, center - 1.0), np.maximum(hi, center + 1.0)
        return lo, hi

    def _compute_table(self):
        """Like `Solution.tabulate` with integer steps: ``t`` holds steps in 0..N-1."""
        lo, hi = self.plot_box()
        d = self.problem.dimension
        N = self.steps
        if d == 1:
            ts = np.unique(np.linspace(0, N - 1, min(N, 41)).round().astype(int))
            xs = np.linspace(lo[0], hi[0], 201)
            pairs = [self.value_and_control(int(t), xs[:, None]) for t in progress(ts, desc="tabulating")]
            return {"t": ts, "x": xs, "value": np.stack([v for v, _ in pairs]),
                    "control": np.stack([u[:, 0] for _, u in pairs])}
        ts = np.unique(np.array([0, N // 2, N - 1]))
        x0, x1 = np.linspace(lo[0], hi[0], 41), np.linspace(lo[1], hi[1], 41)
        g0, g1 = np.meshgrid(x0, x1, indexing="ij")
        pts = np.tile(0.5 * (lo + hi), (g0.size, 1))
        pts[:, 0], pts[:, 1] = g0.ravel(), g1.ravel()
        pairs = [self.value_and_control(int(t), pts) for t in ts]
        return {"t": ts, "x0": x0, "x1": x1, "value": np.stack([v.reshape(g0.shape) for v, _ in pairs]),
                "control": np.stack([u.reshape(g0.shape + (d,)) for _, u in pairs])}

    # ----- summary -----------------------------------------------------------------------
    def fill_summary(self, log_normalizer, log_second_moment, reward_pretrained, reward_finetuned, kl_steps, extra):
        """The DESIGN §3 keys (module docstring) plus ``extra``; ``kl_steps`` (N,) is E c_t |u_t - s_t|².

        NaN anywhere is an error.
        """
        kl_steps = np.asarray(kl_steps, dtype=float)
        kl = float(kl_steps.sum())
        problem = self.problem
        weights = self.chain.w
        tv_bound = 0.5 * float(np.exp(min(0.5 * log_second_moment, 700.0)))
        self.summary.update({
            "case": self.case.title,
            "method": self.method,
            "dimension": problem.dimension,
            "alpha": problem.alpha,
            "divergence": problem.divergence.name,
            "log_normalizer": float(log_normalizer),
            "reward_pretrained": float(reward_pretrained),
            "reward_finetuned": float(reward_finetuned),
            "kl_finetuned_pretrained": float(kl),
            "tv_bound": tv_bound if 0.5 * log_second_moment < 700.0 else float("inf"),
            "tv_bound_valid": bool(problem.reward.inf >= 0),
            "wall_time_s": None,
            "sde": "ddpm",
            "steps": self.steps,
            "reward": problem.reward.kind,
            "kl_weights_constant": bool(np.all(weights == weights[0])),
            "log_normalizer_weight": float(weights[0]),
            "kl_meaning": "path KL sum_t E c_t |u_t - s_t|^2 (Lemma 2.5, paper 002)",
            "objective": float(reward_finetuned - np.sum(weights * kl_steps)),
        })
        self.summary.update(extra)
        bad = [k for k, v in self.summary.items() if isinstance(v, float) and np.isnan(v)]
        if bad:
            raise HJSolveError(f"{self.method}: the summary has NaN in {', '.join(bad)}")
        return self

