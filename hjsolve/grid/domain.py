"""The computational box of the grid solver: y = μ(t) + c(t) ∘ z with z ∈ [-1, 1]^d.

The pretrained marginals Q_t contract from p_noise = N(0, var(T) I) (t = 0) to p_pre (t = T),
e.g. from ±60 to ±3 for `ve`. A fixed box would waste almost every cell, so the box follows
the forward scaling: with s = T - t,

    μ_i(t) = a(s) m_i,    c_i(t) = sqrt(a(s)² R_i² + K² var(s)),

where [m_i - R_i, m_i + R_i] is the data box (the support of p_pre and of the tilted law, see
`choose_data_box`) and K (`noise_width`, default 6) the number of noise standard deviations
covered. At t = 0 the box covers ±K sqrt(var(T)) around 0, at t = T exactly the data box.
The PDEs are solved on the uniform z-grid; `hjsolve.grid.coefficients` carries the change of
variables (the drift gains -(μ' + c' z)/c, the diffusion is divided by c²).
"""
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from ..mixture import GaussianMixture

#: Data-box half-width in component standard deviations (mixtures) / tilted-law std.
DATA_WIDTH = 6.0
#: Particles and steps of the pretrained simulation used to find the data box of a model
#: without a closed form (python scores).
PILOT_PARTICLES = 4000
PILOT_STEPS = 200


@dataclass(frozen=True)
class Domain:
    """Time-dependent box and its uniform z-grid.

    sde : the schedule; center (d,), radius (d,) : the data box at t = T; n : points per axis;
    noise_width : K above.
    """

    sde: object
    center: np.ndarray
    radius: np.ndarray
    n: int
    noise_width: float = 6.0

    @property
    def d(self):
        return len(self.center)

    @property
    def shape(self):
        return (self.n,) * self.d

    @property
    def dz(self):
        return 2.0 / (self.n - 1)

    @property
    def z(self):
        """(n,) nodes of every axis."""
        return np.linspace(-1.0, 1.0, self.n)

    def nodes(self):
        """(N, d) z-coordinates of every node, C order."""
        axes = np.meshgrid(*([self.z] * self.d), indexing="ij")
        return np.stack([a.ravel() for a in axes], axis=1)

    def schedule(self, t):
        """(a, var, f = a'/a, g2) of the forward SDE at s = T - t: floats, or arrays shaped as t."""
        s = float(self.sde.T) - np.asarray(t, dtype=float)
        sde = self.sde
        values = sde.a(s), sde.var(s), sde.log_a_rate(s), sde.g2(s)
        return tuple(float(v) for v in values) if s.ndim == 0 else values

    def frame(self, t, schedule=None):
        """(μ, c, dμ/dt, dc/dt), each (d,), at sampler time t, from a'(s) = f a and
        var'(s) = g2 + 2 f var (s = T - t); ``schedule``: `schedule(t)` if already computed
        (with arrays (S, 1) in it, each output is (S, d))."""
        a, var, f, g2 = schedule or self.schedule(t)
        c = np.sqrt(a * a * self.radius**2 + self.noise_width**2 * var)
        dc_ds = (a * f * a * self.radius**2 + 0.5 * self.noise_width**2 * (g2 + 2.0 * f * var)) / c
        return a * self.center, c, -f * a * self.center, -dc_ds

    def mu(self, t):
        """(d,) centre μ(t)."""
        return self.frame(t)[0]

    def c(self, t):
        """(d,) half-widths c(t)."""
        return self.frame(t)[1]

    def rates(self, t):
        """(dμ/dt, dc/dt), each (d,)."""
        return self.frame(t)[2:]

    def to_y(self, t, z):
        mu, c = self.frame(t)[:2]
        return mu + c * z

    def to_index(self, t, y):
        """(n, d) fractional node indices of the points y (n, d) at time t."""
        mu, c = self.frame(t)[:2]
        z = (y - mu) / c
        return (z + 1.0) / self.dz

    def contains(self, t, y):
        mu, c = self.frame(t)[:2]
        z = (y - mu) / c
        return np.all(np.abs(z) <= 1.0, axis=1)


def choose_data_box(problem, box=None, seed=0):
    """(center, radius), each (d,), of a box holding p_pre and the tilted law p_ftune.

    ``box`` (a list of d pairs [lo, hi]) overrides. For a Gaussian mixture: every component
    ± `DATA_WIDTH` standard deviations; otherwise the range of a pilot simulation of the
    pretrained sampler widened by 30 % each side. Both are widened to hold the exp(r_eff)-tilted
    samples' mean ± `DATA_WIDTH` weighted standard deviations.
    """
    if box is not None:
        box = np.asarray(box, dtype=float)
        return 0.5 * (box[:, 0] + box[:, 1]), 0.5 * (box[:, 1] - box[:, 0])
    rng = np.random.default_rng(seed)
    pre = problem.pretrained
    if isinstance(pre, GaussianMixture):
        sd = np.sqrt(np.stack([np.diag(c) for c in pre.covs]))
        lo = (pre.means - DATA_WIDTH * sd).min(axis=0)
        hi = (pre.means + DATA_WIDTH * sd).max(axis=0)
        x = pre.sample(20_000, rng)
    else:
        x = pilot_samples(problem, PILOT_PARTICLES, PILOT_STEPS, rng)
        span = x.max(axis=0) - x.min(axis=0)
        lo, hi = x.min(axis=0) - 0.3 * span, x.max(axis=0) + 0.3 * span
    with np.errstate(over="ignore", invalid="ignore"):
        w = softmax(problem.effective_reward(x))
    if np.all(np.isfinite(w)):
        mean = w @ x
        sd = np.sqrt(np.maximum(w @ (x - mean) ** 2, 0.0))
        lo = np.minimum(lo, mean - DATA_WIDTH * sd)
        hi = np.maximum(hi, mean + DATA_WIDTH * sd)
    return 0.5 * (lo + hi), 0.5 * (hi - lo)


def pilot_samples(problem, n, steps, rng):
    """(n, d) terminal points of the pretrained sampler (2.4) by Euler–Maruyama from p_noise."""
    T = float(problem.sde.T)
    d = problem.dimension
    y = problem.noise_std() * rng.standard_normal((n, d))
    dt = T / steps
    for k in range(steps):
        t = k * dt
        sig = np.sqrt(float(problem.sde.sampler_sigma2(t)) * dt)
        y = y + problem.sampler_drift(t, y) * dt + sig * rng.standard_normal((n, d))
    return y
