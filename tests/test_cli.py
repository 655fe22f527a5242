"""Command line (DESIGN §4): run, validate, figures, cases; one-line errors, exit codes, no partial output.

Each behaviour is checked in-process through `main` and, for the important ones, through
``python -m hjsolve`` in a subprocess.
"""
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import hjsolve
from hjsolve.cli import main
from hjsolve.errors import HJSolveError

from conftest import CASE_1D, CASE_2D, write_case

REPO = Path(hjsolve.__file__).resolve().parents[1]
FIGURES = ("value.png", "control.png", "terminal_law.png")
OUTPUTS = ("solution.npz", "summary.json", *FIGURES)

def run_module(*args, cwd):
    """``python -m hjsolve ARGS`` in a subprocess, importing this checkout."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "hjsolve", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(stderr, *fragments):
    """stderr is exactly one ``hjsolve...: error:`` line containing every fragment, no traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# --------------------------------------------------------------------------- run


def test_run_subprocess_writes_solution_summary_and_figures(tmp_path):
    case = write_case(tmp_path)
    out = tmp_path / "out"
    result = run_module("run", case, "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    expected = hjsolve.solve(hjsolve.load_case(case)).summary["log_normalizer"]
    assert summary["log_normalizer"] == pytest.approx(expected, rel=1e-12)
    assert "log_normalizer:" in result.stdout
    assert str(out) in result.stdout.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_run_in_process_set_overrides_alpha(tmp_path, capsys):
    case = write_case(tmp_path, CASE_2D)
    out = tmp_path / "results" / "two_d"
    assert main(["run", str(case), "--set", "finetune.alpha=0.2", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["alpha"] == 0.2
    assert summary["dimension"] == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    assert [p.name for p in out.parent.iterdir()] == ["two_d"]  # no staging folder left behind
    printed = capsys.readouterr().out
    assert "alpha:" in printed and "0.2" in printed


def test_run_loaded_solution_matches(tmp_path, capsys):
    """What `run` saves loads back with `hjsolve.load` and gives the same value function."""
    case = write_case(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(case), "--out", str(out)]) == 0
    loaded = hjsolve.load(out)
    fresh = hjsolve.solve(hjsolve.load_case(case))
    y = [[-1.0], [0.5], [2.0]]
    assert loaded.value(0.3, y) == pytest.approx(fresh.value(0.3, y), rel=1e-12)


# --------------------------------------------------------------------------- bad input

MISSING = "missing"
BAD_INPUTS = {  # id: (edit of CASE_1D: (old, new), () or MISSING; extra arguments; dotted key in the message)
    "unknown_key": (("scale = 1.0", "scale = 1.0\nwidth = 2.0"), [], "reward.width"),
    "alpha_not_positive": (("alpha = 0.5", "alpha = 0.0"), [], "finetune.alpha"),
    "forward_kl_domain": (('divergence = "kl"', 'divergence = "forward_kl"'), [], "finetune.divergence"),
    "total_variation": (('divergence = "kl"', 'divergence = "total_variation"'), [], "finetune.divergence"),
    "missing_file": (MISSING, [], "<file>"),
    "set_without_equals": ((), ["--set", "finetune.alpha"], "--set"),
    "unknown_method": ((), ["--method", "newton"], "--method"),
    "solver_option_value": (('method = "exact"', 'method = "particle"\n[solver.particle]\nn_steps = 0'), [],
                            "solver.particle.n_steps"),
    "unknown_solver_option": (('method = "exact"', 'method = "exact"\n[solver.exact]\nnodes = 3'), [],
                              "solver.exact.nodes"),
}


def bad_case(tmp_path, edit):
    """The case file for a BAD_INPUTS entry (a path that does not exist for MISSING)."""
    if edit == MISSING:
        return tmp_path / "missing.toml"
    text = CASE_1D
    if edit:
        old, new = edit
        assert old in text
        text = text.replace(old, new, 1)
    return write_case(tmp_path, text, name="bad_case.toml")


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2(name, tmp_path, capsys):
    edit, extra, key = BAD_INPUTS[name]
    case = bad_case(tmp_path, edit)
    out = tmp_path / "out"
    assert main(["run", str(case), "--out", str(out), *extra]) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err, case.name, key)
    assert captured.err.startswith("hjsolve: error: ")
    assert not out.exists()


@pytest.mark.parametrize("name", ["alpha_not_positive", "missing_file", "set_without_equals"])
def test_bad_input_subprocess(name, tmp_path):
    edit, extra, key = BAD_INPUTS[name]
    case = bad_case(tmp_path, edit)
    out = tmp_path / "out"
    result = run_module("run", case, "--out", out, *extra, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, case.name, key)
    assert not (out / "solution.npz").exists() and not (out / "summary.json").exists()


def test_usage_error_is_one_line_exit_2(capsys):
    assert main(["run"]) == 2
    assert_one_line_error(capsys.readouterr().err, "CASE")
    assert main(["frobnicate"]) == 2
    assert_one_line_error(capsys.readouterr().err, "frobnicate")


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert hjsolve.__version__ in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    assert "--set" in capsys.readouterr().out


def test_failure_while_writing_leaves_output_untouched(tmp_path, monkeypatch, capsys):
    """A failure after solving (here in the figures) moves nothing into --out."""
    import hjsolve.plots

    def broken(solution, directory):
        raise HJSolveError("figures: cannot draw")

    monkeypatch.setattr(hjsolve.plots, "write_run_figures", broken)
    case = write_case(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    assert main(["run", str(case), "--out", str(out)]) == 2
    assert_one_line_error(capsys.readouterr().err, "cannot draw")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bimodal.toml", "out"]


def test_unwritable_output_is_one_line_error(tmp_path, capsys):
    case = write_case(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", str(case), "--out", str(blocker)]) == 2
    assert_one_line_error(capsys.readouterr().err, str(blocker))
    assert blocker.read_text() == "not a folder"


def test_keyboard_interrupt_exits_130(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hjsolve.cli.solve", interrupted)
    assert main(["run", str(write_case(tmp_path)), "--out", str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err.strip() == "hjsolve: interrupted"


# --------------------------------------------------------------------------- validate, figures, cases


def test_validate_prints_table(tmp_path, capsys):
    case = str(write_case(tmp_path))
    assert main(["validate", case, "--set", "finetune.alpha=1.0", "--methods", "exact, pift"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["exact", "pift"]
    assert "not applicable" in lines[3]


def test_validate_rejects_unknown_methods(tmp_path, capsys):
    assert main(["validate", str(write_case(tmp_path)), "--methods", "exact,newton"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "newton" in err and "--methods" in err


def test_figures_calls_regenerate(tmp_path, monkeypatch, capsys):
    calls = []

    def regenerate(out_dir="figures"):
        calls.append(out_dir)
        return [Path(out_dir) / "a.png", Path(out_dir) / "b.png"]

    monkeypatch.setitem(sys.modules, "hjsolve.figures", types.SimpleNamespace(regenerate=regenerate))
    assert main(["figures", "--out", str(tmp_path)]) == 0
    assert calls == [str(tmp_path)]
    assert capsys.readouterr().out.split() == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]


def test_cases_lists_bundled_cases(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["cases"]) == 0
    listed = capsys.readouterr().out
    bundled = sorted((REPO / "cases").glob("*.toml"))
    if not bundled:
        pytest.skip("no bundled case files")
    for path in bundled:
        assert path.name in listed


def test_cases_lists_local_folder_with_titles(tmp_path, monkeypatch, capsys):
    local = tmp_path / "cases"
    local.mkdir()
    write_case(local, name="mine.toml")
    write_case(local, "title = [unclosed", name="broken.toml")
    monkeypatch.chdir(tmp_path)
    assert main(["cases"]) == 0
    lines = capsys.readouterr().out.splitlines()
    mine = [line for line in lines if line.startswith(os.path.join("cases", "mine.toml"))]
    broken = [line for line in lines if line.startswith(os.path.join("cases", "broken.toml"))]
    assert len(mine) == 1 and mine[0].endswith("Bimodal 1-D, quadratic reward")
    assert len(broken) == 1 and "(unreadable: " in broken[0]
