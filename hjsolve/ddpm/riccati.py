"""Linear–quadratic exact solution of the DDPM control problem (DESIGN §1; paper 002, (9), (18)).

For Gaussian data N(m, Σ) the pretrained score is affine, s_t(x) = S_t x + g_t with
S_t = -C_k^{-1}, g_t = C_k^{-1} sqrt(ᾱ_k) m, C_k = ᾱ_k Σ + (1-ᾱ_k) I. For a quadratic or linear
reward r(x) = -½ xᵀR x + ρᵀx + r₀ the value is quadratic, V_t(x) = -½ xᵀP_t x + q_tᵀx + κ_t,
and the optimal control affine, u*_t(x) = K_t x + k_t. With E V(z + σW) = V(z) - ½σ² tr P,
the first-order condition of the concave one-step problem gives

    M_t = 2 w_t c_t I + b_t² P_{t+1},   K_t = M_t^{-1}(2 w_t c_t S_t - a_t b_t P_{t+1}),
    k_t = M_t^{-1}(2 w_t c_t g_t + b_t q_{t+1}),

and, with D = K_t - S_t, f = k_t - g_t, A = a_t I + b_t K_t, e = b_t k_t,

    P_t = 2 w_t c_t DᵀD + AᵀP_{t+1}A,   q_t = Aᵀ(q_{t+1} - P_{t+1} e) - 2 w_t c_t Dᵀf,
    κ_t = κ_{t+1} - w_t c_t |f|² - ½ eᵀP_{t+1}e + q_{t+1}ᵀe - ½ σ_k² tr P_{t+1}.

The controlled chain from X_0 ~ N(0, I) stays Gaussian: μ ← Aμ + e, Σ ← AΣAᵀ + σ_k² I.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import HJSolveError, NotApplicableError
from ..rewards import Linear, Quadratic


def quadratic_form(reward, d):
    """(R (d, d), ρ (d,), r₀) with r(x) = -½ xᵀR x + ρᵀx + r₀; NotApplicableError otherwise."""
    if isinstance(reward, Quadratic):
        return reward.scale * np.eye(d), reward.scale * reward.center, -0.5 * reward.scale * reward.center @ reward.center
    if isinstance(reward, Linear):
        return np.zeros((d, d)), reward.weight.copy(), reward.offset
    raise NotApplicableError(f"the DDPM linear-quadratic solution needs a quadratic or linear reward (got '{reward.kind}'); use method 'pift'")


def affine_score(chain):
    """(S (N, d, d), g (N, d)) with s_t(x) = S_t x + g_t; needs a single Gaussian component."""
    pre = chain.problem.pretrained
    if getattr(pre, "K", None) != 1:
        raise NotApplicableError("the DDPM linear-quadratic solution needs a single Gaussian pretrained component; use method 'pift'")
    d = chain.dimension
    S = np.empty((chain.steps, d, d))
    g = np.empty((chain.steps, d))
    for t in range(chain.steps):
        a, var = chain.marginal_a[t], chain.marginal_var[t]
        C_inv = np.linalg.inv(a * a * pre.covs[0] + var * np.eye(d))
        S[t] = -0.5 * (C_inv + C_inv.T)
        g[t] = C_inv @ (a * pre.means[0])
    return S, g


def gaussian_reward_mean(form, mean, cov):
    """E r(X) for X ~ N(mean, cov) and r given by ``form`` = (R, ρ, r₀)."""
    R, rho, r0 = form
    return float(-0.5 * mean @ R @ mean + rho @ mean + r0 - 0.5 * np.trace(R @ cov))


def gaussian_log_mgf(form, mean, cov, lam):
    """log E exp(λ r(X)) for X ~ N(mean, cov) (finite when cov^{-1} + λR is positive definite)."""
    R, rho, r0 = form
    d = len(mean)
    grad = -R @ mean + rho
    r_mean = -0.5 * mean @ R @ mean + rho @ mean + r0
    precision = np.linalg.inv(cov) + lam * R
    if np.linalg.eigvalsh(0.5 * (precision + precision.T)).min() <= 0:
        raise HJSolveError("ddpm: E exp(λ r) is infinite for this Gaussian terminal law")
    sign, logdet = np.linalg.slogdet(np.eye(d) + lam * cov @ R)
    return float(-0.5 * logdet + lam * r_mean + 0.5 * lam**2 * grad @ np.linalg.solve(precision, grad))


@dataclass(frozen=True)
class RiccatiSolution:
    """Arrays of the LQ solution (module docstring).

    P (N+1, d, d), q (N+1, d), kappa (N+1,): V_t; K (N, d, d), k (N, d): u*_t;
    mean (N+1, d), cov (N+1, d, d): law of X_t under u*; pre_mean, pre_cov: under u = s;
    kl_steps (N,): E c_t |u* - s_t|² under u*; S (N, d, d), g (N, d): the affine score.
    """

    P: np.ndarray
    q: np.ndarray
    kappa: np.ndarray
    K: np.ndarray
    k: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    pre_mean: np.ndarray
    pre_cov: np.ndarray
    kl_steps: np.ndarray
    S: np.ndarray
    g: np.ndarray
    form: tuple

    def value(self, t, y):
        """(n,) V_t(y) for y (n, d)."""
        return -0.5 * np.einsum("ni,ij,nj->n", y, self.P[t], y) + y @ self.q[t] + self.kappa[t]

    def gradient(self, t, y):
        """(n, d) ∇V_t(y)."""
        return -y @ self.P[t] + self.q[t]

    def control(self, t, y):
        """(n, d) u*_t(y) = K_t y + k_t."""
        return y @ self.K[t].T + self.k[t]


def _propagate(chain, K, k):
    """Means (N+1, d) and covariances (N+1, d, d) of the chain X_{t+1} = A X + e + σW from N(0, I)."""
    d = chain.dimension
    mean = np.zeros((chain.steps + 1, d))
    cov = np.zeros((chain.steps + 1, d, d))
    cov[0] = np.eye(d)
    for t in range(chain.steps):
        A = chain.a[t] * np.eye(d) + chain.b[t] * K[t]
        mean[t + 1] = A @ mean[t] + chain.b[t] * k[t]
        c = A @ cov[t] @ A.T + chain.sigma[t] ** 2 * np.eye(d)
        cov[t + 1] = 0.5 * (c + c.T)
    return mean, cov


def solve_riccati(chain):
    """The exact LQ solution of ``chain``'s problem as a `RiccatiSolution`."""
    d, N = chain.dimension, chain.steps
    form = quadratic_form(chain.problem.reward, d)
    S, g = affine_score(chain)
    eye = np.eye(d)
    P = np.zeros((N + 1, d, d))
    q = np.zeros((N + 1, d))
    kappa = np.zeros(N + 1)
    K = np.zeros((N, d, d))
    k = np.zeros((N, d))
    P[N], q[N], kappa[N] = form
    for t in range(N - 1, -1, -1):
        a, b, sig, wc = chain.a[t], chain.b[t], chain.sigma[t], chain.w[t] * chain.c[t]
        Pn, qn = P[t + 1], q[t + 1]
        M = 2.0 * wc * eye + b * b * Pn
        if np.linalg.eigvalsh(0.5 * (M + M.T)).min() <= 0:
            raise HJSolveError(f"ddpm: the one-step problem at step {t} is not concave (2 w_t c_t I + b_t² P_(t+1) is not positive definite)")
        K[t] = np.linalg.solve(M, 2.0 * wc * S[t] - a * b * Pn)
        k[t] = np.linalg.solve(M, 2.0 * wc * g[t] + b * qn)
        D, f = K[t] - S[t], k[t] - g[t]
        A, e = a * eye + b * K[t], b * k[t]
        Pt = 2.0 * wc * D.T @ D + A.T @ Pn @ A
        P[t] = 0.5 * (Pt + Pt.T)
        q[t] = A.T @ (qn - Pn @ e) - 2.0 * wc * D.T @ f
        kappa[t] = kappa[t + 1] - wc * f @ f - 0.5 * e @ Pn @ e + qn @ e - 0.5 * sig**2 * np.trace(Pn)
    mean, cov = _propagate(chain, K, k)
    pre_mean, pre_cov = _propagate(chain, S, g)
    kl_steps = np.array([
        chain.c[t] * (np.sum(((K[t] - S[t]) @ mean[t] + k[t] - g[t]) ** 2)
                      + np.trace((K[t] - S[t]) @ cov[t] @ (K[t] - S[t]).T))
        for t in range(N)
    ])
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(cov))):
        raise HJSolveError("ddpm: the Riccati recursion overflowed")
    return RiccatiSolution(P=P, q=q, kappa=kappa, K=K, k=k, mean=mean, cov=cov, pre_mean=pre_mean,
                           pre_cov=pre_cov, kl_steps=kl_steps, S=S, g=g, form=form)
