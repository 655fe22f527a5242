"""Gaussian-mixture cases where the exact solver is the truth, in d = 1, 2, 10 and 50 (isotropic
components and rewards along the span of the means in high d)."""
import numpy as np

from conftest import make_case

#: Time-discretisation allowance of the particle tests (see `allowance`).
ALLOWANCE = 3.0


def allowance(d, n_steps):
    """ALLOWANCE (1 + d/10) / n_steps: the integrators are first order in time."""
    return ALLOWANCE * (1.0 + d / 10.0) / n_steps


def _iso_case(d, reward, alpha=1.0):
    e1 = np.eye(d)[0]
    return make_case(
        title=f"iso {d}-D",
        pretrained={"kind": "gaussian_mixture", "weights": [0.4, 0.6], "means": [(-1.5 * e1).tolist(), (1.5 * e1).tolist()],
                    "stds": [0.6, 0.6]},
        reward=reward(e1), finetune={"alpha": alpha, "divergence": "kl"},
    )


def cases():
    """{name: Case} of the comparisons with the exact solution."""
    return {
        "1d": make_case(),
        "2d": make_case(
            pretrained={"kind": "gaussian_mixture", "weights": [0.3, 0.7], "means": [[-1.0, 0.5], [1.5, -0.5]],
                        "covs": [[[0.5, 0.2], [0.2, 0.3]], [[0.2, -0.05], [-0.05, 0.4]]]},
            reward={"kind": "quadratic", "center": [1.0, 0.5], "scale": 1.0}, finetune={"alpha": 1.0, "divergence": "kl"}),
        "10d": _iso_case(10, lambda e1: {"kind": "linear", "weight": (0.8 * e1).tolist()}),
        "50d": _iso_case(50, lambda e1: {"kind": "quadratic", "center": (1.0 * e1).tolist(), "scale": 0.5}),
    }
