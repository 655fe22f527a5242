"""The figures in ``figures/``, rebuilt by `regenerate` (and ``hjsolve figures``).

Each module of this package that defines ``FIGURES`` ({file name: plot(path) -> path})
contributes its figures; `core` holds those of paper 000 (see its docstring).
"""
import importlib
import pkgutil
from pathlib import Path

from ..progress import progress


def all_figures():
    """{file name: plot function} over every figure module of the package, in module order."""
    figures = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: (m.name != "core", m.name)):
        module = importlib.import_module(f"{__name__}.{info.name}")
        figures.update(getattr(module, "FIGURES", {}))
    return figures


def regenerate(out_dir="figures"):
    """Rebuild every figure into ``out_dir``; returns the written paths."""
    out_dir = Path(out_dir)
    figures = all_figures()
    return [figures[name](out_dir / name) for name in progress(list(figures), desc="figures")]
