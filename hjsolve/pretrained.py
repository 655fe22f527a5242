"""Pretrained models without a closed form: ``pretrained.kind = "python"``.

The user gives ``score = "module:callable"``, a function ``score(s, x)`` of the forward time
s ∈ [0, T] (a float) and points x (n, d) that returns the score s(s, x) (n, d), and the
``dimension`` d. p_data is unknown, so only p_pre (the law the sampler (2.4) produces) is
defined: methods that need the data law in closed form (``exact``) are not applicable.
"""
import numpy as np
from scipy.optimize import brentq

from .errors import HJSolveError
from .rewards import import_callable

#: Euler–Maruyama steps of `PythonScore.sample` (samples of p_pre, for plots).
SAMPLE_STEPS = 500


class PythonScore:
    """A user score model s(s, x) in dimension d, for a continuous schedule ``sde``.

    `Problem.score` calls ``score(x, a(s), var(s))``; var is strictly increasing in s for every
    continuous schedule, so s is recovered from var by root finding.
    """

    kind = "python"
    #: The data law is unknown: the forward-KL bump-width check (which needs the largest
    #: component std) has nothing to compare with.
    max_std = 0.0

    def __init__(self, score, dimension, sde, search_dir=None):
        self.score_spec = score
        self.dimension = int(dimension)
        self.sde = sde
        self._function = import_callable(score, search_dir)

    def forward_time(self, var):
        """The forward time s ∈ [0, T] with var(s) = ``var``."""
        T = float(self.sde.T)
        var = float(var)
        if var <= 0.0:
            return 0.0
        top = float(self.sde.var(T))
        if var >= top:
            return T
        return float(brentq(lambda s: float(self.sde.var(s)) - var, 0.0, T, xtol=1e-14, rtol=1e-14))

    def score(self, x, a, var):
        """(n, d) the user's score at the forward time of (a, var) (a is implied by var)."""
        return self.score_at_time(self.forward_time(var), x)

    def score_at_time(self, s, x):
        """(n, d) the user's score s(s, x) at forward time s."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        out = np.asarray(self._function(float(s), x), dtype=float)
        if out.shape != x.shape:
            raise HJSolveError(f"pretrained.score {self.score_spec!r} returned shape {out.shape}, expected {x.shape}")
        return out

    def sample(self, n, rng, steps=SAMPLE_STEPS):
        """(n, d) approximate samples of p_pre: Euler–Maruyama of the sampler (2.4) from p_noise."""
        sde, T = self.sde, float(self.sde.T)
        y = np.sqrt(sde.noise_var()) * rng.standard_normal((n, self.dimension))
        dt = T / steps
        for k in range(steps):
            s = T - k * dt
            drift = -sde.forward_drift(s, y) + sde.g2(s) * self.score(y, sde.a(s), sde.var(s))
            y = y + drift * dt + np.sqrt(sde.g2(s) * dt) * rng.standard_normal(y.shape)
        return y

    def to_dict(self):
        return {"score": self.score_spec, "dimension": self.dimension}
