"""Example python reward for ``cases/python_reward_1d.toml``.

A reward is a callable taking an (n, d) array and returning (n,); its optional gradient
returns (n, d). Both must be vectorised over the rows.
"""
import numpy as np

#: (centre, height, width) of each Gaussian peak.
PEAKS = ((1.0, 1.0, 0.3), (-2.5, 0.5, 0.5))


def two_peaks(x):
    """r(x) = Σ_j height_j exp(-|x - centre_j|² / (2 width_j²)), x of shape (n, d)."""
    x = np.asarray(x, dtype=float)
    out = np.zeros(len(x))
    for centre, height, width in PEAKS:
        out += height * np.exp(-0.5 * np.sum((x - centre) ** 2, axis=1) / width**2)
    return out


def two_peaks_grad(x):
    """∇r(x), shape (n, d)."""
    x = np.asarray(x, dtype=float)
    out = np.zeros_like(x)
    for centre, height, width in PEAKS:
        bump = height * np.exp(-0.5 * np.sum((x - centre) ** 2, axis=1) / width**2)
        out += -(x - centre) / width**2 * bump[:, None]
    return out
