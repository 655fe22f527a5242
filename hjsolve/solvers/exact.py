"""Exact solver for Gaussian-mixture pretrained models (paper 000, Sections 3–4).

With the exact mixture score, the pretrained sampler's transition from (t, y) to T is the
posterior of X_0 given X_{T-t} = y, a Gaussian mixture (see `hjsolve.mixture`). Hence

    h(t, y) = Σ_k π_k(y) E_{N(μ_k(y), S_k)}[exp(r_eff)]                       (3.24)
    ∇log h = Σ_k ρ_k [-C_k^{-1}(y - a m_k) + J_k Ẽ_k ∇r_eff] - score(T-t, y)   (Prop. 3.5)

with ρ_k ∝ π_k E_k[exp(r_eff)] the tilted responsibilities. Integrals over p_noise
(log C, ν*, E r, KL) use Gauss–Hermite rules (`hjsolve.quadrature`); the inner expectations
are closed forms for quadratic/linear rewards under kl, Gauss–Hermite otherwise (d ≤ 3).

Because p_noise = N(0, var(T) I) is not the forward marginal p(T, ·), p_pre is not p_data:
p_pre(x) = p_data(x) R(x) with R(x) = E_{Y ~ N(a(T) x, var(T) I)}[p_noise(Y)/p(T, Y)].
"""
import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

from ..errors import HJSolveError, HJSolveWarning, NotApplicableError
from ..mixture import GaussianMixture
from ..moments import ClosedFormMoments, make_moments
from ..progress import progress
from ..quadrature import MAX_TENSOR_DIMENSION, gauss_hermite, orthonormal_basis, reduced_isotropic_rule, tensor_rule
from ..solution import Solution

OPTIONS = {
    "quadrature_nodes": (int, 0),  # per axis for reward expectations; 0: 128, 64, 32 for d = 1, 2, 3
    "noise_nodes": (int, 0),  # per axis for integrals over p_noise; 0: 96, 40, 20 for d = 1, 2, 3
    "ratio_nodes": (int, 0),  # per axis for R(x) = E[p_noise/p(T, .)]; 0: 48, 16, 6 for d = 1, 2, 3
    "radial_nodes": (int, 32),  # Gauss–Laguerre nodes of the reduced rule (d > 3)
    "max_proposals": (int, 20_000_000),  # rejection sampling budget before falling back
    "resampling_factor": (int, 50),  # proposals per sample for importance resampling
}
DEFAULT_NODES = {1: 128, 2: 64, 3: 32}
DEFAULT_NOISE_NODES = {1: 96, 2: 40, 3: 20}
DEFAULT_RATIO_NODES = {1: 48, 2: 16, 3: 6}
TV_NODES = {1: 64, 2: 24, 3: 12}  # TV(p_pre, p_data) integrates |R - 1|, which is not smooth
REDUCED_NODES = 24
CHUNK = 4096


class ExactSolution(Solution):
    """Closed-form / quadrature solution; see the module docstring."""

    method = "exact"

    def __init__(self, case, summary=None, options=None):
        super().__init__(case, summary)
        problem = self.problem
        if problem.is_discrete:
            raise NotApplicableError("exact: sde.kind = 'ddpm' has no continuous closed form; use method 'pift'")
        if not isinstance(problem.pretrained, GaussianMixture):
            raise NotApplicableError("exact: needs pretrained.kind = 'gaussian_mixture'")
        self.options = dict(options or {name: default for name, (_, default) in OPTIONS.items()})
        d = problem.dimension
        self.moments = make_moments(problem, self.options["quadrature_nodes"] or DEFAULT_NODES.get(d, 16))
        self.closed_form = isinstance(self.moments, ClosedFormMoments)
        self.sde = problem.sde
        self.T = float(self.sde.T)
        self.a_T = float(self.sde.a(self.T))
        self.var_T = float(self.sde.var(self.T))
        self.noise_marginal = problem.pretrained.marginal(self.a_T, self.var_T)

    # ----- value and control -------------------------------------------------------
    def _posterior(self, t, y):
        """log π (n, K), μ (n, K, d) and the per-time terms of X_0 | Y_t = y."""
        s = self.T - t
        a, var = float(self.sde.a(s)), float(self.sde.var(s))
        marg, gains, post_covs = self.problem.pretrained.posterior(a, var)
        log_pi = marg.responsibilities(y)
        mu = self.problem.pretrained.posterior_means(y, a, gains)
        return log_pi, mu, marg, gains, post_covs

    def _chunks(self, y, func):
        return np.concatenate([func(y[i:i + CHUNK]) for i in range(0, len(y), CHUNK)], axis=0)

    def log_h(self, t, y):
        """(n,) log h(t, y) of (3.24)."""
        return self._chunks(y, lambda yb: self._log_h_block(t, yb, gradient=False)[0])

    def grad_log_h(self, t, y):
        """(n, d) ∇_y log h(t, y) (module docstring)."""
        return self._chunks(y, lambda yb: self._log_h_block(t, yb, gradient=True)[1])

    def value_and_control(self, t, y):
        y, t = self._check_points(y), self._check_time(t)
        blocks = [self._log_h_block(t, y[i:i + CHUNK], gradient=True) for i in range(0, len(y), CHUNK)]
        log_h = np.concatenate([b[0] for b in blocks])
        grad = np.concatenate([b[1] for b in blocks])
        scale = self.problem.divergence.value_scale
        return scale * log_h, float(self.sde.sampler_sigma2(t)) * grad

    def _log_h_block(self, t, y, gradient):
        """log h (n,) and, if ``gradient``, ∇log h (n, d) for one chunk of points."""
        log_pi, mu, marg, gains, post_covs = self._posterior(t, y)
        m = self.moments.compute(mu, post_covs, {"log_m1", "tilt_grad"} if gradient else {"log_m1"})
        joint = log_pi + m["log_m1"]
        log_h = logsumexp(joint, axis=1)
        if not gradient:
            return log_h, None
        rho = np.exp(joint - log_h[:, None])
        pulled = np.einsum("kij,nkj->nki", gains, m["tilt_grad"])
        grad = np.einsum("nk,nki->ni", rho - np.exp(log_pi), marg.component_scores(y))
        return log_h, grad + np.einsum("nk,nki->ni", rho, pulled)

    # ----- integrals over p_noise ----------------------------------------------------
    def noise_rule(self, centers=None, option="noise_nodes"):
        """Points (n, q, d) and log weights (q,) for N(c_i, var(T) I); centres default to 0 (p_noise)."""
        d = self.problem.dimension
        centers = np.zeros((1, d)) if centers is None else np.atleast_2d(centers)
        var = self.var_T
        if d <= MAX_TENSOR_DIMENSION:
            defaults = DEFAULT_NOISE_NODES if option == "noise_nodes" else DEFAULT_RATIO_NODES
            return tensor_rule(centers, var, self.options[option] or defaults[d])
        pre = self.problem.pretrained
        span = np.concatenate([pre.means, self.problem.reward.span()])
        basis = orthonormal_basis(span, d)
        if pre.isotropic_vars is None or basis.shape[1] > 2 or d < basis.shape[1] + 2:
            raise NotApplicableError(
                f"exact: integrals over p_noise in d = {d} > {MAX_TENSOR_DIMENSION} need isotropic components "
                "(pretrained.stds) and means plus reward direction spanning at most 2 dimensions"
            )
        return reduced_isotropic_rule(centers, var, basis, REDUCED_NODES, self.options["radial_nodes"])

    def noise_integrals(self):
        """log C, E_pre r, E_ftune r, E_ftune r_eff, log E_pre exp(2 r_eff) and TV(p_pre, p_data)."""
        if self.closed_form:
            out = self._integrals_over_noise()
            d = self.problem.dimension
            tv = self._integrals_over_data(TV_NODES[d])["tv_pretrained_data"] if d in TV_NODES else None
            out["tv_pretrained_data"] = tv
            return out
        return self._integrals_over_data()

    def _integrals_over_noise(self):
        """Quadrature over Y_0 ~ p_noise with closed-form inner expectations (any d)."""
        points, log_w = self.noise_rule()
        points = points[0]
        want = {"log_m1", "log_m2", "r", "tilt_r", "tilt_reff"}
        acc = {key: [] for key in ("log_h0", "log_m2", "pre_r", "tilt_r", "tilt_reff")}
        steps = range(0, len(points), CHUNK)
        for i in progress(steps, desc="exact: integrals over p_noise", total=len(steps)):
            yb = points[i:i + CHUNK]
            log_pi, mu, _, _, post_covs = self._posterior(0.0, yb)
            m = self.moments.compute(mu, post_covs, want)
            joint = log_pi + m["log_m1"]
            rho = softmax(joint, axis=1)
            pi = np.exp(log_pi)
            acc["log_h0"].append(logsumexp(joint, axis=1))
            acc["log_m2"].append(logsumexp(log_pi + m["log_m2"], axis=1))
            acc["pre_r"].append(np.sum(pi * m["r"], axis=1))
            acc["tilt_r"].append(np.sum(rho * m["tilt_r"], axis=1))
            acc["tilt_reff"].append(np.sum(rho * m["tilt_reff"], axis=1))
        acc = {k: np.concatenate(v) for k, v in acc.items()}
        log_C = float(logsumexp(log_w + acc["log_h0"]))
        nu = np.exp(log_w + acc["log_h0"] - log_C)
        return {
            "log_normalizer": log_C,
            "reward_pretrained": float(np.exp(log_w) @ acc["pre_r"]),
            "reward_finetuned": float(nu @ acc["tilt_r"]),
            "effective_reward_finetuned": float(nu @ acc["tilt_reff"]),
            "log_second_moment": float(logsumexp(log_w + acc["log_m2"])),
        }

    def _integrals_over_data(self, nodes=None):
        """Quadrature over X ~ p_data with the correction R: E_pre f = Σ_k w_k E_k[f R] (d ≤ 3).

        Gauss–Hermite nodes X = m_k + L_k ξ per component; also gives TV(p_pre, p_data) = ½ E_data|R - 1|.
        """
        pre, problem = self.problem.pretrained, self.problem
        nodes = nodes or self.options["quadrature_nodes"] or DEFAULT_NODES[pre.dimension]
        nodes, log_w = gauss_hermite(nodes, pre.dimension)
        x = (pre.means[:, None, :] + np.einsum("kij,qj->kqi", pre.chols, nodes)).reshape(-1, pre.dimension)
        log_base = (np.log(pre.weights)[:, None] + log_w[None, :]).reshape(-1)
        log_R = np.concatenate([self.log_pretrained_correction(x[i:i + CHUNK])
                                for i in progress(range(0, len(x), CHUNK), desc="exact: integrals over p_data")])
        r = problem.reward(x)
        r_eff = problem.divergence.effective(r)
        log_pre = log_base + log_R
        log_C = float(logsumexp(log_pre + r_eff))
        tilt = np.exp(log_pre + r_eff - log_C)
        return {
            "log_normalizer": log_C,
            "reward_pretrained": float(np.exp(log_pre) @ r),
            "reward_finetuned": float(tilt @ r),
            "effective_reward_finetuned": float(tilt @ r_eff),
            "log_second_moment": float(logsumexp(log_pre + 2.0 * r_eff)),
            "tv_pretrained_data": float(0.5 * np.exp(log_base) @ np.abs(np.expm1(log_R))),
        }

    # ----- densities -------------------------------------------------------------------
    def log_noise(self, y):
        """(n,) log p_noise(y), p_noise = N(0, var(T) I)."""
        d = y.shape[-1]
        return -0.5 * np.sum(y**2, axis=-1) / self.var_T - 0.5 * d * np.log(2 * np.pi * self.var_T)

    def log_noise_ratio(self, y):
        """(n,) log p_noise(y) - log p(T, y)."""
        return self.log_noise(y) - self.noise_marginal.log_pdf(y)

    def log_pretrained_correction(self, x):
        """(n,) log R(x), so that log p_pre = log p_data + log R (module docstring)."""
        x = self._check_points(x)

        def block(xb):
            pts, log_w = self.noise_rule(self.a_T * xb, option="ratio_nodes")
            n, q, d = pts.shape
            ratio = self.log_noise_ratio(pts.reshape(-1, d)).reshape(n, q)
            return logsumexp(log_w + ratio, axis=1)

        parts = [block(x[i:i + 256]) for i in range(0, len(x), 256)]
        return np.concatenate(parts)

    def pretrained_log_density(self, x):
        """(n,) log p_pre(x): the law of Y_T under the pretrained sampler from p_noise."""
        x = self._check_points(x)
        return self.problem.pretrained.log_pdf(x) + self.log_pretrained_correction(x)

    def terminal_log_density(self, y):
        """(n,) log p_ftune(y) = r_eff(y) + log p_pre(y) - log C  (3.2), (4.5)."""
        y = self._check_points(y)
        return self.problem.effective_reward(y) + self.pretrained_log_density(y) - self.summary["log_normalizer"]

    def initial_log_density(self, y):
        """(n,) log ν*(y) = log h(0, y) + log p_noise(y) - log C  (3.16)."""
        y = self._check_points(y)
        return self.log_h(0.0, y) + self.log_noise(y) - self.summary["log_normalizer"]

    # ----- sampling ----------------------------------------------------------------------
    def sampler_kind(self):
        """'tilted_mixture' or 'rejection' (both exact) or 'importance_resampling' (approximate)."""
        if self.closed_form:
            return "tilted_mixture"
        if np.isfinite(self.problem.divergence.effective_bounds(self.problem.reward)[1]):
            return "rejection"
        return "importance_resampling"

    def sample(self, n, seed=0):
        """(n, d) samples of p_ftune; see `sample_pairs`."""
        return self.sample_pairs(n, seed)[0]

    def sample_initial(self, n, seed=0):
        """(n, d) samples of the optimal initial law ν* (3.16)."""
        return self.sample_pairs(n, seed)[1]

    def sample_pairs(self, n, seed=0):
        """(Y_T, Y_0) pairs, each (n, d), of the optimally controlled process (3.20).

        Y_T ~ p_ftune and Y_0 ~ ν*. The statistics of the draw go to ``self.sampling``.
        """
        rng = np.random.default_rng(seed)
        kind = self.sampler_kind()
        if kind == "tilted_mixture":
            propose, log_M = self._tilted_mixture_proposal()
            theory = np.exp(self.summary["log_normalizer"] - log_M)
        elif kind == "rejection":
            propose = self._pretrained_proposal()
            theory = np.exp(self.summary["log_normalizer"] - self.problem.divergence.effective_bounds(self.problem.reward)[1])
        if kind != "importance_resampling":
            drawn = self._rejection_loop(n, rng, propose)
            if drawn is not None:
                x, y, rate = drawn
                self.sampling = {"sampler": kind, "exact": True, "acceptance_rate": rate,
                                 "acceptance_rate_theory": float(theory)}
                return x, y
            warnings.warn(f"exact: {kind} acceptance too low for max_proposals = {self.options['max_proposals']}; "
                          "falling back to importance resampling", HJSolveWarning, stacklevel=2)
        x, y, self.sampling = self._sample_resampling(n, rng)
        return x, y

    def sample_pretrained(self, n, rng):
        """(Y_T, Y_0) pairs of the pretrained sampler from p_noise, exactly."""
        pre = self.problem.pretrained
        y = np.sqrt(self.var_T) * rng.standard_normal((n, pre.dimension))
        log_pi, mu, _, _, post_covs = self._posterior(0.0, y)
        u = rng.random(n)[:, None]
        comp = np.minimum((np.cumsum(np.exp(log_pi), axis=1) < u).sum(axis=1), pre.K - 1)
        chols = np.linalg.cholesky(post_covs + 1e-300 * np.eye(pre.dimension))
        z = rng.standard_normal((n, pre.dimension))
        x = mu[np.arange(n), comp] + np.einsum("nij,nj->ni", chols[comp], z)
        return x, y

    def _log_ratio_bound(self):
        """An upper bound on log sup_y p_noise(y)/p(T, y).

        Since p(T, y) ≥ max_k w_k N(y; a m_k, C_k), the ratio is at most
        sup_y min_k p_noise(y)/(w_k N(y; a m_k, C_k)). Each log term is concave in y
        (C_k > var I), so this is a convex program: maximise s subject to s ≤ log term_k(y).
        """
        pre, marg, d = self.problem.pretrained, self.noise_marginal, self.problem.dimension

        def log_terms(z):
            y = z[None, :d]
            return self.log_noise(y)[0] - marg.component_log_pdf(y)[0]

        z0 = np.append(np.zeros(d), log_terms(np.zeros(d + 1)).min())
        res = minimize(lambda z: -z[d], z0, method="SLSQP",
                       constraints=[{"type": "ineq", "fun": lambda z: log_terms(z) - z[d]}],
                       options={"ftol": 1e-12, "maxiter": 500})
        if not res.success:
            raise HJSolveError(f"exact: bounding p_noise/p(T, .) for rejection failed ({res.message})")
        return float(log_terms(res.x).min()) + 1e-6  # margin for the optimiser's tolerance

    def _rejection_loop(self, n, rng, propose, batch=20_000):
        """Exact rejection: batches ``propose(m, rng) -> (x, y, log acceptance)`` until n are kept.

        Returns (x, y, acceptance rate), or None once ``max_proposals`` is spent.
        """
        xs, ys, proposed, accepted = [], [], 0, 0
        while accepted < n:
            if proposed >= self.options["max_proposals"]:
                return None
            x, y, log_accept = propose(batch, rng)
            keep = np.log(rng.random(batch)) < log_accept
            xs.append(x[keep])
            ys.append(y[keep])
            proposed += batch
            accepted += int(keep.sum())
        return np.concatenate(xs)[:n], np.concatenate(ys)[:n], accepted / proposed

    def _tilted_mixture_proposal(self):
        """Proposal for closed-form tilts and log of its overall acceptance bound.

        X from the tilted data mixture exp(r_eff) p_data (Gaussian), Y | X ~ N(a(T) X, var(T) I),
        accepted with probability p_noise(Y)/(M p(T, Y)), whose mean over Y is R(X)/M: the kept
        X follow exp(r_eff) p_data R ∝ p_ftune and the kept Y follow ν*. The acceptance rate is
        C/(Z M) with Z = ∫ exp(r_eff) p_data.
        """
        pre = self.problem.pretrained
        mu, S = pre.means[None], pre.covs
        log_w = np.log(pre.weights) + self.moments.compute(mu, S, {"log_m1"})["log_m1"][0]
        t_mu, t_S = self.moments.tilted_gaussian(mu, S)
        probs, chols = softmax(log_w), np.linalg.cholesky(t_S)
        log_M = self._log_ratio_bound()

        def propose(m, rng):
            comp = rng.choice(pre.K, size=m, p=probs)
            x = t_mu[0, comp] + np.einsum("nij,nj->ni", chols[comp], rng.standard_normal((m, pre.dimension)))
            y = self.a_T * x + np.sqrt(self.var_T) * rng.standard_normal(x.shape)
            log_accept = self.log_noise_ratio(y) - log_M
            if log_accept.max() > 0:
                raise HJSolveError("exact: rejection bound violated; please report this case")
            return x, y, log_accept

        return propose, logsumexp(log_w) + log_M

    def _pretrained_proposal(self):
        """von Neumann rejection from p_pre with acceptance exp(r_eff - sup r_eff) (after Lemma 3.1)."""
        sup = self.problem.divergence.effective_bounds(self.problem.reward)[1]

        def propose(m, rng):
            x, y = self.sample_pretrained(m, rng)
            return x, y, self.problem.effective_reward(x) - sup

        return propose

    def _sample_resampling(self, n, rng):
        """Approximate: self-normalised importance resampling of p_pre by exp(r_eff)."""
        m = max(self.options["resampling_factor"] * n, 100_000)
        x, y = self.sample_pretrained(m, rng)
        log_w = self.problem.effective_reward(x)
        w = softmax(log_w)
        ess = float(1.0 / np.sum(w**2))
        idx = rng.choice(m, size=n, p=w)
        stats = {"sampler": "importance_resampling", "exact": False, "ess": ess, "proposals": m}
        return x[idx], y[idx], stats

    # ----- summary ---------------------------------------------------------------------
    def compute_summary(self):
        """Fill the DESIGN §3 summary keys and the exact method's own entries."""
        problem = self.problem
        ints = self.noise_integrals()
        log_C = ints["log_normalizer"]
        kappa = problem.divergence.effective_bounds(problem.reward)[0]
        half_log_m2 = 0.5 * ints["log_second_moment"]
        with np.errstate(over="ignore"):  # a bound of +inf is the honest answer when it overflows
            # (4.7): e^{-κ}/2 sqrt(E_pre e^{2 r_eff}), κ = inf r_eff; valid whenever κ > -inf.
            shifted = 0.5 * np.exp(half_log_m2 - kappa) if np.isfinite(kappa) else np.inf
            # (3.3) as the paper writes it; its proof needs r ≥ 0.
            tv_bound = 0.5 * np.exp(half_log_m2) if problem.divergence.name == "kl" else shifted
        tv_bound_valid = problem.reward.inf >= 0 if problem.divergence.name == "kl" else bool(np.isfinite(kappa))
        self.summary.update({
            "case": self.case.title,
            "method": self.method,
            "dimension": problem.dimension,
            "alpha": problem.alpha,
            "divergence": problem.divergence.name,
            "log_normalizer": log_C,
            "reward_pretrained": ints["reward_pretrained"],
            "reward_finetuned": ints["reward_finetuned"],
            "kl_finetuned_pretrained": ints["effective_reward_finetuned"] - log_C,
            "tv_bound": float(tv_bound),
            "tv_bound_valid": bool(tv_bound_valid),
            "tv_bound_shifted": float(shifted),
            "wall_time_s": None,
            "sde": problem.sde.kind,
            "reward": problem.reward.kind,
            "moments": "closed_form" if self.closed_form else "gauss_hermite",
            "sampler": self.sampler_kind(),
            "sampler_exact": self.sampler_kind() != "importance_resampling",
            "tv_pretrained_data": ints["tv_pretrained_data"],
        })
        bad = [k for k, v in self.summary.items() if isinstance(v, float) and np.isnan(v)]
        if bad:
            raise HJSolveError(f"exact: the summary has NaN in {', '.join(bad)}")
        return self

    @classmethod
    def from_state(cls, case, summary, state):
        if case.problem.is_discrete:
            from .ddpm_lq import DDPMLQSolution

            return DDPMLQSolution.from_state(case, summary, state)
        return cls(case, summary=summary, options=summary.get("options"))


SOLUTION = ExactSolution


def solve(case, options):
    """Build the exact solution of ``case`` and its summary."""
    if case.problem.is_discrete:
        from .ddpm_lq import solve as solve_lq

        return solve_lq(case, options)
    solution = ExactSolution(case, options=options).compute_summary()
    solution.summary["options"] = dict(options)
    return solution


