"""Shared drawing helpers: Agg figures without pyplot, atomic byte-stable PNGs."""
from pathlib import Path

from ..io import atomic_path

DPI = 110


def new_figure(width, height):
    """A Figure on an Agg canvas (no pyplot, so the caller's backend and state are untouched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path):
    """Write ``fig`` to ``path`` atomically as a PNG without volatile metadata."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return path


def style():
    """Matplotlib's default style, whatever the user's matplotlibrc says (byte-stable output)."""
    import matplotlib.style

    return matplotlib.style.context("default")
