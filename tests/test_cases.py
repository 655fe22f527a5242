"""The bundled cases in ``cases/``: each loads, solves exactly and samples; together they cover
every SDE kind, dimension, reward kind and divergence that the exact solver supports."""
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

import hjsolve
from hjsolve.errors import NotApplicableError
from hjsolve.solution import SUMMARY_KEYS

CASES_DIR = Path(__file__).resolve().parent.parent / "cases"
CASE_FILES = sorted(CASES_DIR.glob("*.toml"))

#: What the bundled cases must cover together (removing a case that is the only one
#: with some feature breaks `test_bundled_cases_cover_every_feature`).
REQUIRED_COVERAGE = {
    "sde": {"vp", "ve", "ou"},
    "dimension": {1, 2, 3},
    "reward": {"quadratic", "linear", "bump", "sigmoid", "python"},
    "divergence": {"kl", "gamma", "forward_kl"},
}
#: Summary entries that must be finite numbers for every bundled case.
FINITE_KEYS = ("log_normalizer", "reward_pretrained", "reward_finetuned", "kl_finetuned_pretrained")
MIN_CASES = 7


def _case_id(path):
    return path.stem


def _is_latent(path):
    """A Stable Diffusion case (pretrained.kind 'diffusers'): its weights are not bundled."""
    return tomllib.loads(path.read_text(encoding="utf-8")).get("pretrained", {}).get("kind") == "diffusers"


LATENT_SKIP = ("a Stable Diffusion case (pretrained.kind 'diffusers'): exact does not apply and the SD 1.5 weights "
               "are not bundled; tests/test_latent_*.py run its solver on a tiny pipeline")


@pytest.fixture(scope="module")
def solved():
    """Cache: case file -> (case, exact solution), so each case is solved once per module."""
    cache = {}

    def get(path):
        if _is_latent(path):
            pytest.skip(f"{path.name}: {LATENT_SKIP}")
        if path not in cache:
            case = hjsolve.load_case(path)
            try:
                cache[path] = (case, hjsolve.solve(case, method="exact"))
            except NotApplicableError:
                cache[path] = None
        if cache[path] is None:
            pytest.skip(f"{path.name}: exact does not apply (grid is its ground truth; see test_pretrained_python)")
        return cache[path]

    return get


def test_there_are_enough_bundled_cases():
    assert len(CASE_FILES) >= MIN_CASES, [p.name for p in CASE_FILES]


def test_quickstart_case_is_bundled():
    assert (CASES_DIR / "bimodal_1d.toml").is_file()


@pytest.mark.parametrize("path", CASE_FILES, ids=_case_id)
def test_case_file_is_documented(path):
    """A title, explanatory comments and an output folder named after the file."""
    text = path.read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    assert isinstance(raw.get("title"), str) and raw["title"].strip()
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 3
    assert raw["output"]["dir"] == f"results/{path.stem}"


@pytest.mark.parametrize("path", CASE_FILES, ids=_case_id)
def test_case_loads_and_solves_exactly(path, solved):
    case, solution = solved(path)
    summary = solution.summary
    assert case.title == tomllib.loads(path.read_text(encoding="utf-8"))["title"]
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    assert not missing, f"summary lacks {missing}"
    assert summary["method"] == "exact"
    assert summary["case"] == case.title
    assert summary["dimension"] == case.problem.dimension
    assert summary["alpha"] == pytest.approx(case.problem.alpha)
    assert summary["divergence"] == case.problem.divergence.name
    for key in FINITE_KEYS:
        assert isinstance(summary[key], float) and math.isfinite(summary[key]), (key, summary[key])
    assert summary["kl_finetuned_pretrained"] >= -1e-9
    # tv_bound may be +inf for an f-divergence with inf r_f = -inf, never NaN or negative
    assert isinstance(summary["tv_bound"], float) and summary["tv_bound"] >= 0.0
    assert summary["wall_time_s"] >= 0.0
    tv_pre = summary.get("tv_pretrained_data")
    if tv_pre is not None:
        assert 0.0 <= tv_pre <= 1.0


@pytest.mark.parametrize("path", CASE_FILES, ids=_case_id)
def test_tilt_moves_the_reward_the_right_way(path, solved):
    """kl and gamma weights increase with r, so E_ftune r >= E_pre r; forward KL's α/r decreases."""
    case, solution = solved(path)
    summary = solution.summary
    gain = summary["reward_finetuned"] - summary["reward_pretrained"]
    if case.problem.divergence.name == "forward_kl":
        assert gain <= 1e-9
    else:
        assert gain >= -1e-9


@pytest.mark.parametrize("path", CASE_FILES, ids=_case_id)
def test_case_samples(path, solved):
    case, solution = solved(path)
    x = solution.sample(500, seed=0)
    assert x.shape == (500, case.problem.dimension)
    assert np.all(np.isfinite(x))
    again = solution.sample(500, seed=0)
    np.testing.assert_array_equal(x, again)


@pytest.mark.parametrize("path", CASE_FILES, ids=_case_id)
def test_value_and_control_are_finite(path, solved):
    """Log-space evaluation: finite value and control even where r/α is in the hundreds."""
    case, solution = solved(path)
    d = case.problem.dimension
    lo, hi = solution.plot_box()
    y = lo + (hi - lo) * np.linspace(0.0, 1.0, 7)[:, None] * np.ones(d)
    sde = case.problem.sde
    times = (0, sde.steps // 2, sde.steps - 1) if case.problem.is_discrete else (0.0, 0.5 * sde.T, sde.T)
    for t in times:
        assert np.all(np.isfinite(solution.value(t, y)))
        control = solution.control(t, y)
        assert control.shape == (7, d) and np.all(np.isfinite(control))


def test_bundled_cases_cover_every_feature():
    seen = {key: set() for key in REQUIRED_COVERAGE}
    for path in (path for path in CASE_FILES if not _is_latent(path)):
        case = hjsolve.load_case(path)
        seen["sde"].add(case.raw["sde"]["kind"])
        seen["dimension"].add(case.problem.dimension)
        seen["reward"].add(case.raw["reward"]["kind"])
        seen["divergence"].add(case.raw["finetune"]["divergence"])
    for key, required in REQUIRED_COVERAGE.items():
        assert required <= seen[key], f"bundled cases lack {key} {sorted(required - seen[key], key=str)}"


def test_large_reward_case_has_large_reward_over_alpha():
    """``large_reward_1d`` exists to exercise log-space stability: |r|/α in the hundreds on p_data."""
    case = hjsolve.load_case(CASES_DIR / "large_reward_1d.toml")
    x = case.problem.pretrained.means
    assert np.max(np.abs(case.problem.effective_reward(x))) >= 200.0


def test_python_reward_is_imported_from_the_cases_folder():
    case = hjsolve.load_case(CASES_DIR / "python_reward_1d.toml")
    reward = case.problem.reward
    assert reward.kind == "python"
    x = np.linspace(-4.0, 4.0, 41)[:, None]
    h = 1e-6
    numeric = (reward(x + h) - reward(x - h)) / (2 * h)
    np.testing.assert_allclose(reward.gradient(x)[:, 0], numeric, atol=1e-6)
    assert np.all(reward(x) <= reward.sup) and np.all(reward(x) >= reward.inf)


@pytest.mark.parametrize("name", ["bimodal_1d", "bump_1d_gamma", "large_reward_1d", "python_reward_1d"])
def test_one_dimensional_summary_matches_the_density(name, solved):
    """For the 1-D cases, the summary integrals agree with the density integrated on a grid."""
    case, solution = solved(CASES_DIR / f"{name}.toml")
    x = np.linspace(-8.0, 8.0, 8001)[:, None]
    dx = x[1, 0] - x[0, 0]
    p_ftune = np.exp(solution.terminal_log_density(x))
    p_pre = np.exp(solution.pretrained_log_density(x))
    r = case.problem.reward(x)
    summary = solution.summary
    assert np.sum(p_ftune) * dx == pytest.approx(1.0, abs=1e-6)
    assert np.sum(r * p_ftune) * dx == pytest.approx(summary["reward_finetuned"], abs=1e-6)
    assert np.sum(r * p_pre) * dx == pytest.approx(summary["reward_pretrained"], abs=1e-6)
    positive = p_ftune > 0
    kl = np.sum(p_ftune[positive] * (np.log(p_ftune[positive]) - np.log(p_pre[positive]))) * dx
    assert kl == pytest.approx(summary["kl_finetuned_pretrained"], abs=1e-6)
