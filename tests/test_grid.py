"""Grid solver (Numba finite differences) against the exact solver: accuracy targets at the
default settings, both ways of computing log C, convergence orders, large r/α, the boundary
leak warning, sampling (two-sample test against exact samples) and persistence."""
import numpy as np
import pytest
from scipy import stats

import hjsolve
from conftest import make_case
from grid_helpers import grid_errors
from hjsolve.errors import HJSolveWarning, NotApplicableError
from hjsolve.solvers import solve


def _check_targets(case, log_h_tol, control_tol, log_C_tol=1e-3, **options):
    exact = solve(case, "exact")
    grid = solve(case, "grid", **options)
    worst, control = grid_errors(grid, exact)
    s, log_C = grid.summary, exact.summary["log_normalizer"]
    assert worst <= log_h_tol, worst
    assert control <= control_tol, control
    assert abs(s["log_normalizer_backward"] - log_C) <= log_C_tol
    assert abs(s["log_normalizer_forward"] - log_C) <= log_C_tol
    return grid, exact


@pytest.mark.parametrize("sde", [{"kind": "vp", "T": 1.0}, {"kind": "ve", "T": 1.0}, {"kind": "ou", "T": 2.0}])
def test_1d_targets_at_default_settings(sde):
    grid, exact = _check_targets(make_case(sde=sde), 1e-3, 1e-2)
    s = grid.summary
    # The forward pass is the discrete adjoint of the backward pass: Σ h(t) m(t) is conserved.
    assert abs(s["log_normalizer_difference"]) < 1e-10
    for key in ("reward_pretrained", "reward_finetuned", "kl_finetuned_pretrained"):
        assert s[key] == pytest.approx(exact.summary[key], abs=2e-3), key
    assert s["boundary_mass"] < 1e-6 and s["mass_error"] < 1e-10


def test_large_reward_over_alpha():
    """α = 0.02: r/α reaches -800 over the left mode and ≈ -1200 at the box edge."""
    case = hjsolve.load_case("cases/large_reward_1d.toml")
    grid, _ = _check_targets(case, 1e-3, 1e-2)
    assert np.all(np.isfinite(grid.log_h_levels))
    y = np.array([[-2.0], [0.0], [2.0]])
    assert np.all(np.isfinite(grid.value(0.5, y))) and np.all(np.isfinite(grid.control(0.5, y)))


@pytest.mark.slow
def test_2d_targets_at_default_settings():
    _check_targets(hjsolve.load_case("cases/linear_2d_ve.toml"), 1e-3, 1e-2)


@pytest.mark.slow
def test_3d_targets_at_default_settings():
    # Measured at the defaults (101^3, 60 graded steps): |Δ log h| 6.9e-3, u* 2.0e-3,
    # |Δ log C| 4.4e-4 both ways (uniform 81^3 x 120 steps gave 1.3e-3).
    grid, _ = _check_targets(hjsolve.load_case("cases/quadratic_3d_ou.toml"), 1e-2, 3e-2, log_C_tol=1e-3)
    assert grid.time_grid.grading == 1.0 and grid.summary["boundary_mass"] < 1e-6


def _log_h_error(grid, exact):
    tg, out = grid.time_grid, 0.0
    y = np.linspace(-3.0, 3.0, 61)[:, None]
    for level in (0, tg.levels // 2, tg.levels - 1):
        t = tg.level_times[level]
        out = max(out, float(np.max(np.abs(exact.log_h(t, y) - grid.log_h(t, y)))))
    return out


@pytest.fixture(scope="module")
def ou_case():
    case = make_case(sde={"kind": "ou", "T": 1.0})
    return case, solve(case, "exact")


@pytest.mark.slow
def test_convergence_order_in_space(ou_case):
    """Crank–Nicolson with fitted central differences: second order in Δz (fine Δt)."""
    case, exact = ou_case
    steps = np.array([100, 200, 400])
    errors = [_log_h_error(solve(case, "grid", points=int(n) + 1, time_steps=600), exact) for n in steps]
    order = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(order - 2.0) <= 0.3, (errors, order)


def test_convergence_order_in_time(ou_case):
    """Strang splitting of Crank–Nicolson steps: second order in Δt (fine grid)."""
    case, exact = ou_case
    steps = np.array([20, 40, 80])
    errors = [_log_h_error(solve(case, "grid", points=1601, time_steps=int(n)), exact) for n in steps]
    order = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(order - 2.0) <= 0.3, (errors, order)


BIMODAL_2D = {
    "sde": {"kind": "vp", "T": 1.0},
    "pretrained": {"kind": "gaussian_mixture", "weights": [0.4, 0.6], "means": [[-2.0, 0.0], [2.0, 1.0]],
                   "stds": [0.5, 0.7]},
    "reward": {"kind": "quadratic", "center": [2.0, 0.0], "scale": 1.0},
    "finetune": {"alpha": 1.0, "divergence": "kl"},
}


def test_convergence_order_in_time_2d():
    """The splitting of the per-axis steps is second order in Δt: only d ≥ 2 tests it. The
    errors (log h and u* over Q*_t) are against 512 steps on the same 101² grid, so that the
    spatial error cancels. Measured: 0.089 / 0.021 / 0.0053 in log h (orders 2.04, u* 2.11)."""
    case = make_case(BIMODAL_2D)
    reference = solve(case, "grid", points=101, time_steps=512, save_every=64)
    steps = np.array([16, 32, 64])
    errors = np.array([grid_errors(solve(case, "grid", points=101, time_steps=int(n), save_every=int(n) // 8),
                                   reference) for n in steps])
    orders = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert np.all(np.abs(orders - 2.0) <= 0.3), (errors, orders)


def test_graded_time_grid():
    """Graded steps s_k = T((1-g)σ_k + gσ_k²): levels at uniform σ, σ(t) inverts φ."""
    from hjsolve.grid.passes import TimeGrid

    tg = TimeGrid(2.0, 60, 4, grading=1.0)
    sigma = np.array([tg.sigma(t) for t in tg.level_times])
    assert np.allclose(sigma, np.arange(tg.levels) * 4 / 60, rtol=0, atol=1e-14)
    ds = np.diff(tg.s)
    assert ds[0] == pytest.approx(2.0 / 60**2) and np.all(np.diff(ds) > 0) and tg.s[-1] == pytest.approx(2.0)
    assert sum(tg.step(k)[0] for k in range(tg.nt)) == pytest.approx(2.0)


def test_graded_steps_agree_with_exact_and_round_trip(tmp_path):
    """1-D OU, 100 steps: graded steps (g = 1) beat uniform ones at equal cost (measured
    |Δ log h| 5.1e-3 vs 1.3e-2, |Δ log C| 3e-5 vs 2.8e-3), and a saved solution keeps its
    grading (time interpolation is in σ)."""
    case = make_case(sde={"kind": "ou", "T": 2.0})
    exact = solve(case, "exact")
    grid = solve(case, "grid", points=601, time_steps=100, time_grading=1.0)
    uniform = solve(case, "grid", points=601, time_steps=100, time_grading=0.0)
    worst, control = grid_errors(grid, exact)
    worst_uniform, _ = grid_errors(uniform, exact)
    assert worst < 7e-3 and control < 1e-3 and worst < 0.5 * worst_uniform, (worst, control, worst_uniform)
    assert abs(grid.summary["log_normalizer"] - exact.summary["log_normalizer"]) < 2e-4
    t = 0.5 * (grid.time_grid.level_times[3] + grid.time_grid.level_times[4])  # between levels
    y = np.linspace(-1.0, 3.0, 9)[:, None]
    assert np.max(np.abs(grid.value(t, y) - exact.value(t, y))) < 3e-3
    grid.save(tmp_path)
    back = hjsolve.load(tmp_path)
    assert back.time_grid.grading == 1.0
    assert np.array_equal(back.value(t, y), grid.value(t, y))


def test_python_score_rates_match_mixture_kernel():
    """The NumPy-callback path (any score) and the fused mixture kernel give the same rates."""
    from hjsolve.grid.coefficients import Generator
    from hjsolve.solvers.grid import setup

    case = hjsolve.load_case("cases/quadratic_3d_ou.toml")
    domain, tg = setup(case, {"points": 17, "time_steps": 10}, "grid")
    fused, prepared = Generator(case.problem, domain), Generator(case.problem, domain)
    prepared.prepare(tg.midpoints)  # the per-time arguments evaluated for all steps at once
    callback = Generator(case.problem, domain)
    callback.mixture = None
    for k in (0, 5, 9):
        t = tg.step(k)[1]
        assert t in prepared.prepared
        a, b, c = fused.rates(t), callback.rates(t), prepared.rates(t)
        scale = np.max(a[0])
        assert np.max(np.abs(a[0] - b[0])) < 1e-12 * scale and np.max(np.abs(a[1] - b[1])) < 1e-12 * scale
        np.testing.assert_allclose(c, a, rtol=1e-13, atol=1e-13 * scale)
        assert np.all(a[0] >= 0) and np.all(a[1] >= 0)


def test_boundary_leak_warning():
    with pytest.warns(HJSolveWarning, match="reaches the boundary"):
        grid = solve(make_case(), "grid", points=201, time_steps=50, domain=[[-2.5, 2.5]], noise_width=2.0)
    assert grid.summary["boundary_mass"] > 1e-6


@pytest.mark.slow
def test_samples_pass_two_sample_test_against_exact():
    case = make_case()
    exact = solve(case, "exact")
    grid = solve(case, "grid", points=401, time_steps=200, sample_steps=400)
    ours = grid.sample(3000, seed=1)[:, 0]
    truth = exact.sample(3000, seed=2)[:, 0]
    assert stats.ks_2samp(ours, truth).pvalue > 0.01
    nu = grid.sample_initial(3000, seed=3)[:, 0]
    assert stats.ks_2samp(nu, exact.sample_initial(3000, seed=4)[:, 0]).pvalue > 0.01
    y = np.linspace(0.5, 3.5, 13)[:, None]
    assert np.max(np.abs(grid.terminal_log_density(y) - exact.terminal_log_density(y))) < 1e-2


def test_save_and_load_round_trip(tmp_path):
    grid = solve(make_case(), "grid", points=201, time_steps=50)
    grid.save(tmp_path)
    back = hjsolve.load(tmp_path)
    y = np.array([[-1.0], [0.3], [2.0]])
    assert np.array_equal(back.value(0.4, y), grid.value(0.4, y))
    assert back.summary["log_normalizer"] == grid.summary["log_normalizer"]


def test_not_applicable():
    with pytest.raises(NotApplicableError, match="ddpm"):
        solve(make_case(sde={"kind": "ddpm", "steps": 10}), "grid")


@pytest.mark.slow
def test_figure_data_grid_beats_fipy():
    from hjsolve.figures.grid import grid_comparison_data

    data = grid_comparison_data()
    grid_err = np.max(np.abs(data["value"][1] - data["value"][0]))
    fipy_err = np.max(np.abs(data["value"][2] - data["value"][0]))
    assert grid_err < 5e-3 and fipy_err > 10 * grid_err, (grid_err, fipy_err)
    assert abs(data["log_normalizer"][1] - data["log_normalizer"][0]) < 1e-4


def test_a_grid_solve_leaves_numba_threads_as_it_found_them():
    """The grid picks its own thread count per pass; the particle kernels that run after it in
    the same process (e.g. in `hjsolve validate`) keep the caller's."""
    import numba

    before = numba.get_num_threads()
    grid = solve(make_case(), "grid", points=101, time_steps=20)  # small: one thread inside
    grid.control(0.5, np.zeros((3, 1)))
    assert numba.get_num_threads() == before


@pytest.mark.parametrize("path, points", [("cases/linear_2d_ve.toml", 45), ("cases/quadratic_3d_ou.toml", 13),
                                          ("cases/bimodal_1d.toml", 101)])
def test_passes_side_by_side_in_turn_and_parallel_agree_exactly(path, points, monkeypatch):
    """`solve_passes` (side by side, each pass in Numba calls of 5 steps, on 2-3 Numba
    threads), the passes in turn on one thread (the same Numba calls), and in turn driven from
    Python step by step with the parallel kernels (lines cut into runs) compute every line the
    same way: identical log h and masses. Full covariances (the general mixture path, 2-D),
    separable weights (3-D) and 1-D."""
    from hjsolve.grid import passes
    from hjsolve.grid.coefficients import Generator
    from hjsolve.grid.passes import backward, forward, solve_passes
    from hjsolve.solvers.grid import initial_masses, setup

    case = hjsolve.load_case(path)
    monkeypatch.setattr(passes, "CHUNK_CELL_STEPS", 5 * points**case.problem.dimension)  # across saved levels
    problem = case.problem
    domain, tg = setup(case, {"points": points, "time_steps": 12, "save_every": 3}, "grid")
    r_eff = problem.effective_reward(domain.to_y(tg.T, domain.nodes()))
    masses = initial_masses(problem, domain)
    together = solve_passes(problem, domain, tg, r_eff, masses, 0)
    assert np.all(np.isfinite(together[0])) and np.all(np.isfinite(together[1]))
    for threads in (1, 2):
        generator = Generator(problem, domain)
        assert np.array_equal(backward(generator, tg, r_eff, threads), together[0])
        assert np.array_equal(forward(generator, tg, masses, threads), together[1])


def _solve_small_2d(queue):
    queue.put(float(solve(hjsolve.load_case("cases/linear_2d_ve.toml"), "grid", points=41,
                          time_steps=8).summary["log_normalizer"]))


def test_forked_child_runs_the_passes_side_by_side():
    """The forward pass' worker thread is per process: a child forked after a solve in the
    parent (the parent's thread does not exist there) solves too, with the same result."""
    import multiprocessing

    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("side by side needs 2-3 Numba threads")
    expected = solve(hjsolve.load_case("cases/linear_2d_ve.toml"), "grid", points=41, time_steps=8)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_solve_small_2d, args=(queue,))
    child.start()
    child.join(60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive, "the forked child hung"
    assert queue.get(timeout=5) == expected.summary["log_normalizer"]


def test_normalise_saves_log_h_and_rejects_nan():
    """The end of a backward step (`kernels.normalise`): h is rescaled by its sum, log h̃ is
    saved at a saved level with the floor relative to the sum, and a NaN or a non-positive sum
    is reported (the pass then raises)."""
    from hjsolve.grid.kernels import normalise

    h = np.array([1.0, 3.0, 1e-310, 4.0])
    out = np.zeros((3, 4))
    offset, scale = normalise(h, 1, 2, 1e-3, 5.0, out)
    assert offset == pytest.approx(5.0 + np.log(8.0), rel=1e-15) and scale == 1.0 / 8.0
    np.testing.assert_allclose(out[1], np.log(np.maximum(h / 8.0, 1e-3)) + offset, rtol=1e-14)
    assert not np.any(out[0]) and not np.any(out[2])
    assert normalise(h, 0, 2, 1e-3, 5.0, out)[0] == offset and not np.any(out[0])  # not a saved level
    for bad in (np.array([1.0, np.nan]), np.array([-1.0, 0.5]), np.array([np.inf, 1.0])):
        assert np.isnan(normalise(bad, 1, 2, 1e-3, 0.0, np.zeros((2, 2)))[1])
