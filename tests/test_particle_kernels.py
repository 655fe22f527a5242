"""Particle kernels against independent computations: the numpy mixture score, finite
differences of the score, the numpy step loop, exact Gaussian moments of the integrators."""
import numpy as np
import pytest

from hjsolve.particle import kernels
from hjsolve.particle.rng import normals_block, stream_key
from hjsolve.particle.sampler import PretrainedSampler
from hjsolve.particle.schedule import build_schedule, mixture_arrays

from conftest import make_case

GENERAL_2D = {"kind": "gaussian_mixture", "weights": [0.3, 0.7], "means": [[-1.0, 0.5], [1.5, -0.5]],
              "covs": [[[0.5, 0.2], [0.2, 0.3]], [[0.2, -0.05], [-0.05, 0.4]]]}


@pytest.mark.parametrize("pretrained", [None, GENERAL_2D])
def test_score_and_its_jacobian(pretrained):
    case = make_case(pretrained=pretrained, reward={"kind": "linear", "weight": [1.0, 0.0]}) if pretrained else make_case()
    problem = case.problem
    d = problem.dimension
    mix = mixture_arrays(problem.sde, problem.pretrained, np.array([0.3]))
    rng = np.random.default_rng(0)
    y = 1.5 * rng.normal(size=(20, d))
    v = rng.normal(size=(20, d))
    args = (mix.means[0], mix.prec[0], mix.prec_iso[0], mix.logc[0], mix.iso)
    np.testing.assert_allclose(kernels.score_batch(y, *args), problem.score(0.3, y), rtol=1e-12, atol=1e-12)
    eps = 1e-6
    fd = (problem.score(0.3, y + eps * v) - problem.score(0.3, y - eps * v)) / (2 * eps)
    np.testing.assert_allclose(kernels.score_vjp_batch(y, v, *args), fd, rtol=1e-6, atol=1e-7)


def test_kernel_paths_equal_numpy_step_loop_and_ignore_threads():
    problem = make_case(pretrained=GENERAL_2D, reward={"kind": "linear", "weight": [1.0, 0.0]}).problem
    key = stream_key(3, 1)
    fast = PretrainedSampler(problem, 40)
    slow = PretrainedSampler(problem, 40, use_kernel=False)
    for t0, y0 in ((0.0, None), (0.35, np.array([[0.2, -0.1]]))):
        a = fast.run(key, 300, t0, y0, store=True)
        b = slow.run(key, 300, t0, y0, store=True)
        np.testing.assert_allclose(a[2], b[2], rtol=0, atol=1e-12)
    # the stream of particle i does not depend on the block it is computed in
    whole = normals_block(key, 0, 100, 3, 6)
    np.testing.assert_array_equal(whole[40:], normals_block(key, 40, 60, 3, 6))


@pytest.mark.parametrize("kind", ["vp", "ve", "ou"])
def test_exponential_integrator_is_exact_for_the_linear_part(kind):
    """With the score switched off (coef = 0) one exponential step from y has the exact mean
    and variance of dY = λ(t) Y dt + ς dB: the forward schedule's a and var relations."""
    case = make_case(**{"sde.kind": kind})
    sde = case.problem.sde
    sched = build_schedule(sde, 0.2, 3, "exponential")
    s0, s1 = sched.s[0], sde.T - sched.times[1]
    # mean factor exp(∫λ) = a(s1)/a(s0); variance ∫ exp(2∫λ) g2 = a(s1)² (var(s0)/a(s0)² - var(s1)/a(s1)²)
    assert sched.lin[0] == pytest.approx(sde.a(s1) / sde.a(s0), rel=1e-12)
    ts = np.linspace(sched.times[0], sched.times[1], 20001)
    lam = -sde.log_a_rate(sde.T - ts)
    grow = np.exp(np.concatenate([[0.0], np.cumsum(0.5 * (lam[1:] + lam[:-1]) * np.diff(ts))]))
    decay = grow[-1] / grow  # exp(∫_τ^{t1} λ)
    g2 = sde.g2(sde.T - ts)
    assert sched.sd[0] ** 2 == pytest.approx(np.trapezoid(decay**2 * g2, ts), rel=1e-6)
    assert sched.coef[0] == pytest.approx(np.trapezoid(decay * g2, ts), rel=1e-6)
    assert sched.ccoef[0] == pytest.approx(np.trapezoid(decay, ts), rel=1e-6)
