"""Shared builders: cases from plain dicts (DESIGN §2 schema)."""
import copy
from pathlib import Path

import pytest

from hjsolve.case import case_from_dict

BIMODAL_1D = {
    "title": "bimodal 1-D",
    "sde": {"kind": "vp", "T": 1.0},
    "pretrained": {"kind": "gaussian_mixture", "weights": [0.5, 0.5], "means": [[-2.0], [2.0]],
                   "covs": [[[0.25]], [[0.25]]]},
    "reward": {"kind": "quadratic", "center": [2.0], "scale": 1.0},
    "finetune": {"alpha": 0.5, "divergence": "kl"},
    "solver": {"method": "exact"},
}


def make_case(base=None, **sections):
    """A Case from ``base`` (default the 1-D bimodal case) with whole sections replaced or
    dotted keys set: make_case(reward={...}, **{"finetune.alpha": 0.2})."""
    data = copy.deepcopy(base or BIMODAL_1D)
    for key, value in sections.items():
        if "." in key:
            section, name = key.split(".", 1)
            data.setdefault(section, {})[name] = value
        else:
            data[key] = copy.deepcopy(value)
    return case_from_dict(data)


@pytest.fixture
def bimodal_case():
    return make_case()


# Case files as text, for the command line and anything that reads files.
CASE_1D = """\
title = "Bimodal 1-D, quadratic reward"
[sde]
kind = "vp"
T = 1.0
[pretrained]
kind = "gaussian_mixture"
weights = [0.5, 0.5]
means = [[-2.0], [2.0]]
covs = [[[0.25]], [[0.25]]]
[reward]
kind = "quadratic"
center = [2.0]
scale = 1.0
[finetune]
alpha = 0.5
divergence = "kl"
[solver]
method = "exact"
"""

CASE_2D = """\
title = "Bimodal 2-D, quadratic reward"
[sde]
kind = "vp"
[pretrained]
kind = "gaussian_mixture"
weights = [0.4, 0.6]
means = [[-2.0, 0.0], [2.0, 1.0]]
stds = [0.5, 0.7]
[reward]
kind = "quadratic"
center = [2.0, 0.0]
[finetune]
alpha = 1.0
"""


def write_case(directory, text=CASE_1D, name="bimodal.toml"):
    """Write a case file into ``directory`` and return its path."""
    path = Path(directory) / name
    path.write_text(text)
    return path
