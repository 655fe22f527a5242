"""The particle solver against the exact solver (paper 000, (3.24), (3.27)–(3.30)).

Tolerances are 4 reported standard errors plus a time-discretisation allowance
ALLOWANCE · (1 + d/10) / n_steps: the integrators are first order, and the bias measured
against exact on these cases is at most about half of it (e.g. log C: -0.009 at d = 1 and
-0.077 at d = 50 with 200 steps, -0.04 at d = 50 with 400 steps).
"""
import numpy as np
import pytest

import hjsolve
from hjsolve.errors import HJSolveError
from hjsolve.solution import SUMMARY_KEYS

from particle_cases import allowance, cases

CASES = cases()
SIZES = {"1d": (40_000, 200), "2d": (40_000, 200), "10d": (20_000, 200), "50d": (10_000, 400)}
STDERR_KEYS = ("log_normalizer", "reward_pretrained", "reward_finetuned", "kl_finetuned_pretrained")


def _solve(name, **extra):
    n_paths, n_steps = SIZES[name]
    options = {"n_paths": n_paths, "n_steps": n_steps, "inner_paths": 2000, "seed": 1, **extra}
    return hjsolve.solve(CASES[name], "particle", **options)


def _params(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n == "50d" else n for n in names]


@pytest.mark.parametrize("name", _params(SIZES))
def test_summary_against_exact(name):
    exact = hjsolve.solve(CASES[name], "exact").summary
    sol = _solve(name)
    s = sol.summary
    assert set(SUMMARY_KEYS) <= set(s)
    delta = allowance(CASES[name].problem.dimension, s["n_steps"])
    for key in STDERR_KEYS:
        err = abs(s[key] - exact[key])
        assert 0 < s[f"{key}_stderr"] < 0.05, key
        assert err < 4 * s[f"{key}_stderr"] + delta * max(1.0, abs(exact[key])), (key, err, s[f"{key}_stderr"])
    # tv_bound = ½ sqrt(E_pre exp(2 r_eff)): relative error is half that of the second moment
    assert s["tv_bound"] == pytest.approx(exact["tv_bound"], rel=4 * s["tv_bound_stderr"] / s["tv_bound"] + 2 * delta)
    assert 0 < s["ess"] <= s["n_paths"] and s["particle_steps_per_second"] > 0


@pytest.mark.parametrize("name", _params(["1d", "2d", "10d", "50d"]))
def test_value_and_control_against_exact(name):
    case = CASES[name]
    exact = hjsolve.solve(case, "exact")
    sol = _solve(name, n_paths=2000, **({"n_steps": 200, "inner_paths": 1000} if name == "50d" else {}))
    d = case.problem.dimension
    y = np.zeros((3, d))
    y[:, 0] = [-1.0, 0.5, 1.5]
    if d > 1:
        y[:, 1] = [0.3, -0.2, 0.1]
    times = (0.0, 0.5) if name != "50d" else (0.5,)
    for t in times:
        est = sol.estimates(t, y)
        delta = allowance(d, sol.options["n_steps"])
        assert np.all(np.abs(est["log_h"] - exact.log_h(t, y)) < 4 * est["log_h_se"] + delta)
        grad = exact.grad_log_h(t, y)
        for kind in ("grad_pathwise", "grad_lr"):
            assert np.all(np.abs(est[kind] - grad) < 4 * est[f"{kind}_se"] + delta * (1 + np.abs(grad))), (t, kind)
        # the two gradient estimators agree with each other
        gap = np.abs(est["grad_pathwise"] - est["grad_lr"])
        assert np.all(gap < 4 * np.hypot(est["grad_pathwise_se"], est["grad_lr_se"]) + delta * (1 + np.abs(grad)))
    # the Solution API: value = α log h, control = ς² ∇log h (likelihood-ratio by default)
    t = times[-1]
    v, u = sol.value_and_control(t, y)
    np.testing.assert_allclose(v, case.problem.alpha * sol.estimates(t, y, gradient=False)["log_h"])
    np.testing.assert_allclose(sol.control(t, y), u)
    np.testing.assert_allclose(u, case.problem.sde.sampler_sigma2(t) * est["grad_lr"])


def test_estimates_are_exact_at_the_terminal_time_and_reproducible():
    sol = _solve("1d", n_paths=2000)
    y = np.array([[0.3], [2.5]])
    r_eff = sol.problem.effective_reward(y)
    np.testing.assert_allclose(sol.log_h(1.0, y), r_eff)
    np.testing.assert_allclose(sol.grad_log_h(1.0, y), sol.problem.effective_reward_gradient(y))
    again = _solve("1d", n_paths=2000)
    assert again.summary["log_normalizer"] == sol.summary["log_normalizer"]
    np.testing.assert_array_equal(again.value(0.4, y), sol.value(0.4, y))


def test_bad_options_are_one_line_errors():
    with pytest.raises(HJSolveError, match="integrator"):
        hjsolve.solve(CASES["1d"], "particle", integrator="rk4")
    with pytest.raises(HJSolveError, match="sampler"):
        hjsolve.solve(CASES["1d"], "particle", sampler="mcmc")
