"""The control network: g_θ(t, y) ≈ ∇_y log h(t, y), and u_θ(t, y) = ς(t)² g_θ(t, y) (Prop. 3.5).

Learning ∇log h rather than u keeps the output O(1) while ς² runs over two decades (VP: 20 → 0.1).
Inputs are the time embedding [t/T, sin(kπt/T), cos(kπt/T)]_{k=1..F} and y / c(t), with
c(t) = sqrt(a(s)² E|X_0|²/d + var(s)) the typical size of Q_t (s = T - t), so one network
serves VP, VE and OU schedules.
"""
import math

import torch
from torch import nn

from ..errors import HJSolveError
from ..rewards import import_callable


class TimeEmbedding(nn.Module):
    """t (n,) in [0, T] -> (n, 1 + 2F) features [t/T, sin(kπt/T), cos(kπt/T)]."""

    def __init__(self, T, frequencies):
        super().__init__()
        self.T = float(T)
        self.register_buffer("k", math.pi * torch.arange(1, frequencies + 1, dtype=torch.get_default_dtype()))

    @property
    def size(self):
        return 1 + 2 * len(self.k)

    def forward(self, t):
        x = (t / self.T)[:, None]
        return torch.cat([x, torch.sin(x * self.k), torch.cos(x * self.k)], dim=1)


class ControlNet(nn.Module):
    """MLP g_θ(t, y): [embedding(t), y / c(t)] -> (n, d); ``body`` may be a user module.

    forward(t (n,), y (n, d), scale (n,)) -> (n, d).
    """

    def __init__(self, dimension, T, hidden=64, layers=3, frequencies=6, body=None):
        super().__init__()
        self.embedding = TimeEmbedding(T, frequencies)
        width = self.embedding.size + dimension
        if body is None:
            mods, prev = [], width
            for _ in range(layers):
                mods += [nn.Linear(prev, hidden), nn.SiLU()]
                prev = hidden
            mods.append(nn.Linear(prev, dimension))
            body = nn.Sequential(*mods)
        self.body = body

    def forward(self, t, y, scale):
        return self.body(torch.cat([self.embedding(t), y / scale[:, None]], dim=1))


def build_network(options, dimension, T):
    """The `ControlNet` of the options: an MLP, or ``network = "module:factory"`` giving the body.

    A user factory is called as ``factory(in_features, out_features)`` and must return an
    ``nn.Module`` mapping (n, in_features) to (n, out_features).
    """
    body = None
    spec = options.get("network", "mlp")
    if spec != "mlp":
        try:
            factory = import_callable(spec)
        except (ImportError, ValueError) as exc:
            raise HJSolveError(f"solver.neural.network: cannot import {spec!r} ({exc})") from None
        body = factory(1 + 2 * options["frequencies"] + dimension, dimension)
        if not isinstance(body, nn.Module):
            raise HJSolveError(f"solver.neural.network: {spec} did not return a torch.nn.Module")
    return ControlNet(dimension, T, options["hidden"], options["layers"], options["frequencies"], body)
