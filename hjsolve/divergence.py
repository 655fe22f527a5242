"""Regularisers: KL and the f-divergences of paper 000, Section 4 (Definition 4.2, (4.6)).

Each divergence turns the reward r into the effective log-tilt r_eff:
kl: r/α;  forward_kl: -ln(r/α);  gamma: -(1/γ) ln(1 - γ r/α).
Then p_ftune ∝ exp(r_eff) p_pre, h = E[exp(r_eff(Y_T)) | Y_t = y] and u = ς² ∇log h.
"""
import numpy as np

from .errors import DomainError

TV_REASON = (
    "divergence 'total_variation' is not supported: (f')^{-1} is not defined for total variation "
    "(paper 000, after Definition 4.2), so there is no tilted law (4.5)"
)


class Divergence:
    name = "divergence"

    def __init__(self, alpha):
        self.alpha = float(alpha)

    #: v = value_scale * log h (DESIGN §3): α for kl, 1 for the f-divergences.
    @property
    def value_scale(self):
        return 1.0

    def effective(self, r):
        raise NotImplementedError

    def effective_gradient(self, r, grad_r):
        """∇r_eff (n, d) from r (n,) and ∇r (n, d)."""
        raise NotImplementedError

    def effective_bounds(self, reward):
        """(inf r_eff, sup r_eff) over R^d from the reward's own bounds."""
        raise NotImplementedError

    def check_domain(self, reward, pretrained):
        """Raise DomainError naming the failed condition."""

    def check_values(self, r):
        """Raise DomainError if evaluated rewards leave the domain (for rewards of unknown range)."""

    def params(self):
        return {"alpha": self.alpha, "divergence": self.name}


class KL(Divergence):
    name = "kl"

    @property
    def value_scale(self):
        return self.alpha

    def effective(self, r):
        return r / self.alpha

    def effective_gradient(self, r, grad_r):
        return grad_r / self.alpha

    def effective_bounds(self, reward):
        return reward.inf / self.alpha, reward.sup / self.alpha


class ForwardKL(Divergence):
    """r_f = -ln(r/α) (paper 000, Definition 4.2: (f'_±)^{-1}(t) = 1/t); needs r > 0."""

    name = "forward_kl"

    def effective(self, r):
        self.check_values(r)
        return -np.log(r / self.alpha)

    def effective_gradient(self, r, grad_r):
        return -grad_r / r[:, None]

    def effective_bounds(self, reward):
        low = -np.log(reward.sup / self.alpha) if reward.sup > 0 else np.inf
        high = -np.log(reward.inf / self.alpha) if reward.inf > 0 else np.inf
        return low, high

    def check_domain(self, reward, pretrained):
        if not reward.strictly_positive and reward.kind != "python":
            raise DomainError(f"forward_kl needs r > 0 on the support (R^d), which a {reward.kind} reward violates")
        if reward.kind == "bump" and reward.width <= pretrained.max_std:
            raise DomainError(
                "forward_kl needs E_pre[alpha/r] < inf: a bump reward's width must exceed the largest "
                f"component std {pretrained.max_std:.4g} (got {reward.width:.4g})"
            )

    def check_values(self, r):
        if np.any(r <= 0):
            raise DomainError(f"forward_kl needs r > 0 on the support; the reward took the value {np.min(r):.4g}")


class Gamma(Divergence):
    """r_f = -(1/γ) ln(1 - γ r/α) (paper 000, Definition 4.2 with sup r < α/γ); γ → 0 gives KL."""

    name = "gamma"

    def __init__(self, alpha, gamma):
        super().__init__(alpha)
        self.gamma = float(gamma)

    def effective(self, r):
        self.check_values(r)
        return -np.log1p(-self.gamma * r / self.alpha) / self.gamma

    def effective_gradient(self, r, grad_r):
        return grad_r / (self.alpha - self.gamma * r)[:, None]

    def effective_bounds(self, reward):
        def transform(value):
            if value == -np.inf:
                return -np.inf
            return -np.log1p(-self.gamma * value / self.alpha) / self.gamma

        return transform(reward.inf), transform(reward.sup)

    def check_domain(self, reward, pretrained):
        limit = self.alpha / self.gamma
        if reward.sup >= limit and not (reward.kind == "python" and reward.sup == np.inf):
            raise DomainError(
                f"gamma divergence needs sup r < alpha/gamma = {limit:.6g}; this {reward.kind} reward has sup r = {reward.sup:.6g}"
            )

    def check_values(self, r):
        limit = self.alpha / self.gamma
        if np.any(r >= limit):
            raise DomainError(f"gamma divergence needs sup r < alpha/gamma = {limit:.6g}; the reward took the value {np.max(r):.6g}")

    def params(self):
        return {**super().params(), "gamma": self.gamma}


def make_divergence(name, alpha, gamma=None):
    """Build a divergence by its case-file name; raises DomainError for total_variation."""
    if name == "kl":
        return KL(alpha)
    if name == "forward_kl":
        return ForwardKL(alpha)
    if name == "gamma":
        return Gamma(alpha, gamma)
    if name == "total_variation":
        raise DomainError(TV_REASON)
    raise ValueError(f"unknown divergence {name!r} (expected kl, forward_kl, gamma)")


DIVERGENCES = ("kl", "forward_kl", "gamma", "total_variation")
