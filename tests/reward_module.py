"""A user reward module for tests of `reward.kind = "python"`."""
import numpy as np


def squared_norm(x):
    return np.sum(x**2, axis=1)
