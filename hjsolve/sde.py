"""Forward noising schedules (DESIGN §1) and the pretrained sampler's coefficients.

Forward time s ∈ [0, T]: X_s = a(s) X_0 + sqrt(var(s)) ε, diffusion g2(s) = g(s)².
Sampler time t = T - s (paper 000, (2.4)): noise at t = 0, data at t = T.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ContinuousSDE:
    """Base class of the continuous schedules `vp`, `ve`, `ou`.

    Subclasses give ``a(s)``, ``var(s)``, ``g2(s)`` and ``log_a_rate(s) = a'(s)/a(s)``;
    all accept scalars or arrays of forward times s.
    """

    T: float

    kind = "continuous"

    def sampler_sigma2(self, t):
        """ς(t)² = g2(T - t): the sampler's squared diffusion at sampler time t."""
        return self.g2(self.T - np.asarray(t, dtype=float))

    def forward_drift(self, s, x):
        """b(s, x) = (a'(s)/a(s)) x for x of shape (n, d)."""
        return self.log_a_rate(s) * x

    def noise_var(self):
        """var(T): p_noise = N(0, var(T) I)."""
        return float(self.var(self.T))

    def params(self):
        raise NotImplementedError


@dataclass(frozen=True)
class VP(ContinuousSDE):
    beta_min: float = 0.1
    beta_max: float = 20.0
    kind = "vp"

    def _B(self, s):
        s = np.asarray(s, dtype=float)
        return self.beta_min * s + (self.beta_max - self.beta_min) * s**2 / (2.0 * self.T)

    def a(self, s):
        return np.exp(-0.5 * self._B(s))

    def var(self, s):
        return -np.expm1(-self._B(s))

    def g2(self, s):
        s = np.asarray(s, dtype=float)
        return self.beta_min + (self.beta_max - self.beta_min) * s / self.T

    def log_a_rate(self, s):
        return -0.5 * self.g2(s)

    def params(self):
        return {"beta_min": self.beta_min, "beta_max": self.beta_max}


@dataclass(frozen=True)
class VE(ContinuousSDE):
    sigma_min: float = 0.01
    sigma_max: float = 10.0
    kind = "ve"

    def a(self, s):
        return np.ones_like(np.asarray(s, dtype=float))

    def _ratio_pow(self, s):
        s = np.asarray(s, dtype=float)
        return (self.sigma_max / self.sigma_min) ** (2.0 * s / self.T)

    def var(self, s):
        s = np.asarray(s, dtype=float)
        log_ratio = np.log(self.sigma_max / self.sigma_min)
        return self.sigma_min**2 * np.expm1(2.0 * s / self.T * log_ratio)

    def g2(self, s):
        log_ratio = np.log(self.sigma_max / self.sigma_min)
        return self.sigma_min**2 * (2.0 / self.T) * log_ratio * self._ratio_pow(s)

    def log_a_rate(self, s):
        return np.zeros_like(np.asarray(s, dtype=float))

    def params(self):
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


@dataclass(frozen=True)
class OU(ContinuousSDE):
    theta: float = 1.0
    sigma: float = float(np.sqrt(2.0))
    kind = "ou"

    def a(self, s):
        return np.exp(-self.theta * np.asarray(s, dtype=float))

    def var(self, s):
        s = np.asarray(s, dtype=float)
        return self.sigma**2 / (2.0 * self.theta) * -np.expm1(-2.0 * self.theta * s)

    def g2(self, s):
        return np.full_like(np.asarray(s, dtype=float), self.sigma**2)

    def log_a_rate(self, s):
        return np.full_like(np.asarray(s, dtype=float), -self.theta)

    def params(self):
        return {"theta": self.theta, "sigma": self.sigma}


@dataclass(frozen=True)
class DDPM:
    """Discrete DDPM chain (paper 002; DESIGN §1).

    β_k linear from ``beta_1`` to ``beta_N`` (k = 1..N), α_k = 1 - β_k, ᾱ_k = ∏_{j≤k} α_j.
    Sampler index t = 0..N; the step t → t+1 uses k = N - t:
    X_{t+1} = (X_t + (1-α_k) u_t(X_t))/sqrt(α_k) + σ_k W_t, σ_k² = 1 - α_k.
    """

    steps: int
    beta_1: float = 1e-4
    beta_N: float = 0.02
    kind = "ddpm"

    @property
    def T(self):
        return self.steps

    @property
    def betas(self):
        """(N,) array β_1..β_N (index k-1)."""
        if self.steps == 1:
            return np.array([self.beta_1])
        return np.linspace(self.beta_1, self.beta_N, self.steps)

    @property
    def alpha_bars(self):
        """(N+1,) array ᾱ_0 = 1, ᾱ_1, ..., ᾱ_N."""
        return np.concatenate([[1.0], np.cumprod(1.0 - self.betas)])

    def k_of(self, t):
        """Forward index k = N - t used by the sampler step t → t+1."""
        t = int(t)
        if not 0 <= t < self.steps:
            raise ValueError(f"ddpm step t must be an integer in 0..{self.steps - 1} (got {t})")
        return self.steps - t

    def marginal(self, k):
        """(a, var) of q(x_k | x_0) = N(sqrt(ᾱ_k) x_0, (1-ᾱ_k) I)."""
        ab = self.alpha_bars[k]
        return float(np.sqrt(ab)), float(1.0 - ab)

    def step_coefficients(self, t):
        """(a_t, b_t, c_t, σ_k) of the Bellman recursion (DESIGN §1, Lemma 2.5 of paper 002)."""
        alpha = 1.0 - self.betas[self.k_of(t) - 1]
        sigma2 = 1.0 - alpha
        a_t = 1.0 / np.sqrt(alpha)
        b_t = (1.0 - alpha) / np.sqrt(alpha)
        c_t = (1.0 - alpha) ** 2 / (2.0 * alpha * sigma2)
        return a_t, b_t, c_t, np.sqrt(sigma2)

    def noise_var(self):
        return 1.0

    def params(self):
        return {"steps": self.steps, "beta_1": self.beta_1, "beta_N": self.beta_N}


CONTINUOUS_KINDS = {"vp": VP, "ve": VE, "ou": OU}
