"""`pretrained.kind = "python"`: a black-box score s(s, x) from a user module."""
import numpy as np
import pytest

import hjsolve
from conftest import BIMODAL_1D, make_case
from hjsolve.errors import CaseError, HJSolveError, NotApplicableError
from hjsolve.solvers import solve

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


def bad_shape(s, x):
    return np.zeros(len(x))
"""


@pytest.fixture
def score_dir(tmp_path, monkeypatch):
    (tmp_path / "user_score.py").write_text(MIXTURE_SCORE)
    return tmp_path


def _python_case(directory, **pretrained):
    from hjsolve.case import case_from_dict

    data = {**BIMODAL_1D, "pretrained": {"kind": "python", "score": "user_score:score", "dimension": 1, **pretrained}}
    return case_from_dict(data, source=str(directory / "case.toml"))


def test_black_box_score_reproduces_the_mixture(score_dir):
    """The same model given as a python score: the same scores, the same grid solution."""
    mixture, python = make_case(), _python_case(score_dir)
    y = np.linspace(-4, 4, 9)[:, None]
    for t in (0.0, 0.3, 0.99):
        assert np.allclose(python.problem.sampler_drift(t, y), mixture.problem.sampler_drift(t, y), rtol=1e-10, atol=1e-10)
    options = {"points": 201, "time_steps": 40, "domain": [[-5.0, 5.0]]}
    a, b = solve(mixture, "grid", **options), solve(python, "grid", **options)
    assert b.summary["log_normalizer"] == pytest.approx(a.summary["log_normalizer"], abs=1e-10)
    assert np.allclose(b.value(0.5, y), a.value(0.5, y), atol=1e-9)


def test_forward_time_inverts_the_variance(score_dir):
    model = _python_case(score_dir).problem.pretrained
    for s in (0.0, 1e-3, 0.37, 1.0):
        assert model.forward_time(float(model.sde.var(s))) == pytest.approx(s, abs=1e-9)


def test_exact_is_not_applicable(score_dir):
    with pytest.raises(NotApplicableError, match="gaussian_mixture"):
        solve(_python_case(score_dir), "exact")


@pytest.mark.parametrize("edit, key", [
    ({"score": "no_such_module:score"}, "pretrained.score"),
    ({"dimension": 0}, "pretrained.dimension"),
    ({"weights": [1.0]}, "pretrained.weights"),
])
def test_bad_specs_name_the_key(score_dir, edit, key):
    with pytest.raises(CaseError, match=key):
        _python_case(score_dir, **edit)


def test_wrong_shape_is_a_clear_error(score_dir):
    case = _python_case(score_dir, score="user_score:bad_shape")
    with pytest.raises(HJSolveError, match="returned shape"):
        case.problem.score(0.5, np.zeros((3, 1)))


def test_bundled_two_moons_case():
    """The fitted two-moons score model: grid runs, conserves mass, tilts towards the reward."""
    case = hjsolve.load_case("cases/two_moons_2d.toml")
    assert case.problem.pretrained.kind == "python" and case.problem.dimension == 2
    grid = solve(case, "grid", points=61, time_steps=30)
    s = grid.summary
    assert abs(s["log_normalizer_difference"]) < 1e-10 and s["mass_error"] < 1e-10
    assert s["reward_finetuned"] > s["reward_pretrained"]
    data = np.loadtxt("data/two_moons.csv", delimiter=",", skiprows=1)
    # p_pre of the fitted model puts most of its mass near the data: compare the mean log
    # density on the data with that on points shifted off the moons.
    on = grid.pretrained_log_density(data).mean()
    off = grid.pretrained_log_density(data + np.array([0.0, 0.6])).mean()
    assert on > off + 1.0
