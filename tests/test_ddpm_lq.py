"""The DDPM linear–quadratic (Riccati) solution, method ``exact`` on ``sde.kind = "ddpm"``,
against independent truths: the Bellman equation checked by Gauss–Hermite quadrature over W and
finite differences in u, Monte Carlo of the controlled chain, the β → ∞ limit, and the
continuous-time limit (DDPM ↔ vp with β_min = N beta_1, β_max = N beta_N, T = 1)."""
import numpy as np
import pytest

import hjsolve
from hjsolve.ddpm.chain import make_chain
from hjsolve.ddpm.riccati import solve_riccati
from hjsolve.errors import HJSolveError, NotApplicableError
from hjsolve.quadrature import gauss_hermite

from conftest import make_case

LQ_CASES = {
    "1d": ([1.0], [[0.5]], {"kind": "quadratic", "center": [2.0], "scale": 1.0}),
    "2d": ([1.0, -0.5], [[0.5, 0.2], [0.2, 0.4]], {"kind": "quadratic", "center": [1.5, 0.5], "scale": 2.0}),
    "5d": ([0.5, 0.0, -1.0, 0.3, 0.0], np.diag([0.3, 0.5, 0.2, 1.0, 0.7]).tolist(),
           {"kind": "linear", "weight": [1.0, -0.5, 0.0, 0.2, 0.3], "offset": 0.1}),
}


def ddpm_case(name, steps=60, alpha=0.5, **extra):
    mean, cov, reward = LQ_CASES[name]
    return make_case(sde={"kind": "ddpm", "steps": steps},
                     pretrained={"kind": "gaussian_mixture", "weights": [1.0], "means": [mean], "covs": [cov]},
                     reward=extra.pop("reward", reward), finetune={"alpha": alpha, "divergence": "kl"},
                     solver={"method": "exact"}, **extra)


def one_step_objective(sol, t, x, u, nodes, weights):
    """-w c |u - s|² + E V_{t+1}(a x + b u + σ W), E by the tensor Gauss–Hermite rule."""
    ch = sol.chain
    z = ch.a[t] * x + ch.b[t] * u
    ev = np.array([weights @ sol.value(t + 1, zi + ch.sigma[t] * nodes) for zi in z])
    return -ch.w[t] * ch.c[t] * np.sum((u - ch.score(t, x)) ** 2, axis=1) + ev


@pytest.mark.parametrize("name", ["1d", "2d", "5d"])
def test_bellman_equation_by_quadrature(name):
    """V_t = max_u of the one-step objective: value by quadrature, stationarity by differences."""
    sol = hjsolve.solve(ddpm_case(name, alpha=[0.3 + 0.01 * t for t in range(60)]))
    d = sol.problem.dimension
    nodes, log_w = gauss_hermite(3, d)  # exact for quadratics in W
    weights = np.exp(log_w)
    x = np.random.default_rng(1).normal(size=(6, d))
    for t in (0, 25, 59):
        u = sol.control(t, x)
        best = one_step_objective(sol, t, x, u, nodes, weights)
        np.testing.assert_allclose(sol.value(t, x), best, rtol=1e-10, atol=1e-10)
        for i in range(d):  # the objective is maximal at u*: central differences vanish, curvature < 0
            e = np.zeros(d)
            e[i] = 1e-3
            plus = one_step_objective(sol, t, x, u + e, nodes, weights)
            minus = one_step_objective(sol, t, x, u - e, nodes, weights)
            assert np.all(np.abs(plus - minus) < 1e-9 * (1 + np.abs(best)))
            assert np.all(plus < best) and np.all(minus < best)


@pytest.mark.parametrize("name", ["1d", "2d", "5d"])
def test_moments_and_objective_against_monte_carlo(name):
    """Gaussian propagation vs a brute-force simulation of the controlled chain (4 standard errors);
    E V_0(X_0) equals E r(X_N) - Σ w_t KL_t computed from the propagated moments."""
    sol = hjsolve.solve(ddpm_case(name))
    s = sol.summary
    n = 20_000
    record = []
    xN = sol.chain.simulate(sol.control, n, seed=3, record=record)
    r = sol.problem.reward(xN)
    assert abs(r.mean() - s["reward_finetuned"]) < 4 * r.std() / np.sqrt(n)
    np.testing.assert_allclose(record[0].sum(), s["kl_finetuned_pretrained"], rtol=0.03)
    np.testing.assert_allclose(xN.mean(axis=0), s["terminal_mean"], atol=4 * np.sqrt(np.max(s["terminal_cov"]) / n))
    x0 = np.random.default_rng(4).standard_normal((n, sol.problem.dimension))
    np.testing.assert_allclose(s["objective"], s["value_initial_mean"], rtol=1e-10)
    assert abs(sol.value(0, x0).mean() - s["value_initial_mean"]) < 4 * sol.value(0, x0).std() / np.sqrt(n)
    pre = sol.problem.reward(sol.chain.simulate(sol.chain.score, n, seed=5))
    assert abs(pre.mean() - s["reward_pretrained"]) < 4 * pre.std() / np.sqrt(n)
    np.testing.assert_allclose(np.log(np.mean(np.exp(pre / 0.5))), s["log_normalizer"], atol=0.05)
    for key in hjsolve.solution.SUMMARY_KEYS:
        assert key in s


def test_large_weight_gives_the_pretrained_score():
    """β → ∞: u*_t → s_t with |u* - s| = O(1/β)."""
    gaps = []
    for alpha in (1e2, 1e4):
        sol = hjsolve.solve(ddpm_case("2d", alpha=alpha))
        x = np.random.default_rng(0).normal(size=(20, 2))
        gaps.append(max(np.abs(sol.control(t, x) - sol.chain.score(t, x)).max() for t in range(60)))
    assert gaps[1] < 2e-3 and 80 < gaps[0] / gaps[1] < 120


def test_samples_and_density_are_the_gaussian_terminal_law():
    sol = hjsolve.solve(ddpm_case("2d"))
    x = sol.sample(50_000, seed=2)
    mean, cov = np.array(sol.summary["terminal_mean"]), np.array(sol.summary["terminal_cov"])
    np.testing.assert_allclose(x.mean(axis=0), mean, atol=4 * np.sqrt(cov.max() / len(x)))
    grid = np.stack(np.meshgrid(*[np.linspace(-6, 8, 141)] * 2, indexing="ij"), -1).reshape(-1, 2)
    assert abs(np.exp(sol.terminal_log_density(grid)).sum() * 0.1**2 - 1.0) < 1e-6


def test_integer_steps_and_errors():
    sol = hjsolve.solve(ddpm_case("1d", steps=10))
    y = np.array([[0.3], [1.0]])
    np.testing.assert_allclose(sol.value(10, y), sol.problem.reward(y))
    np.testing.assert_allclose(sol.control(3.0, y), sol.control(3, y))
    for bad in (0.5, -1, 10):
        with pytest.raises(HJSolveError, match="integer"):
            sol.control(bad, y)
    with pytest.raises(HJSolveError, match="integer"):
        sol.value(11, y)
    table = sol.tabulate()
    assert table["value"].shape == (len(table["t"]), len(table["x"]))


def test_exact_is_not_applicable_beyond_lq():
    mixture = make_case(sde={"kind": "ddpm", "steps": 20})
    with pytest.raises(NotApplicableError, match="pift"):
        hjsolve.solve(mixture, method="exact")
    bump = ddpm_case("1d", reward={"kind": "bump", "center": [1.0]})
    with pytest.raises(NotApplicableError, match="pift"):
        hjsolve.solve(bump)


@pytest.mark.slow
def test_continuous_limit_matches_vp_exact():
    """DDPM(N, beta_1 = β_min/N, beta_N = β_max/N) → vp(β_min, β_max, T = 1) with the same α:
    u*_t ↔ s(1 - t/N, ·) + ∇log h(t/N, ·), V_t ↔ α log h(t/N, ·), the pretrained log-normaliser
    ↔ exact log C; the gaps shrink like 1/N."""
    mean, cov, reward = [1.0], [[0.5]], {"kind": "quadratic", "center": [2.0], "scale": 1.0}
    alpha, b_min, b_max = 0.5, 0.1, 12.0
    pre = {"kind": "gaussian_mixture", "weights": [1.0], "means": [mean], "covs": [cov]}
    exact = hjsolve.solve(make_case(sde={"kind": "vp", "T": 1.0, "beta_min": b_min, "beta_max": b_max},
                                    pretrained=pre, reward=reward, **{"finetune.alpha": alpha}))
    y = np.linspace(-2.0, 3.0, 11)[:, None]
    Ns = np.array([50, 100, 200, 400])
    gaps = []
    for N in Ns:
        sol = hjsolve.solve(make_case(sde={"kind": "ddpm", "steps": int(N), "beta_1": b_min / N, "beta_N": b_max / N},
                                      pretrained=pre, reward=reward, **{"finetune.alpha": alpha}))
        ctrl, val = 0.0, 0.0
        for t in (0, N // 4, N // 2, 3 * N // 4):
            tc = t / N
            cont = exact.problem.score(1.0 - tc, y) + exact.grad_log_h(tc, y)
            ctrl = max(ctrl, np.abs(sol.control(t, y) - cont).max())
            val = max(val, np.abs(sol.value(t, y) - alpha * exact.log_h(tc, y)).max())
        logc = abs(sol.summary["log_normalizer"] - exact.summary["log_normalizer"])
        gaps.append((ctrl, val, logc))
    gaps = np.array(gaps)
    slopes = [np.polyfit(np.log(Ns), np.log(gaps[:, j]), 1)[0] for j in range(3)]
    print("continuous-limit gaps (control, value, log C) per N", Ns, gaps, "slopes", slopes)
    assert np.all(np.diff(gaps, axis=0) < 0)
    assert all(-1.3 < s < -0.7 for s in slopes), slopes
