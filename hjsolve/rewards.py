"""Reward functions r: R^d -> R with gradients (DESIGN §2).

Each reward maps x of shape (n, d) to (n,) and its gradient to (n, d), and knows its
supremum and infimum over R^d (used for domain checks and rejection sampling).
"""
import importlib
import sys
from pathlib import Path

import numpy as np
from scipy.special import expit

from .errors import HJSolveError


class Reward:
    kind = "reward"
    sup = np.inf
    inf = -np.inf
    #: True when r(x) > 0 for every x in R^d.
    strictly_positive = False

    def __call__(self, x):
        raise NotImplementedError

    def gradient(self, x):
        raise NotImplementedError

    def span(self):
        """(m, d) directions that r depends on besides |x|², or None if unknown."""
        return None

    def params(self):
        raise NotImplementedError


class Quadratic(Reward):
    """r(x) = -0.5 * scale * |x - center|², scale > 0."""

    kind = "quadratic"

    def __init__(self, center, scale=1.0):
        self.center = np.asarray(center, dtype=float)
        self.scale = float(scale)
        self.sup = 0.0

    def __call__(self, x):
        return -0.5 * self.scale * np.sum((x - self.center) ** 2, axis=-1)

    def gradient(self, x):
        return -self.scale * (x - self.center)

    def span(self):
        return self.center[None, :]

    def params(self):
        return {"center": self.center.tolist(), "scale": self.scale}


class Linear(Reward):
    """r(x) = weight · x + offset."""

    kind = "linear"

    def __init__(self, weight, offset=0.0):
        self.weight = np.asarray(weight, dtype=float)
        self.offset = float(offset)
        if not np.any(self.weight):
            self.sup = self.inf = self.offset
            self.strictly_positive = self.offset > 0

    def __call__(self, x):
        return x @ self.weight + self.offset

    def gradient(self, x):
        return np.broadcast_to(self.weight, x.shape).copy()

    def span(self):
        return self.weight[None, :]

    def params(self):
        return {"weight": self.weight.tolist(), "offset": self.offset}


class Bump(Reward):
    """r(x) = height * exp(-|x - center|² / (2 width²))."""

    kind = "bump"

    def __init__(self, center, height=1.0, width=1.0):
        self.center = np.asarray(center, dtype=float)
        self.height = float(height)
        self.width = float(width)
        self.sup = max(self.height, 0.0)
        self.inf = min(self.height, 0.0)
        self.strictly_positive = self.height > 0

    def __call__(self, x):
        return self.height * np.exp(-0.5 * np.sum((x - self.center) ** 2, axis=-1) / self.width**2)

    def gradient(self, x):
        return -(x - self.center) / self.width**2 * self(x)[:, None]

    def span(self):
        return self.center[None, :]

    def params(self):
        return {"center": self.center.tolist(), "height": self.height, "width": self.width}


class Sigmoid(Reward):
    """r(x) = height / (1 + exp(-(weight · x + offset)))."""

    kind = "sigmoid"

    def __init__(self, weight, offset=0.0, height=1.0):
        self.weight = np.asarray(weight, dtype=float)
        self.offset = float(offset)
        self.height = float(height)
        self.sup = max(self.height, 0.0)
        self.inf = min(self.height, 0.0)
        self.strictly_positive = self.height > 0

    def __call__(self, x):
        return self.height * expit(x @ self.weight + self.offset)

    def gradient(self, x):
        p = expit(x @ self.weight + self.offset)
        return (self.height * p * (1.0 - p))[:, None] * self.weight

    def span(self):
        return self.weight[None, :]

    def params(self):
        return {"weight": self.weight.tolist(), "offset": self.offset, "height": self.height}


def import_callable(spec, search_dir=None):
    """Import ``"module:callable"``, looking first in ``search_dir`` (the case file's folder)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected 'module:callable', got {spec!r}")
    added = False
    if search_dir is not None and str(search_dir) not in sys.path:
        sys.path.insert(0, str(search_dir))
        added = True
    try:
        module = importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(str(search_dir))
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None


class PythonReward(Reward):
    """A user reward ``function = "module:callable"`` taking (n, d) and returning (n,).

    ``gradient`` (optional) returns (n, d); without it, central differences are used.
    ``upper_bound`` / ``lower_bound`` (optional) declare sup r and inf r over R^d.
    """

    kind = "python"

    def __init__(self, function, gradient=None, upper_bound=None, lower_bound=None, search_dir=None):
        self.function_spec = function
        self.gradient_spec = gradient
        self._search_dir = None if search_dir is None else Path(search_dir)
        self._function = import_callable(function, self._search_dir)
        self._gradient = import_callable(gradient, self._search_dir) if gradient else None
        self.upper_bound = upper_bound
        self.lower_bound = lower_bound
        self.sup = np.inf if upper_bound is None else float(upper_bound)
        self.inf = -np.inf if lower_bound is None else float(lower_bound)
        self.strictly_positive = lower_bound is not None and float(lower_bound) > 0

    def __call__(self, x):
        values = np.asarray(self._function(np.asarray(x, dtype=float)), dtype=float).reshape(-1)
        if values.shape[0] != len(x):
            raise HJSolveError(f"reward {self.function_spec} returned {values.shape[0]} values for {len(x)} points")
        return values

    def gradient(self, x):
        x = np.asarray(x, dtype=float)
        if self._gradient is not None:
            return np.asarray(self._gradient(x), dtype=float).reshape(x.shape)
        grad = np.empty_like(x)
        for i in range(x.shape[1]):
            step = 1e-5 * (1.0 + np.abs(x[:, i]))
            plus, minus = x.copy(), x.copy()
            plus[:, i] += step
            minus[:, i] -= step
            grad[:, i] = (self(plus) - self(minus)) / (2.0 * step)
        return grad

    def params(self):
        out = {"function": self.function_spec}
        for key in ("gradient_spec", "upper_bound", "lower_bound"):
            value = getattr(self, key)
            if value is not None:
                out[key.replace("_spec", "")] = value
        return out


REWARD_KINDS = {cls.kind: cls for cls in (Quadratic, Linear, Bump, Sigmoid, PythonReward)}
