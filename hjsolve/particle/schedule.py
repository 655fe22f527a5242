"""Per-step coefficients of the pretrained sampler (2.4) on a time grid.

Sampler time t ∈ [t0, T], forward time s = T - t. The drift is linear plus score,
b̄(t, y) = λ(t) y + g2(T-t) s(T-t, y) with λ(t) = -(a'/a)(T-t). One step t_k → t_{k+1}
(s_k → s_{k+1} = s_k - Δ) of either integrator reads

    Y_{k+1} = lin_k Y_k + coef_k score(s_k, Y_k) + ccoef_k u(t_k, Y_k) + sd_k ξ_k,

``euler``:        lin = 1 + λΔ, coef = g2(s_k)Δ, ccoef = Δ, sd = sqrt(g2(s_k)Δ);
``exponential``:  the linear part is integrated exactly and the score (and control) is frozen
                  at the left end (exponential Euler):
                  lin = a(s_{k+1})/a(s_k), coef = ∫ a(s_{k+1})/a(s) g2(s) ds,
                  ccoef = ∫ a(s_{k+1})/a(s) ds (Gauss–Legendre over [s_{k+1}, s_k]), and the
                  exact variance sd² = lin² var(s_k) - var(s_{k+1}) (from d(var/a²)/ds = g2/a²).

The Gaussian-mixture score at s_k is given by `mixture_arrays` (means a(s_k) m_j, precisions
C_j^{-1} = (a² Σ_j + var I)^{-1} and log-normalising constants), precomputed per step.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import HJSolveError

GL_NODES, GL_WEIGHTS = np.polynomial.legendre.leggauss(12)
INTEGRATORS = ("exponential", "euler")
#: Steps are uniform in u with s = T - t = (T - t0)(1 - u)^p: finer near the data end t = T,
#: where the mixture score changes fastest (vp: g2 = β_max there).
SPACING_POWER = 2.0


@dataclass(frozen=True)
class Schedule:
    """Step arrays over ``n`` steps from ``t0`` to T: times (n+1,), s (n,), lin, coef, ccoef, sd (n,)."""

    times: np.ndarray
    s: np.ndarray
    lin: np.ndarray
    coef: np.ndarray
    ccoef: np.ndarray
    sd: np.ndarray

    @property
    def n_steps(self):
        return len(self.s)

    @property
    def dt(self):
        return np.diff(self.times)


def steps_from(t0, T, n_steps_total):
    """Steps for [t0, T] at the resolution of ``n_steps_total`` steps on [0, T] (at least 1 if t0 < T)."""
    if t0 >= T:
        return 0
    return max(1, int(np.ceil(n_steps_total * (T - t0) / T - 1e-9)))


def build_schedule(sde, t0, n_steps, integrator="exponential"):
    """The `Schedule` of ``n_steps`` steps (see `SPACING_POWER`) from sampler time ``t0`` to T."""
    if integrator not in INTEGRATORS:
        raise HJSolveError(f"particle: integrator must be one of {', '.join(INTEGRATORS)} (got {integrator!r})")
    T = float(sde.T)
    u = np.linspace(0.0, 1.0, n_steps + 1)
    times = T - (T - float(t0)) * (1.0 - u) ** SPACING_POWER
    times[0], times[-1] = float(t0), T
    s = T - times
    s_left, s_right = s[:-1], s[1:]
    dt = np.diff(times)
    if integrator == "euler":
        g2 = sde.g2(s_left)
        lin = 1.0 - sde.log_a_rate(s_left) * dt
        return Schedule(times, s_left, lin, g2 * dt, dt.copy(), np.sqrt(g2 * dt))
    a_left, a_right = sde.a(s_left), sde.a(s_right)
    lin = a_right / a_left
    half = 0.5 * (s_left - s_right)
    nodes = 0.5 * (s_left + s_right)[:, None] + half[:, None] * GL_NODES[None, :]
    ratio = a_right[:, None] / sde.a(nodes)
    coef = half * np.sum(GL_WEIGHTS * ratio * sde.g2(nodes), axis=1)
    ccoef = half * np.sum(GL_WEIGHTS * ratio, axis=1)
    var2 = lin**2 * sde.var(s_left) - sde.var(s_right)
    return Schedule(times, s_left, lin, coef, ccoef, np.sqrt(np.maximum(var2, 0.0)))


@dataclass(frozen=True)
class MixtureArrays:
    """The mixture score's parameters at the left end of every step.

    means (n, K, d), prec (n, K, d, d) (or (n, K, 1, 1) unused when ``iso``), prec_iso (n, K),
    logc (n, K) = log w_j - ½ log det C_j.
    """

    means: np.ndarray
    prec: np.ndarray
    prec_iso: np.ndarray
    logc: np.ndarray
    iso: bool


def mixture_arrays(sde, mixture, s):
    """`MixtureArrays` of the forward marginals of ``mixture`` at forward times ``s`` (n,)."""
    a, var = np.atleast_1d(sde.a(s)), np.atleast_1d(sde.var(s))
    n, K, d = len(a), mixture.K, mixture.dimension
    means = a[:, None, None] * mixture.means[None]
    covs = a[:, None, None, None] ** 2 * mixture.covs[None] + var[:, None, None, None] * np.eye(d)
    chols = np.linalg.cholesky(covs)
    logdet = 2.0 * np.log(np.diagonal(chols, axis1=2, axis2=3)).sum(axis=2)
    prec = np.linalg.inv(covs)
    prec = 0.5 * (prec + np.swapaxes(prec, 2, 3))
    iso = mixture.isotropic_vars is not None
    prec_iso = prec[:, :, 0, 0].copy() if iso else np.zeros((n, K))
    if iso:  # the kernels never read the full matrices: keep them tiny
        prec = np.zeros((n, K, 1, 1))
    logc = np.log(mixture.weights)[None, :] - 0.5 * logdet
    return MixtureArrays(np.ascontiguousarray(means), np.ascontiguousarray(prec), prec_iso, logc, iso)
