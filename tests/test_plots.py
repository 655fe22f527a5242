"""Run figures (`hjsolve.plots`): one PNG per figure, written atomically, in 1-D and 2-D."""
import pytest

import hjsolve
from hjsolve.plots import FIGURES, write_run_figures
from conftest import CASE_1D, CASE_2D, write_case

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("text", [CASE_1D, CASE_2D], ids=["1d", "2d"])
def test_write_run_figures_writes_pngs_only(text, tmp_path):
    solution = hjsolve.solve(hjsolve.load_case(write_case(tmp_path, text)))
    out = tmp_path / "figures"
    paths = write_run_figures(solution, out)
    assert sorted(p.name for p in paths) == sorted(FIGURES)
    assert sorted(p.name for p in out.iterdir()) == sorted(FIGURES)  # no temporary files left
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000, path


def test_failed_figure_leaves_no_file(tmp_path, monkeypatch):
    """A figure that fails while drawing leaves neither its PNG nor a temporary file."""
    solution = hjsolve.solve(hjsolve.load_case(write_case(tmp_path)))

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(solution, "sample", broken)
    out = tmp_path / "figures"
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_run_figures(solution, out)
    assert sorted(p.name for p in out.iterdir()) == ["control.png", "value.png"]
