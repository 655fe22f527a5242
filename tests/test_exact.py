"""The exact solver against independent truths: moment ODEs, brute-force Euler–Maruyama,
finite differences, quadrature and Proposition 3.6."""
import numpy as np
import pytest
from scipy.special import logsumexp

import hjsolve
from hjsolve.errors import NotApplicableError

from conftest import make_case
from gaussian_reference import quadratic_log_h, quadratic_reward_truth

SUMMARY_KEYS = ("log_normalizer", "reward_pretrained", "reward_finetuned", "kl_finetuned_pretrained", "tv_bound")


def single_gaussian_case(sde, mean, cov, center, scale=1.0, alpha=0.5):
    d = len(mean)
    return make_case(
        sde=sde,
        pretrained={"kind": "gaussian_mixture", "weights": [1.0], "means": [list(mean)], "covs": [cov]},
        reward={"kind": "quadratic", "center": list(center), "scale": scale},
        finetune={"alpha": alpha, "divergence": "kl"},
    ) if d else None


GAUSSIAN_CASES = [
    ({"kind": "vp", "T": 1.0}, [1.0], [[0.3]], [2.0]),
    ({"kind": "ve", "T": 1.0, "sigma_max": 5.0}, [0.5], [[0.8]], [-1.0]),
    ({"kind": "ou", "T": 1.0}, [1.0, -0.5], [[0.5, 0.2], [0.2, 0.4]], [1.5, 0.5]),
    ({"kind": "vp", "T": 1.0, "beta_max": 8.0}, [0.7, 0.2, -0.4], np.diag([0.3, 0.5, 0.2]).tolist(), [0.0, 1.0, 1.0]),
    # d = 6 > 3: isotropic covariance, integrals over p_noise by the reduced rule.
    ({"kind": "ou", "T": 1.0}, [1.0, 0, 0, 0, 0, 0], (0.4 * np.eye(6)).tolist(), [2.0, 0, 0, 0, 0, 0]),
]


@pytest.mark.parametrize("sde, mean, cov, center", GAUSSIAN_CASES)
def test_summary_matches_moment_odes(sde, mean, cov, center):
    case = single_gaussian_case(sde, mean, cov, center)
    sol = hjsolve.solve(case)
    truth = quadratic_reward_truth(case.problem.sde, np.array(mean), np.array(cov), np.array(center), 1.0, 0.5)
    for key in SUMMARY_KEYS:
        assert sol.summary[key] == pytest.approx(truth[key], rel=1e-6, abs=1e-9), key


@pytest.mark.parametrize("sde, mean, cov, center", GAUSSIAN_CASES[:3])
def test_value_matches_moment_odes(sde, mean, cov, center):
    case = single_gaussian_case(sde, mean, cov, center)
    sol = hjsolve.solve(case)
    d = len(mean)
    rng = np.random.default_rng(1)
    for t in (0.0, 0.3, 0.9):
        y = rng.normal(size=(3, d))
        expected = [0.5 * quadratic_log_h(case.problem.sde, np.array(mean), np.array(cov), np.array(center),
                                          1.0, 0.5, t, yi) for yi in y]
        np.testing.assert_allclose(sol.value(t, y), expected, rtol=1e-7, atol=1e-9)


def test_exact_samples_match_gaussian_truth():
    sde, mean, cov, center = GAUSSIAN_CASES[2]
    case = single_gaussian_case(sde, mean, cov, center)
    sol = hjsolve.solve(case)
    truth = quadratic_reward_truth(case.problem.sde, np.array(mean), np.array(cov), np.array(center), 1.0, 0.5)
    n = 40_000
    x = sol.sample(n, seed=3)
    se = np.sqrt(np.diag(truth["finetuned_cov"]) / n)
    assert np.all(np.abs(x.mean(axis=0) - truth["finetuned_mean"]) < 4 * se)
    np.testing.assert_allclose(np.cov(x.T), truth["finetuned_cov"], atol=0.02)
    assert sol.sampling["exact"] and 0 < sol.sampling["acceptance_rate"] <= 1
    assert sol.sampling["acceptance_rate"] == pytest.approx(sol.sampling["acceptance_rate_theory"], abs=0.02)


def euler_maruyama_log_h(problem, t0, y0, n_paths, n_steps, seed):
    """Brute force: log E exp(r_eff(Y_T)) from Y_t0 = y0 by plain Euler–Maruyama, with its standard error."""
    rng = np.random.default_rng(seed)
    sde = problem.sde
    y = np.tile(np.asarray(y0, dtype=float), (n_paths, 1))
    ts = np.linspace(t0, sde.T, n_steps + 1)
    for t, t_next in zip(ts[:-1], ts[1:]):
        dt = t_next - t
        y = y + problem.sampler_drift(t, y) * dt + np.sqrt(sde.sampler_sigma2(t) * dt) * rng.standard_normal(y.shape)
    r_eff = problem.effective_reward(y)
    w = np.exp(r_eff - r_eff.max())
    log_h = np.log(w.mean()) + r_eff.max()
    return log_h, w.std() / np.sqrt(n_paths) / w.mean()


MIXTURE_2D = {
    "kind": "gaussian_mixture", "weights": [0.4, 0.6], "means": [[-1.5, 0.5], [1.5, -0.5]],
    "covs": [[[0.3, 0.1], [0.1, 0.2]], [[0.25, 0.0], [0.0, 0.4]]],
}


@pytest.mark.slow
@pytest.mark.parametrize("case_kwargs", [
    {},
    {"reward": {"kind": "bump", "center": [1.0], "height": 1.0, "width": 0.7}, "finetune.alpha": 0.4},
    {"sde": {"kind": "ou", "T": 1.0}, "reward": {"kind": "sigmoid", "weight": [2.0], "height": 1.0}},
    {"pretrained": MIXTURE_2D, "reward": {"kind": "quadratic", "center": [1.0, 1.0], "scale": 0.5}},
    {"pretrained": MIXTURE_2D, "sde": {"kind": "ve", "T": 1.0, "sigma_max": 4.0},
     "reward": {"kind": "linear", "weight": [0.5, -0.3]}},
])
def test_value_and_log_normalizer_against_euler_maruyama(case_kwargs):
    case = make_case(**case_kwargs)
    problem = case.problem
    sol = hjsolve.solve(case)
    d = problem.dimension
    # log C = log E exp(r_eff(Y_T)) with Y_0 ~ p_noise: Euler–Maruyama from sampled noise.
    rng = np.random.default_rng(11)
    n, steps = 20_000, 500
    y = np.sqrt(problem.sde.noise_var()) * rng.standard_normal((n, d))
    ts = np.linspace(0.0, problem.sde.T, steps + 1)
    for t, t_next in zip(ts[:-1], ts[1:]):
        dt = t_next - t
        y = y + problem.sampler_drift(t, y) * dt + np.sqrt(problem.sde.sampler_sigma2(t) * dt) * rng.standard_normal(y.shape)
    r_eff = problem.effective_reward(y)
    log_C_mc = logsumexp(r_eff) - np.log(n)
    w = np.exp(r_eff - logsumexp(r_eff))
    se = np.sqrt(n * np.sum(w**2) - 1) / np.sqrt(n)
    bias = 0.01  # Euler–Maruyama discretisation, measured well below this at 500 steps
    assert abs(sol.summary["log_normalizer"] - log_C_mc) < 4 * se + bias
    assert abs(sol.summary["reward_pretrained"] - problem.reward(y).mean()) < 4 * problem.reward(y).std() / np.sqrt(n) + bias
    # h at an interior point.
    y0 = np.full(d, 0.5)
    log_h_mc, se_h = euler_maruyama_log_h(problem, 0.5, y0, 10_000, 250, seed=5)
    assert abs(sol.log_h(0.5, y0[None])[0] - log_h_mc) < 4 * se_h + bias


@pytest.mark.parametrize("case_kwargs", [
    {},
    {"sde": {"kind": "ve", "T": 1.0}, "reward": {"kind": "bump", "center": [1.0], "height": 1.0, "width": 0.7}},
    {"finetune": {"alpha": 1.0, "divergence": "gamma", "gamma": 0.3}},
    {"pretrained": MIXTURE_2D, "reward": {"kind": "sigmoid", "weight": [1.0, 2.0], "height": 1.0},
     "finetune": {"alpha": 1.0, "divergence": "forward_kl"}},
])
def test_control_is_sigma2_times_gradient_of_value(case_kwargs):
    case = make_case(**case_kwargs)
    sol = hjsolve.solve(case)
    d = case.problem.dimension
    scale = case.problem.divergence.value_scale
    y = np.random.default_rng(2).normal(size=(5, d))
    eps = 1e-5
    for t in (0.0, 0.5, 0.95, 1.0):
        fd = np.stack([(sol.value(t, y + eps * e) - sol.value(t, y - eps * e)) / (2 * eps) for e in np.eye(d)], axis=1)
        expected = float(case.problem.sde.sampler_sigma2(t)) / scale * fd
        np.testing.assert_allclose(sol.control(t, y), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reward", [
    {"kind": "quadratic", "center": [2.0], "scale": 1.0},
    {"kind": "bump", "center": [1.0], "height": 2.0, "width": 0.5},
    {"kind": "linear", "weight": [0.7], "offset": 0.3},
])
def test_terminal_value_is_reward(reward):
    sol = hjsolve.solve(make_case(reward=reward))
    y = np.linspace(-4, 4, 17)[:, None]
    np.testing.assert_allclose(sol.value(1.0, y), sol.problem.reward(y), rtol=1e-12, atol=1e-12)


def test_gamma_to_zero_recovers_kl():
    reward = {"kind": "bump", "center": [1.0], "height": 1.0, "width": 0.8}
    kl = hjsolve.solve(make_case(reward=reward))
    gamma = hjsolve.solve(make_case(reward=reward, finetune={"alpha": 0.5, "divergence": "gamma", "gamma": 1e-7}))
    y = np.linspace(-3, 3, 7)[:, None]
    np.testing.assert_allclose(0.5 * gamma.value(0.3, y), kl.value(0.3, y), rtol=1e-5)
    np.testing.assert_allclose(gamma.control(0.3, y), kl.control(0.3, y), rtol=1e-5, atol=1e-7)
    assert gamma.summary["log_normalizer"] == pytest.approx(kl.summary["log_normalizer"], rel=1e-5)


def test_closed_form_and_quadrature_agree():
    case = make_case(pretrained=MIXTURE_2D, reward={"kind": "quadratic", "center": [1.0, 1.0], "scale": 0.5})
    closed = hjsolve.solve(case)
    assert closed.summary["moments"] == "closed_form"
    from hjsolve.moments import QuadratureMoments
    quad = hjsolve.solve(case)
    quad.moments, quad.closed_form = QuadratureMoments(case.problem, 48), False
    y = np.random.default_rng(0).normal(size=(20, 2))
    for t in (0.0, 0.6, 1.0):
        np.testing.assert_allclose(quad.value(t, y), closed.value(t, y), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(quad.control(t, y), closed.control(t, y), rtol=1e-8, atol=1e-10)
    ints = quad.noise_integrals()
    for key in ("log_normalizer", "reward_pretrained", "reward_finetuned"):
        assert ints[key] == pytest.approx(closed.summary[key], rel=1e-8)


def test_kl_identity_and_tv_bound_by_numerical_integration():
    """KL(p_ftune‖p_pre) = E_ftune[r]/α - log C and the (3.3) term, from the densities on a grid."""
    case = make_case(reward={"kind": "bump", "center": [1.0], "height": 1.0, "width": 0.6})
    sol = hjsolve.solve(case)
    x = np.linspace(-7, 7, 14001)[:, None]
    log_f, log_p = sol.terminal_log_density(x), sol.pretrained_log_density(x)
    f, p = np.exp(log_f), np.exp(log_p)
    assert np.trapezoid(f, x[:, 0]) == pytest.approx(1.0, abs=1e-8)
    assert np.trapezoid(p, x[:, 0]) == pytest.approx(1.0, abs=1e-8)
    kl = np.trapezoid(f * (log_f - log_p), x[:, 0])
    assert sol.summary["kl_finetuned_pretrained"] == pytest.approx(kl, rel=1e-6)
    reward_f = np.trapezoid(f * case.problem.reward(x), x[:, 0])
    assert kl == pytest.approx(reward_f / 0.5 - sol.summary["log_normalizer"], rel=1e-6)
    second = np.trapezoid(p * np.exp(2 * case.problem.reward(x) / 0.5), x[:, 0])
    assert sol.summary["tv_bound"] == pytest.approx(0.5 * np.sqrt(second), rel=1e-7)


@pytest.mark.slow
def test_proposition_3_6_controlled_sde_from_nu_star_reaches_p_ftune():
    """Push ν* through (3.9) with u* by Euler–Maruyama: the terminal law is p_ftune."""
    case = make_case(pretrained=MIXTURE_2D, reward={"kind": "quadratic", "center": [1.0, 1.0], "scale": 0.5},
                     **{"finetune.alpha": 1.0})
    sol = hjsolve.solve(case)
    problem = case.problem
    n, steps = 8000, 400
    rng = np.random.default_rng(7)
    y = sol.sample_initial(n, seed=8)
    ts = np.linspace(0.0, problem.sde.T, steps + 1)
    for t, t_next in zip(ts[:-1], ts[1:]):
        dt = t_next - t
        drift = problem.sampler_drift(t, y) + sol.control(t, y)
        y = y + drift * dt + np.sqrt(problem.sde.sampler_sigma2(t) * dt) * rng.standard_normal(y.shape)
    exact = sol.sample(200_000, seed=9)
    se = exact.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(y.mean(axis=0) - exact.mean(axis=0)) < 4 * se + 0.01)
    cov = np.cov(exact.T)
    # Standard error of a sample covariance entry: sqrt((Σ_ii Σ_jj + Σ_ij²) / n).
    cov_se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(np.cov(y.T) - cov) < 4 * cov_se + 0.01)


def test_initial_law_is_normalised_and_matches_samples():
    sol = hjsolve.solve(make_case(reward={"kind": "linear", "weight": [1.5]}, sde={"kind": "ou", "T": 1.0}))
    y = np.linspace(-8, 8, 8001)[:, None]
    density = np.exp(sol.initial_log_density(y))
    assert np.trapezoid(density, y[:, 0]) == pytest.approx(1.0, abs=1e-7)
    mean = np.trapezoid(density * y[:, 0], y[:, 0])
    samples = sol.sample_initial(40_000, seed=1)
    assert abs(samples.mean() - mean) < 4 * samples.std() / np.sqrt(len(samples))


@pytest.mark.parametrize("reward, sampler", [
    ({"kind": "quadratic", "center": [1.0], "scale": 2.0}, "tilted_mixture"),
    ({"kind": "bump", "center": [1.0], "height": 1.0, "width": 0.5}, "rejection"),
])
def test_samples_follow_terminal_density(reward, sampler):
    """Kolmogorov–Smirnov against the CDF of terminal_log_density integrated on a grid."""
    from scipy.stats import kstest

    sol = hjsolve.solve(make_case(reward=reward, **{"finetune.alpha": 0.3}))
    x = np.linspace(-8, 8, 32001)
    pdf = np.exp(sol.terminal_log_density(x[:, None]))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(x))])
    samples = sol.sample(5000, seed=4)[:, 0]
    assert sol.sampling["sampler"] == sampler and sol.sampling["exact"]
    assert kstest(samples, lambda s: np.interp(s, x, cdf)).pvalue > 1e-3


def test_unbounded_reward_without_closed_form_is_flagged_approximate():
    case = make_case(reward={"kind": "sigmoid", "weight": [1.0], "height": 1.0},
                     finetune={"alpha": 1.0, "divergence": "forward_kl"})
    sol = hjsolve.solve(case)
    assert sol.summary["sampler"] == "importance_resampling" and sol.summary["sampler_exact"] is False
    sol.sample(1000, seed=0)
    assert sol.sampling["exact"] is False and 0 < sol.sampling["ess"] <= sol.sampling["proposals"]


def test_large_reward_over_alpha_stays_finite():
    """r/α of 200 near the reward's peak: everything is computed in log space."""
    case = make_case(reward={"kind": "linear", "weight": [20.0]}, **{"finetune.alpha": 0.1})
    sol = hjsolve.solve(case)
    assert all(np.isfinite(sol.summary[k]) for k in SUMMARY_KEYS[:4])
    y = np.array([[10.0], [-10.0], [0.0]])
    for t in (0.0, 0.5, 1.0):
        assert np.all(np.isfinite(sol.value(t, y))) and np.all(np.isfinite(sol.control(t, y)))
    assert sol.value(1.0, y)[0] == pytest.approx(200.0)
    bump = make_case(reward={"kind": "bump", "center": [2.0], "height": 100.0, "width": 0.5}, **{"finetune.alpha": 0.5})
    sol = hjsolve.solve(bump)
    assert np.isfinite(sol.summary["log_normalizer"]) and sol.summary["log_normalizer"] > 150
    assert np.all(np.isfinite(sol.control(0.5, y)))


def test_high_dimension_log_normalizer_against_exact_pretrained_samples():
    """d = 10, bimodal isotropic mixture: the reduced quadrature against Monte Carlo."""
    d = 10
    m = np.zeros(d)
    m[0] = 1.5
    case = make_case(
        pretrained={"kind": "gaussian_mixture", "weights": [0.3, 0.7], "means": [(-m).tolist(), m.tolist()],
                    "stds": [0.5, 0.7]},
        reward={"kind": "quadratic", "center": (0.5 * m + 0.3 * np.eye(d)[1]).tolist(), "scale": 0.3},
        sde={"kind": "ou", "T": 1.0},
    )
    sol = hjsolve.solve(case)
    x, _ = sol.sample_pretrained(200_000, np.random.default_rng(0))
    r_eff = case.problem.effective_reward(x)
    w = np.exp(r_eff - r_eff.max())
    log_C_mc = np.log(w.mean()) + r_eff.max()
    se = w.std() / np.sqrt(len(w)) / w.mean()
    assert abs(sol.summary["log_normalizer"] - log_C_mc) < 4 * se
    reward = case.problem.reward(x)
    assert abs(sol.summary["reward_pretrained"] - reward.mean()) < 4 * reward.std() / np.sqrt(len(x))


def test_non_closed_form_reward_in_high_dimension_names_the_limit():
    d = 4
    case = make_case(pretrained={"kind": "gaussian_mixture", "weights": [1.0], "means": [[0.0] * d], "stds": [1.0]},
                     reward={"kind": "bump", "center": [0.0] * d})
    with pytest.raises(NotApplicableError, match="d <= 3"):
        hjsolve.solve(case)


def test_ddpm_is_not_applicable_to_exact():
    case = make_case(sde={"kind": "ddpm", "steps": 10})
    with pytest.raises(NotApplicableError, match="pift"):
        hjsolve.solve(case)


def test_time_and_shape_errors():
    sol = hjsolve.solve(make_case())
    with pytest.raises(hjsolve.HJSolveError, match="outside"):
        sol.value(1.5, np.zeros((1, 1)))
    with pytest.raises(hjsolve.HJSolveError, match="shape"):
        sol.control(0.5, np.zeros((2, 3)))


def test_rejection_falls_back_with_a_warning_when_acceptance_is_tiny():
    from hjsolve.errors import HJSolveWarning

    case = make_case(reward={"kind": "bump", "center": [6.0], "height": 1.0, "width": 0.3}, **{"finetune.alpha": 0.05})
    sol = hjsolve.solve(case, max_proposals=20_000)
    with pytest.warns(HJSolveWarning, match="falling back"):
        sol.sample(100, seed=0)
    assert sol.sampling["sampler"] == "importance_resampling" and not sol.sampling["exact"]


@pytest.mark.parametrize("height", [1.0, -1.0])
def test_tv_bound_terms_against_measured_distance(height):
    """TV(p_ftune, p_pre) ≤ tv_bound_shifted (Corollary 4.3's form, valid for r bounded below);
    the paper's (3.3) term is flagged valid only when r ≥ 0."""
    case = make_case(reward={"kind": "bump", "center": [1.0], "height": height, "width": 0.6}, **{"finetune.alpha": 0.3})
    sol = hjsolve.solve(case)
    x = np.linspace(-7, 7, 14001)[:, None]
    tv = 0.5 * np.trapezoid(np.abs(np.exp(sol.terminal_log_density(x)) - np.exp(sol.pretrained_log_density(x))), x[:, 0])
    assert tv <= sol.summary["tv_bound_shifted"]
    assert sol.summary["tv_bound_valid"] is (height > 0)
    if height > 0:
        assert sol.summary["tv_bound"] == sol.summary["tv_bound_shifted"]
    else:
        assert sol.summary["tv_bound_shifted"] == pytest.approx(np.exp(1 / 0.3) * sol.summary["tv_bound"])
