"""FiPy cross-check: the same backward/forward equations through FiPy's terms agree with the
grid solver and with the exact solution (to FiPy's first-order accuracy in time)."""
import sys
import warnings

import numpy as np
import pytest

from conftest import make_case
from grid_helpers import grid_errors
from hjsolve.errors import HJSolveError, HJSolveWarning, NotApplicableError
from hjsolve.solvers import solve

pytest.importorskip("fipy")


@pytest.mark.slow
def test_fipy_agrees_with_grid_and_exact():
    case = make_case()
    exact = solve(case, "exact")
    with warnings.catch_warnings():  # a coarse FiPy grid puts ~3e-6 of Q*_t on its outer cells
        warnings.simplefilter("ignore", HJSolveWarning)
        fipy = solve(case, "fipy", points=121, time_steps=60)
    grid = solve(case, "grid", points=401, time_steps=100)
    log_C = exact.summary["log_normalizer"]
    # FiPy steps by backward Euler: first order in time, error ≈ 0.02 with 60 steps.
    assert abs(fipy.summary["log_normalizer"] - log_C) < 0.05
    assert abs(fipy.summary["log_normalizer"] - grid.summary["log_normalizer"]) < 0.05
    assert abs(grid.summary["log_normalizer"] - log_C) < 1e-3
    worst, control = grid_errors(fipy, exact)  # down to 1e-3 of the peak of Q*_t, tails included
    assert worst < 0.4 and control < 0.1, (worst, control)
    # The same equations: FiPy's log C error is first order in Δt and halves with Δt.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HJSolveWarning)
        coarse = solve(case, "fipy", points=121, time_steps=30)
    ratio = abs(coarse.summary["log_normalizer"] - log_C) / abs(fipy.summary["log_normalizer"] - log_C)
    assert 1.5 < ratio < 2.6, ratio
    y = np.linspace(1.0, 3.0, 9)[:, None]
    assert np.max(np.abs(fipy.value(0.5, y) - grid.value(0.5, y))) < 0.05
    # FiPy's forward pass is not the discrete adjoint: the two log C differ, but little.
    assert 0 < abs(fipy.summary["log_normalizer_difference"]) < 0.05


def test_missing_fipy_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "fipy", None)
    with pytest.raises(HJSolveError, match="pip install"):
        solve(make_case(), "fipy")


def test_three_dimensions_not_applicable():
    case = make_case(pretrained={"kind": "gaussian_mixture", "weights": [1.0], "means": [[0.0, 0.0, 0.0]],
                                 "stds": [1.0]}, reward={"kind": "quadratic", "center": [0.0, 0.0, 0.0]})
    with pytest.raises(NotApplicableError, match="d <= 2"):
        solve(case, "fipy")
