"""Solution persistence: save then load gives the same numbers; writes are atomic."""
import json

import numpy as np
import pytest

import hjsolve

from conftest import make_case


@pytest.mark.parametrize("case_kwargs", [
    {},
    {"reward": {"kind": "bump", "center": [1.0], "height": 1.0, "width": 0.7},
     "finetune": {"alpha": 1.0, "divergence": "gamma", "gamma": 0.5}},
])
def test_save_load_round_trip(tmp_path, case_kwargs):
    sol = hjsolve.solve(make_case(**case_kwargs))
    sol.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["solution.npz", "summary.json"]
    back = hjsolve.load(tmp_path)
    assert back.method == sol.method
    assert back.summary == json.loads(json.dumps(sol.summary))
    y = np.linspace(-3, 3, 13)[:, None]
    for t in (0.0, 0.4, 1.0):
        np.testing.assert_array_equal(back.value(t, y), sol.value(t, y))
        np.testing.assert_array_equal(back.control(t, y), sol.control(t, y))
    np.testing.assert_array_equal(back.terminal_log_density(y), sol.terminal_log_density(y))
    np.testing.assert_array_equal(back.sample(100, seed=2), sol.sample(100, seed=2))
    table = np.load(tmp_path / "solution.npz")
    np.testing.assert_allclose(table["table_value"][-1], sol.value(1.0, table["table_x"][:, None]))


def test_summary_has_every_contract_key_and_is_json(tmp_path):
    sol = hjsolve.solve(make_case())
    for key in hjsolve.solution.SUMMARY_KEYS:
        assert key in sol.summary
    assert sol.summary["wall_time_s"] > 0
    assert not any(isinstance(v, float) and np.isnan(v) for v in sol.summary.values())
    assert json.loads(json.dumps(sol.summary)) == sol.summary  # an unbounded bound is written as Infinity


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    sol = hjsolve.solve(make_case())

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(RuntimeError):
        sol.save(tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_load_of_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(hjsolve.HJSolveError, match="cannot read"):
        hjsolve.load(tmp_path / "nowhere")
