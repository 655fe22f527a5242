"""The particle solver's numpy step loops (``pretrained.kind = "python"``, or ``use_kernel=False``).

- The callback adjoint (central-difference ∇s v, `hjsolve.score_derivatives`) against the
  kernel's closed-form Jacobian on Gaussian-mixture cases: measured max |Δ| / max |λ_0| ≤ 3.6e-9
  and max |Δ| / max |β| ≤ 7.6e-10 (2-D and 10-D, t0 = 0 and 0.5, 100 steps); the tolerance is 10×.
  (The callback paths equal the kernel's: `test_particle_kernels`.)
- The bundled two-moons case (a black-box 24-component score) against the grid solver: log C,
  log h and the control's ∇log h (likelihood-ratio weight, the default) within 4 reported
  standard errors plus the time-discretisation allowance of `test_particle` (measured: at most
  2.6 standard errors). The grid (101 points, 60 steps) is within 5e-4 of a 241-point, 200-step
  grid in log C and log h and 5e-3 in ∇log h at these points, far below the tolerances (≥ 0.03).
"""
import numpy as np
import pytest

import hjsolve
from hjsolve.particle.rng import stream_key
from hjsolve.particle.sampler import PretrainedSampler
from hjsolve.solvers import solve

from particle_cases import allowance, cases

ADJOINT_RTOL = 4e-8
#: Query points where Q*_t has mass (p_ftune's mean is about (-0.88, 0.36); a(s) = 0.28 at
#: t = 0.5 and 0.95 at t = 0.9).
TWO_MOONS_POINTS = {0.5: [[-0.3, 0.2], [0.0, 0.0]], 0.9: [[-1.0, 0.4], [-0.7, 0.7], [-1.2, 0.2]]}


@pytest.mark.parametrize("name", ["2d", "10d"])
def test_callback_adjoint_equals_the_kernel(name):
    problem = cases()[name].problem
    kernel, callback = PretrainedSampler(problem, 100), PretrainedSampler(problem, 100, use_kernel=False)
    key = stream_key(5, 7)
    for t0 in (0.0, 0.5):
        _, y_T, path, sched = callback.run(key, 2000, t0, np.full((1, problem.dimension), 0.3), store=True)
        lam_T = problem.effective_reward_gradient(y_T)
        n_bismut = sched.n_steps // 2
        want = kernel.adjoint(key, path, lam_T, n_bismut, t0)
        got = callback.adjoint(key, path, lam_T, n_bismut, t0)
        for label, a, b in zip(("lambda_0", "beta"), want, got):
            err = np.max(np.abs(b - a)) / np.max(np.abs(a))
            assert err < ADJOINT_RTOL, (label, t0, err)


def test_two_moons_python_score_against_the_grid():
    case = hjsolve.load_case("cases/two_moons_2d.toml")
    grid = solve(case, "grid", points=101, time_steps=60)
    sol = solve(case, "particle", n_paths=10_000, n_steps=200, inner_paths=1500, seed=1)
    s = sol.summary
    assert s["score"] == "callback"
    delta = allowance(case.problem.dimension, s["n_steps"])
    err = abs(s["log_normalizer"] - grid.summary["log_normalizer"])
    assert err < 4 * s["log_normalizer_stderr"] + delta, (err, s["log_normalizer_stderr"])
    for t, points in TWO_MOONS_POINTS.items():
        y = np.array(points)
        est = sol.estimates(t, y)
        err = np.abs(est["log_h"] - grid.log_h(t, y))
        assert np.all(err < 4 * est["log_h_se"] + delta), (t, err, est["log_h_se"])
        want = grid.grad_log_h(t, y)
        err = np.abs(est["grad_lr"] - want)
        assert np.all(err < 4 * est["grad_lr_se"] + delta * (1 + np.abs(want))), (t, err, est["grad_lr_se"])
