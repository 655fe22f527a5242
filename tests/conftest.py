"""Shared builders: cases from plain dicts (DESIGN §2 schema)."""
import copy

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
