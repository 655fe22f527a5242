"""PI-FT (method ``pift``, paper 002 Algorithm 1 and Section 4.1) against the Riccati solution
(method ``exact`` on ddpm), its linear convergence rate, the β → ∞ limit, the strong-concavity
warning, Monte Carlo consistency on a non-LQ mixture case, and save/load."""
import warnings

import numpy as np
import pytest

import hjsolve
from hjsolve.errors import HJSolveError, HJSolveWarning, NotApplicableError

from conftest import make_case
from test_ddpm_lq import ddpm_case


def control_error(sol, ref, points):
    """max_t max_y |u_t - u*_t| / max_t max_y |u*_t| (relative sup error over steps and points)."""
    err = max(np.abs(sol.control(t, points) - ref.control(t, points)).max() for t in range(ref.steps))
    scale = max(np.abs(ref.control(t, points)).max() for t in range(ref.steps))
    return err / scale


def points(d, n=25, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) * 1.5


@pytest.mark.parametrize("name, mode, options", [
    ("1d", "functional", {}),
    pytest.param("2d", "functional", {"grid_points": 41, "gh_nodes": 4}, marks=pytest.mark.slow),
    ("1d", "parametric", {}),
    ("2d", "parametric", {}),
    ("5d", "parametric", {"features": "quadratic"}),
])
def test_pift_matches_riccati(name, mode, options):
    case = ddpm_case(name, steps=40)
    ref = hjsolve.solve(case, method="exact")
    sol = hjsolve.solve(case, method="pift", mode=mode, n_eval=4000, **options)
    y = points(case.problem.dimension)
    assert control_error(sol, ref, y) < 1e-3
    for t in (0, 20, 40):
        np.testing.assert_allclose(sol.value(t, y), ref.value(t, y), rtol=1e-3, atol=1e-3 * np.abs(ref.value(t, y)).max())
    assert sol.summary["converged"]
    for key in hjsolve.solution.SUMMARY_KEYS:
        assert key in sol.summary


def test_linear_rate_matches_the_bound_and_improves_with_beta():
    """For LQ the improvement map is linear with factor ρ_t = b_t² λmax(P_{t+1})/(2 w_t c_t):
    the measured ratios of successive control changes equal it, and it falls as β = w grows."""
    factors = []
    for w in (0.002, 0.02, 0.2, 2.0):
        sol = hjsolve.solve(ddpm_case("1d", steps=50, alpha=w), method="pift", n_eval=2000)
        ref = hjsolve.solve(ddpm_case("1d", steps=50, alpha=w), method="exact")
        for rec in sol.summary["records"]:
            lam = np.abs(np.linalg.eigvalsh(ref.lq.P[rec["t"] + 1])).max()
            bound = sol.chain.contraction_bound(rec["t"], lam)
            np.testing.assert_allclose(rec["factor_bound"], bound, rtol=1e-6)
            changes = np.array(rec["control_change"])
            assert np.all(changes[1:] < changes[:-1])
            if rec["factor_measured"] is not None and rec["t"] < 45:
                np.testing.assert_allclose(rec["factor_measured"], bound, rtol=0.02)
        factors.append(sol.summary["contraction_factor_measured"])
    assert np.all(np.diff(factors) < 0) and factors[0] > 0.1 and factors[-1] < 0.01


def test_large_beta_gives_the_pretrained_score_in_one_step():
    case = make_case(sde={"kind": "ddpm", "steps": 30}, **{"finetune.alpha": 1e7})
    sol = hjsolve.solve(case, method="pift", n_eval=2000)
    y = points(1)
    gap = max(np.abs(sol.control(t, y) - sol.chain.score(t, y)).max() for t in range(30))
    assert gap < 1e-5
    assert sol.summary["iterations_max"] <= 3


def test_small_beta_warns_and_relaxation_still_converges():
    """w = 1e-4 breaks 2 w c > b² Lip(∇V) near the data end: the warning names the steps and
    the weight needed; the damped update (relax) still reaches the Riccati control."""
    case = ddpm_case("1d", steps=100, alpha=1e-4)
    with pytest.warns(HJSolveWarning, match=r"fails at steps .*finetune\.alpha .* > "):
        sol = hjsolve.solve(case, method="pift", n_eval=2000)
    failed = sol.summary["condition_failed_steps"]
    assert failed and all(t > 90 for t in failed)
    assert sol.summary["weight_needed"] > 1e-4
    ref = hjsolve.solve(case, method="exact")
    assert control_error(sol, ref, points(1)) < 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hjsolve.solve(ddpm_case("1d", steps=100, alpha=1e-3), method="pift", n_eval=1000)


def test_unrelaxed_divergence_is_an_error():
    with pytest.raises(HJSolveError, match=r"diverged at step 99 .*finetune\.alpha above"):
        hjsolve.solve(ddpm_case("1d", steps=100, alpha=2e-5), method="pift", relax=False, n_eval=1000)


def test_mixture_policy_evaluation_is_consistent():
    """Non-LQ (bimodal mixture, bump reward): E V_0(X_0) from the grid equals the Monte Carlo
    objective E r(X_N) - Σ w_t KL_t of the computed control within 4 standard errors + grid error."""
    case = make_case(sde={"kind": "ddpm", "steps": 50}, reward={"kind": "bump", "center": [1.0], "height": 2.0},
                     **{"finetune.alpha": 0.3})
    sol = hjsolve.solve(case, method="pift", n_eval=40_000)
    x0 = np.random.default_rng(0).standard_normal((40_000, 1))
    v0 = sol.value(0, x0)
    s = sol.summary
    assert abs(v0.mean() - s["objective"]) < 4 * (s["reward_finetuned_stderr"] + v0.std() / 200) + 2e-3
    assert s["reward_finetuned"] > s["reward_pretrained"] + 0.5


@pytest.mark.slow
def test_mixture_grid_convergence_is_second_order():
    """Control and value on grids of 201 and 401 points against 801: errors fall by ≥ 3 (h²: ~5)."""
    case = make_case(sde={"kind": "ddpm", "steps": 30}, reward={"kind": "bump", "center": [1.0], "height": 2.0},
                     **{"finetune.alpha": 0.3})
    sols = {n: hjsolve.solve(case, method="pift", grid_points=n, n_eval=500) for n in (201, 401, 801)}
    y = np.linspace(-3, 3, 25)[:, None]
    for quantity in ("control", "value"):
        errs = [max(np.abs(getattr(sols[n], quantity)(t, y) - getattr(sols[801], quantity)(t, y)).max()
                    for t in (0, 15, 29)) for n in (201, 401)]
        assert errs[0] / errs[1] > 3.0, (quantity, errs)


def test_functional_limits_and_options():
    with pytest.raises(NotApplicableError, match="parametric"):
        hjsolve.solve(ddpm_case("5d", steps=5), method="pift")
    with pytest.raises(NotApplicableError, match="ddpm"):
        hjsolve.solve(make_case(), method="pift")
    with pytest.raises(HJSolveError, match="mode"):
        hjsolve.solve(ddpm_case("1d", steps=5), method="pift", mode="neural")


def test_save_and_load_roundtrip(tmp_path):
    case = make_case(sde={"kind": "ddpm", "steps": 20})
    for mode in ("functional", "parametric"):
        sol = hjsolve.solve(case, method="pift", mode=mode, n_eval=1000, features="rbf")
        sol.save(tmp_path / mode)
        back = hjsolve.load(tmp_path / mode)
        y = points(1)
        np.testing.assert_allclose(back.control(7, y), sol.control(7, y))
        np.testing.assert_allclose(back.value(7, y), sol.value(7, y))
        assert back.summary["records"] == sol.summary["records"]


def test_per_step_weights_match_riccati():
    """finetune.alpha as a list of N weights w_t (β_t of paper 002)."""
    weights = list(np.geomspace(0.05, 2.0, 30))
    case = ddpm_case("1d", steps=30, alpha=weights)
    ref = hjsolve.solve(case, method="exact")
    sol = hjsolve.solve(case, method="pift", n_eval=2000)
    assert control_error(sol, ref, points(1)) < 1e-3
    bounds = [r["factor_bound"] for r in sol.summary["records"]]
    expected = [sol.chain.contraction_bound(t, np.abs(ref.lq.P[t + 1]).max()) for t in range(30)]
    np.testing.assert_allclose(bounds, expected, rtol=1e-6)
    assert not sol.summary["kl_weights_constant"]
