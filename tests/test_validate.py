"""`hjsolve validate`: the exact solution against brute-force Monte Carlo, one row per method."""
import numpy as np
import pytest

import hjsolve
from hjsolve.solvers import METHODS
from hjsolve.validate import ROW_KEYS, format_table, monte_carlo_log_normalizer, validate_case
from conftest import CASE_1D, write_case


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    return validate_case(hjsolve.load_case(write_case(tmp_path_factory.mktemp("case"))))


def test_exact_agrees_with_monte_carlo(rows):
    exact = next(row for row in rows if row["method"] == "exact")
    assert set(exact) == set(ROW_KEYS)
    assert abs(exact["z"]) < 4, exact
    assert exact["status"].startswith("ok")
    assert exact["stderr"] > 0
    assert exact["reward_pretrained_mc"] == pytest.approx(exact["reward_pretrained"], abs=0.05)
    assert exact["wall_time_s"] >= 0


def test_every_method_has_a_row(rows):
    assert [row["method"] for row in rows] == list(METHODS)
    for row in rows:
        assert set(row) == set(ROW_KEYS)
        if METHODS[row["method"]] is None:
            assert "not implemented yet" in row["status"]
            assert row["log_normalizer"] is None


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
