"""Shared checks of tensor-grid solutions against the exact solver."""
import numpy as np

#: Query points: grid nodes (shifted by 0.37 of a cell, so interpolation is tested) where Q*_t
#: carries mass above this fraction of its largest node mass.
MASS_FRACTION = 1e-3


def grid_errors(grid, exact, levels=5, max_points=1500, seed=0):
    """(max |Δ log h|, relative L2 error of u* weighted by the grid's Q*_t) over saved levels."""
    tg, dom = grid.time_grid, grid.domain
    rng = np.random.default_rng(seed)
    worst, num, den = 0.0, 0.0, 0.0
    for level in np.unique(np.linspace(0, tg.levels - 1, levels).astype(int)):
        t = tg.level_times[level]
        w = grid.controlled_masses(level)
        keep = w > MASS_FRACTION * w.max()
        y, w = dom.to_y(t, dom.nodes()[keep] + 0.37 * dom.dz), w[keep]
        if len(y) > max_points:  # a weighted subsample keeps the test fast in 2-D and 3-D
            pick = rng.choice(len(y), size=max_points, replace=False, p=w / w.sum())
            y, w = y[pick], np.ones(max_points)
        worst = max(worst, float(np.max(np.abs(exact.log_h(t, y) - grid.log_h(t, y)))))
        ue, ug = exact.control(t, y), grid.control(t, y)
        num += w @ np.sum((ue - ug) ** 2, axis=1)
        den += w @ np.sum(ue**2, axis=1)
    return worst, float(np.sqrt(num / den))
