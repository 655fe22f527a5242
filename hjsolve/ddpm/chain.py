"""The DDPM chain of a `Problem` with ``sde.kind = "ddpm"``: coefficients, scores, simulation.

All arrays over steps are indexed by the sampler step t = 0..N-1 (forward index k = N - t).
"""
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import HJSolveError, NotApplicableError
from ..mixture import GaussianMixture


@dataclass(frozen=True)
class Chain:
    """Per-step coefficients of the DDPM Bellman recursion (DESIGN §1).

    a, b, c, sigma : (N,) arrays a_t, b_t, c_t, σ_k; w : (N,) KL weights w_t;
    marginal_a, marginal_var : (N,) (sqrt(ᾱ_k), 1 - ᾱ_k) of q(x_k), k = N - t.
    """

    problem: object
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    sigma: np.ndarray
    w: np.ndarray
    marginal_a: np.ndarray
    marginal_var: np.ndarray

    @property
    def steps(self):
        return len(self.a)

    @property
    def dimension(self):
        return self.problem.dimension

    def gain(self, t):
        """b_t / (2 w_t c_t): the improvement step of (002, (35))."""
        return self.b[t] / (2.0 * self.w[t] * self.c[t])

    def contraction_bound(self, t, lipschitz):
        """b_t² Lip(∇V_{t+1}) / (2 w_t c_t) = β_k Lip / w_t: the factor of the improvement map."""
        return self.b[t] ** 2 * lipschitz / (2.0 * self.w[t] * self.c[t])

    def weight_needed(self, t, lipschitz):
        """The smallest w_t with 2 w_t c_t > b_t² Lip(∇V_{t+1}) (strong concavity, Theorem 2.8)."""
        return self.b[t] ** 2 * lipschitz / (2.0 * self.c[t])

    @cached_property
    def marginals(self):
        """(N,) list of the forward marginals q(x_k), k = N - t, as `MarginalMixture`."""
        pre = self.problem.pretrained
        return [pre.marginal(a, v) for a, v in zip(self.marginal_a, self.marginal_var)]

    def score(self, t, x):
        """(n, d) pretrained score s_t(x) = ∇log q_k(x), k = N - t (exact for a mixture).

        Σ_j π_j(x) (-C_j^{-1}(x - a m_j)) with the responsibilities π normalised in log space.
        """
        marginal = self.marginals[t]
        log_pi = marginal.component_log_pdf(x)
        pi = np.exp(log_pi - log_pi.max(axis=1, keepdims=True))
        pi /= pi.sum(axis=1, keepdims=True)
        return np.einsum("nk,nki->ni", pi, marginal.component_scores(x))

    def step(self, t, x, u, noise):
        """X_{t+1} = a_t x + b_t u + σ_k noise for arrays (n, d)."""
        return self.a[t] * x + self.b[t] * u + self.sigma[t] * noise

    def simulate(self, control, n, seed=0, record=None):
        """Run the chain from X_0 ~ N(0, I) with ``control(t, x) -> (n, d)``; vectorised over particles.

        Returns X_N (n, d) and, when ``record`` is a list, appends to it the (N,) Monte Carlo means
        of c_t |u_t - s_t|² (the per-step KL of Lemma 2.5).
        """
        rng = np.random.default_rng(seed)
        return self.run(control, rng.standard_normal((n, self.dimension)), rng, record)

    def run(self, control, x, rng, record=None):
        """X_N (n, d) of the chain from X_0 = ``x`` (n, d) with noise from ``rng`` (see `simulate`)."""
        kl = np.zeros(self.steps)
        for t in range(self.steps):
            u = control(t, x)
            if record is not None:
                kl[t] = self.c[t] * np.mean(np.sum((u - self.score(t, x)) ** 2, axis=1))
            x = self.step(t, x, u, rng.standard_normal(x.shape))
        if not np.all(np.isfinite(x)):
            raise HJSolveError("ddpm: the simulated chain left the floating-point range")
        if record is not None:
            record.append(kl)
        return x


def make_chain(case):
    """The `Chain` of a ddpm case; NotApplicableError for a continuous SDE or a non-kl divergence."""
    problem = case.problem
    if not problem.is_discrete:
        raise NotApplicableError("pift: needs sde.kind = 'ddpm' (PI-FT is the discrete-time method of paper 002)")
    if not isinstance(problem.pretrained, GaussianMixture):
        raise NotApplicableError(f"pift: needs pretrained.kind = 'gaussian_mixture' (exact scores; got '{problem.pretrained.kind}')")
    if problem.divergence.name != "kl":
        raise NotApplicableError(f"pift: sde.kind = 'ddpm' supports divergence 'kl' only (got '{problem.divergence.name}')")
    sde = problem.sde
    N = sde.steps
    coeffs = np.array([sde.step_coefficients(t) for t in range(N)])
    marg = np.array([sde.marginal(sde.k_of(t)) for t in range(N)])
    return Chain(problem=problem, a=coeffs[:, 0], b=coeffs[:, 1], c=coeffs[:, 2], sigma=coeffs[:, 3],
                 w=np.asarray(case.kl_weights, dtype=float), marginal_a=marg[:, 0], marginal_var=marg[:, 1])
