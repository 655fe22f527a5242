"""The fine-tuning problem: SDE, pretrained model, reward and regulariser. Knows no solver."""
from dataclasses import dataclass

import numpy as np

from .divergence import Divergence
from .rewards import Reward
from .sde import DDPM


@dataclass(frozen=True)
class Problem:
    """What to solve (DESIGN §1).

    sde : a continuous schedule (`VP`, `VE`, `OU`) or `DDPM`.
    pretrained : the pretrained model; `GaussianMixture` gives the exact score.
    reward : `Reward`.
    divergence : `Divergence` (carries α).
    """

    sde: object
    pretrained: object
    reward: Reward
    divergence: Divergence

    @property
    def dimension(self):
        return self.pretrained.dimension

    @property
    def alpha(self):
        return self.divergence.alpha

    @property
    def is_discrete(self):
        return isinstance(self.sde, DDPM)

    def effective_reward(self, x):
        """(n,) r_eff(x): r/α for kl, r_f of (4.6) otherwise."""
        return self.divergence.effective(self.reward(x))

    def effective_reward_gradient(self, x):
        """(n, d) ∇r_eff(x)."""
        return self.divergence.effective_gradient(self.reward(x), self.reward.gradient(x))

    def score(self, s, x):
        """(n, d) pretrained score s(s, x) at forward time s."""
        return self.pretrained.score(x, float(self.sde.a(s)), float(self.sde.var(s)))

    def sampler_drift(self, t, y):
        """(n, d) pretrained sampler drift b̄(t, y) = -b(T-t, y) + g2(T-t) s(T-t, y) of (2.4)."""
        s = self.sde.T - t
        return -self.sde.forward_drift(s, y) + self.sde.g2(s) * self.score(s, y)

    def noise_std(self):
        """Standard deviation of p_noise = N(0, var(T) I)."""
        return float(np.sqrt(self.sde.noise_var()))
