"""`hjsolve validate`: the exact solution against brute-force Monte Carlo, one row per method."""
import numpy as np
import pytest

import hjsolve
from hjsolve.validate import ROW_KEYS, format_table, monte_carlo_log_normalizer, validate_case
from conftest import CASE_1D, write_case


#: Small grids keep the grid and fipy rows fast; their accuracy at defaults is tested elsewhere.
SMALL_GRIDS = "[solver.grid]\npoints = 401\ntime_steps = 100\n[solver.fipy]\npoints = 121\ntime_steps = 50\n"


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    case = hjsolve.load_case(write_case(tmp_path_factory.mktemp("case"), CASE_1D + SMALL_GRIDS))
    return validate_case(case, methods=OWN_METHODS)


#: Methods whose rows this file checks (other solvers test their own rows and run times).
OWN_METHODS = ["exact", "grid", "fipy"]


def test_exact_agrees_with_monte_carlo(rows):
    exact = next(row for row in rows if row["method"] == "exact")
    assert set(exact) == set(ROW_KEYS)
    assert abs(exact["z"]) < 4, exact
    assert exact["status"].startswith("ok")
    assert exact["stderr"] > 0
    assert exact["reward_pretrained_mc"] == pytest.approx(exact["reward_pretrained"], abs=0.05)
    assert exact["wall_time_s"] >= 0


def test_every_method_has_a_row(rows):
    assert [row["method"] for row in rows] == OWN_METHODS
    for row in rows:
        assert set(row) == set(ROW_KEYS)


def test_format_table_is_aligned(rows):
    lines = format_table(rows).splitlines()
    assert len(lines) == len(rows) + 2
    assert lines[0].startswith("method") and set(lines[1]) == {"-"}
    status_column = lines[0].index("status")
    assert all(line[status_column - 2:status_column] == "  " for line in lines[2:])
    assert f"{rows[0]['log_normalizer']:.6g}" in lines[2]


def test_monte_carlo_log_normalizer_closed_form():
    """r_eff ~ N(0, s²) gives log E exp(r_eff) = s²/2; the stderr covers the error."""
    r_eff = 0.5 * np.random.default_rng(1).standard_normal(400_000)
    mc = monte_carlo_log_normalizer(r_eff)
    assert abs(mc["log_normalizer"] - 0.125) < 4 * mc["stderr"]
    assert mc["ess"] <= len(r_eff)


def test_not_applicable_exact_is_a_row(tmp_path):
    case = hjsolve.load_case(write_case(tmp_path, CASE_1D.replace('kind = "vp"\nT = 1.0', 'kind = "ddpm"\nsteps = 10')))
    (row,) = validate_case(case, methods=["exact"])
    assert row["status"].startswith("not applicable") and row["z"] is None


def test_grid_and_fipy_rows_compare_with_exact(rows):
    """The comparison columns are filled and small: grid (second order) tighter than fipy."""
    by = {row["method"]: row for row in rows}
    grid, fipy = by["grid"], by["fipy"]
    assert grid["status"].startswith("ok: vs exact") and fipy["status"].startswith("ok: vs exact")
    assert grid["max_value_error"] < 5e-3 and grid["control_l2_error"] < 1e-2
    assert grid["log_normalizer_error"] < 1e-3 and grid["tv_terminal"] < 1e-2
    assert fipy["max_value_error"] < 0.1 and fipy["control_l2_error"] < 0.1
    assert fipy["log_normalizer_error"] < 0.05 and fipy["tv_terminal"] < 0.05
    assert grid["wall_time_s"] > 0 and fipy["wall_time_s"] > 0


def test_grid_is_the_reference_without_exact(tmp_path):
    """A python score model: exact does not apply, grid is the reference and fipy is compared."""
    text = CASE_1D.replace('kind = "gaussian_mixture"\nweights = [0.5, 0.5]\nmeans = [[-2.0], [2.0]]\ncovs = [[[0.25]], [[0.25]]]',
                           'kind = "python"\nscore = "mixture_score:score"\ndimension = 1')
    (tmp_path / "mixture_score.py").write_text(MIXTURE_SCORE)
    case = hjsolve.load_case(write_case(tmp_path, text + SMALL_GRIDS))
    rows = {row["method"]: row for row in validate_case(case, methods=["exact", "grid", "fipy"])}
    assert rows["exact"]["status"].startswith("not applicable")
    assert rows["grid"]["status"].startswith("reference")
    assert rows["fipy"]["status"].startswith("ok: vs grid") and rows["fipy"]["log_normalizer_error"] < 0.05


MIXTURE_SCORE = """
import numpy as np
from scipy.special import softmax


def score(s, x):
    B = 0.1 * s + 9.95 * s**2
    a, var = np.exp(-0.5 * B), -np.expm1(-B)
    c = 0.25 * a * a + var
    diff = x - a * np.array([-2.0, 2.0])[None, :]
    resp = softmax(-0.5 * diff**2 / c, axis=1)
    return -(resp * diff).sum(axis=1, keepdims=True) / c
"""
