"""Case files (DESIGN §2): loading, overrides, one-line errors naming file and key, round trip."""
import copy
import json
import math
import sys

import numpy as np
import pytest

from hjsolve.case import case_from_dict, load_case, parse_override
from hjsolve.errors import CaseError

BIMODAL = {
    "title": "Bimodal 1-D, quadratic reward",
    "sde": {"kind": "vp", "T": 1.0},
    "pretrained": {"kind": "gaussian_mixture", "weights": [0.5, 0.5], "means": [[-2.0], [2.0]], "stds": [0.5, 0.5]},
    "reward": {"kind": "quadratic", "center": [2.0], "scale": 1.0},
    "finetune": {"alpha": 0.5, "divergence": "kl"},
    "solver": {"method": "exact"},
}

POINTS_1D = np.array([[-3.0], [-0.5], [0.0], [1.25], [4.0]])


def toml_text(data):
    """Serialise a case dict (scalars, lists, nested tables) as TOML text."""
    def emit(table, path, lines):
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if path:
            lines.append(f"[{path}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in scalars.items())
        for key, value in table.items():
            if isinstance(value, dict):
                emit(value, f"{path}.{key}" if path else key, lines)
        return lines

    return "\n".join(emit(data, "", [])) + "\n"


def write_case(tmp_path, data, name="case.toml"):
    path = tmp_path / name
    path.write_text(toml_text(data) if isinstance(data, dict) else data)
    return path


def bimodal(**sections):
    """A deep copy of BIMODAL with the given sections' keys updated."""
    data = copy.deepcopy(BIMODAL)
    for section, values in sections.items():
        data[section].update(values)
    return data


def two_dimensional(covs):
    return bimodal(pretrained={"means": [[-2.0, 0.0], [2.0, 0.0]], "covs": covs, "stds": None},
                   reward={"center": [2.0, 0.0]})


def drop_none(data):
    return {k: drop_none(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None}


def assert_case_error(excinfo, path, key, *fragments):
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message and path.name in message
    assert f": {key}: " in message
    for fragment in fragments:
        assert fragment in message, message


# --------------------------------------------------------------------------- valid cases


def test_bimodal_case_loads_with_the_right_types(tmp_path):
    path = write_case(tmp_path, BIMODAL)
    case = load_case(path)
    problem = case.problem
    assert case.title == "Bimodal 1-D, quadratic reward"
    assert problem.dimension == 1
    assert problem.alpha == 0.5 and isinstance(problem.alpha, float)
    assert problem.sde.kind == "vp"
    assert (problem.sde.T, problem.sde.beta_min, problem.sde.beta_max) == (1.0, 0.1, 20.0)
    assert problem.divergence.name == "kl"
    np.testing.assert_allclose(problem.pretrained.covs, [[[0.25]], [[0.25]]])
    np.testing.assert_allclose(problem.pretrained.means, [[-2.0], [2.0]])
    np.testing.assert_allclose(problem.reward(np.array([[2.0], [0.0]])), [0.0, -2.0])
    assert case.method == "exact"
    assert case.output_dir == "results/case"
    assert case.source == str(path)
    assert case.kl_weights is None
    json.dumps(case.raw)


def test_defaults_title_and_output_from_file_stem(tmp_path):
    data = bimodal()
    del data["title"], data["solver"]
    case = load_case(write_case(tmp_path, data, name="my_case.toml"))
    assert case.title == "my_case"
    assert case.output_dir == "results/my_case"
    assert case.method == "exact"
    assert case.options() == {}


def test_integers_are_accepted_where_floats_are_expected(tmp_path):
    case = load_case(write_case(tmp_path, bimodal(sde={"T": 2, "beta_max": 10}, finetune={"alpha": 1})))
    assert case.problem.sde.T == 2.0 and isinstance(case.problem.sde.T, float)
    assert case.problem.alpha == 1.0 and isinstance(case.raw["finetune"]["alpha"], float)


@pytest.mark.parametrize("overrides", [
    ["finetune.alpha=0.2"],
    ["finetune.alpha = 0.2"],
    {"finetune.alpha": 0.2},
    {"finetune.alpha": "0.2"},
])
def test_overrides_change_alpha(tmp_path, overrides):
    case = load_case(write_case(tmp_path, BIMODAL), overrides=overrides)
    assert case.problem.alpha == pytest.approx(0.2)
    assert case.raw["finetune"]["alpha"] == pytest.approx(0.2)


def test_overrides_switch_kinds_and_fill_new_keys(tmp_path):
    overrides = ["sde.kind=ve", "sde.sigma_max=5", "output.dir=out/x", 'title="t"']
    case = load_case(write_case(tmp_path, BIMODAL), overrides=overrides)
    assert case.problem.sde.kind == "ve"
    assert (case.problem.sde.sigma_min, case.problem.sde.sigma_max) == (0.01, 5.0)
    assert case.output_dir == "out/x" and case.title == "t"


def test_parse_override_types_values():
    assert parse_override("finetune.alpha=0.2") == ("finetune.alpha", 0.2)
    assert parse_override("sde.steps=10") == ("sde.steps", 10)
    assert parse_override("reward.center=[1, 2.5]") == ("reward.center", [1, 2.5])
    assert parse_override("sde.kind=ve") == ("sde.kind", "ve")
    assert parse_override('title="a = b"') == ("title", "a = b")
    assert parse_override("x=true") == ("x", True)


def test_parse_override_without_equals_is_an_error():
    with pytest.raises(CaseError) as excinfo:
        parse_override("finetune.alpha")
    assert "--set" in str(excinfo.value) and "\n" not in str(excinfo.value)


@pytest.mark.parametrize("key", ["finetune.alpah", "colour.red", "sde.T.x"])
def test_override_of_unknown_key_is_an_error_naming_it(tmp_path, key):
    path = write_case(tmp_path, BIMODAL)
    with pytest.raises(CaseError) as excinfo:
        load_case(path, overrides=[f"{key}=0.2"])
    assert_case_error(excinfo, path, key)


def test_python_reward_next_to_the_case_file_loads_and_evaluates(tmp_path, forget_module):
    module = forget_module("hj_case_reward_ok")
    (tmp_path / f"{module}.py").write_text(
        "import numpy as np\n"
        "def reward(x):\n    return np.sin(x[:, 0])\n"
        "def grad(x):\n    return np.cos(x)\n"
    )
    data = bimodal(reward={"kind": "python", "function": f"{module}:reward", "gradient": f"{module}:grad",
                           "upper_bound": 1.0, "center": None, "scale": None})
    case = load_case(write_case(tmp_path, drop_none(data)))
    reward = case.problem.reward
    np.testing.assert_allclose(reward(POINTS_1D), np.sin(POINTS_1D[:, 0]))
    np.testing.assert_allclose(reward.gradient(POINTS_1D), np.cos(POINTS_1D))
    assert reward.sup == 1.0
    assert case.raw["reward"] == {"kind": "python", "function": f"{module}:reward",
                                  "gradient": f"{module}:grad", "upper_bound": 1.0}


def test_ddpm_alpha_list_gives_per_step_kl_weights(tmp_path):
    data = bimodal(sde={"kind": "ddpm", "T": None, "steps": 3}, finetune={"alpha": [0.5, 1, 2.0]})
    case = load_case(write_case(tmp_path, drop_none(data)))
    np.testing.assert_allclose(case.kl_weights, [0.5, 1.0, 2.0])
    assert case.problem.alpha == 0.5
    scalar = load_case(write_case(tmp_path, drop_none(bimodal(sde={"kind": "ddpm", "T": None, "steps": 4}))))
    np.testing.assert_allclose(scalar.kl_weights, [0.5] * 4)


def test_solver_options_are_typed_by_the_solver_spec(tmp_path):
    data = bimodal(solver={"method": "grid", "grid": {"points": 201, "noise_width": 5, "domain": [[-4, 4]]}})
    case = load_case(write_case(tmp_path, data))
    assert case.options() == {"points": 201, "noise_width": 5.0, "domain": [[-4, 4]]}
    assert isinstance(case.options()["noise_width"], float)
    assert case.options("particle") == {}
    assert case.solver_options == {"grid": case.options()}


@pytest.mark.parametrize("options, key", [
    ({"pointz": 3}, "solver.grid.pointz"),
    ({"points": 2.5}, "solver.grid.points"),
    ({"points": True}, "solver.grid.points"),
    ({"noise_width": "wide"}, "solver.grid.noise_width"),
])
def test_solver_option_errors_name_the_option(tmp_path, options, key):
    path = write_case(tmp_path, bimodal(solver={"method": "grid", "grid": options}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, key)


# --------------------------------------------------------------------------- one test per error class


def test_unknown_top_level_key(tmp_path):
    path = write_case(tmp_path, {**BIMODAL, "colour": "red"})
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "colour", "unknown key")


def test_unknown_key_inside_a_section(tmp_path):
    path = write_case(tmp_path, bimodal(sde={"beta_mx": 5.0}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "sde.beta_mx", "unknown key", "beta_max")


def test_means_must_be_a_list_of_rows(tmp_path):
    path = write_case(tmp_path, bimodal(pretrained={"means": [-2.0, 2.0]}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "pretrained.means", "[[-2.0], [2.0]]")


def test_weights_and_means_length_mismatch(tmp_path):
    path = write_case(tmp_path, bimodal(pretrained={"means": [[-2.0], [0.0], [2.0]]}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "pretrained.means", "expected 2 rows to match pretrained.weights, got 3")


def test_reward_vector_must_have_the_dimension_of_the_means(tmp_path):
    path = write_case(tmp_path, bimodal(reward={"center": [2.0, 0.0]}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "reward.center", "expected length 1")


def test_covariance_not_positive_definite(tmp_path):
    path = write_case(tmp_path, drop_none(two_dimensional([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 1.0]]])))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "pretrained.covs", "matrix 2", "not positive definite")


def test_covariance_not_symmetric(tmp_path):
    path = write_case(tmp_path, drop_none(two_dimensional([[[1.0, 0.5], [0.4, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "pretrained.covs", "matrix 1", "not symmetric")


def test_covs_and_stds_together(tmp_path):
    path = write_case(tmp_path, bimodal(pretrained={"covs": [[[0.25]], [[0.25]]]}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "pretrained.covs", "exactly one")


@pytest.mark.parametrize("alpha", [0.0, -1.0])
def test_alpha_must_be_positive(tmp_path, alpha):
    path = write_case(tmp_path, bimodal(finetune={"alpha": alpha}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "finetune.alpha", "must be > 0", f"(got {alpha})")


def test_alpha_boolean_is_not_a_number(tmp_path):
    path = write_case(tmp_path, bimodal(finetune={"alpha": True}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "finetune.alpha", "expected a number", "boolean")


def test_alpha_must_be_finite(tmp_path):
    path = write_case(tmp_path, toml_text(BIMODAL).replace("alpha = 0.5", "alpha = inf"))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "finetune.alpha", "finite")


def test_forward_kl_with_a_quadratic_reward_fails_its_domain(tmp_path):
    path = write_case(tmp_path, bimodal(finetune={"divergence": "forward_kl"}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "finetune.divergence", "r > 0")


def test_gamma_with_a_too_high_bump_fails_its_domain(tmp_path):
    data = bimodal(reward={"kind": "bump", "height": 1.0, "width": 1.0, "scale": None},
                   finetune={"divergence": "gamma", "gamma": 0.5})
    path = write_case(tmp_path, drop_none(data))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "finetune.gamma", "alpha/gamma")


def test_gamma_divergence_needs_the_gamma_key(tmp_path):
    path = write_case(tmp_path, bimodal(finetune={"divergence": "gamma"}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "finetune.gamma", "required")


def test_total_variation_is_refused(tmp_path):
    path = write_case(tmp_path, bimodal(finetune={"divergence": "total_variation"}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "finetune.divergence", "(f')^{-1} is not defined")


def test_unknown_sde_kind(tmp_path):
    path = write_case(tmp_path, bimodal(sde={"kind": "vpsde"}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "sde.kind", "vp, ve, ou, ddpm")


def test_ddpm_takes_no_T(tmp_path):
    path = write_case(tmp_path, bimodal(sde={"kind": "ddpm", "steps": 10}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "sde.T", "unknown key", "ddpm")


def test_bad_toml_syntax(tmp_path):
    path = write_case(tmp_path, toml_text(BIMODAL).replace("alpha = 0.5", "alpha = = 0.5"))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "<file>", "invalid TOML")


def test_missing_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "<file>", "not found")


def test_python_reward_with_a_non_importable_module(tmp_path):
    data = bimodal(reward={"kind": "python", "function": "hj_no_such_module_xyz:reward", "center": None,
                           "scale": None})
    path = write_case(tmp_path, drop_none(data))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "reward.function", "cannot import", "hj_no_such_module_xyz")


def test_unknown_solver_method(tmp_path):
    path = write_case(tmp_path, bimodal(solver={"method": "magic"}))
    with pytest.raises(CaseError) as excinfo:
        load_case(path)
    assert_case_error(excinfo, path, "solver.method", "exact, grid, fipy, particle, pift, neural")


# --------------------------------------------------------------------------- round trip


ROUND_TRIP_CASES = {
    "vp_stds_quadratic": bimodal(),
    "ve_covs_linear": bimodal(sde={"kind": "ve", "sigma_max": 5.0},
                              pretrained={"covs": [[[0.3]], [[0.2]]], "stds": None},
                              reward={"kind": "linear", "weight": [1.5], "center": None, "scale": None}),
    "ou_bump_gamma": bimodal(sde={"kind": "ou", "theta": 0.5},
                             reward={"kind": "bump", "center": [1.0], "height": 0.4, "width": 2.0, "scale": None},
                             finetune={"divergence": "gamma", "gamma": 0.5}),
    "ddpm_sigmoid_list": bimodal(sde={"kind": "ddpm", "T": None, "steps": 2},
                                 reward={"kind": "sigmoid", "weight": [2.0], "offset": -1.0, "center": None,
                                         "scale": None},
                                 finetune={"alpha": [0.5, 0.25]}),
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIP_CASES))
def test_round_trip_through_raw_reproduces_the_problem(tmp_path, name):
    case = load_case(write_case(tmp_path, drop_none(ROUND_TRIP_CASES[name])))
    raw = json.loads(json.dumps(case.raw))
    again = case_from_dict(raw, case.source)
    assert again == case
    one, two = case.problem, again.problem
    assert type(one.sde) is type(two.sde) and one.sde.params() == two.sde.params() and one.sde.T == two.sde.T
    np.testing.assert_array_equal(one.pretrained.weights, two.pretrained.weights)
    np.testing.assert_array_equal(one.pretrained.means, two.pretrained.means)
    np.testing.assert_array_equal(one.pretrained.covs, two.pretrained.covs)
    np.testing.assert_array_equal(one.reward(POINTS_1D), two.reward(POINTS_1D))
    assert one.divergence.params() == two.divergence.params()
    assert (case.title, case.method, case.output_dir) == (again.title, again.method, again.output_dir)
    if one.is_discrete:
        np.testing.assert_array_equal(case.kl_weights, again.kl_weights)


def test_case_from_dict_does_not_modify_its_input():
    data = bimodal()
    snapshot = copy.deepcopy(data)
    case = case_from_dict(data)
    assert data == snapshot
    assert case.source == "<dict>" and math.isclose(case.problem.alpha, 0.5)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def forget_module():
    """Give a module name; it is dropped from sys.modules after the test."""
    names = []

    def register(name):
        names.append(name)
        return name

    yield register
    for name in names:
        sys.modules.pop(name, None)


