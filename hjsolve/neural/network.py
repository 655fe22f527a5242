"""The control network: g_θ(t, y) ≈ ∇_y log h(t, y), and u_θ(t, y) = ς(t)² g_θ(t, y) (Prop. 3.5).

Learning ∇log h rather than u keeps the output O(1) while ς² runs over two decades (VP: 20 → 0.1).
Inputs are the time embedding [t/T, sin(kπt/T), cos(kπt/T)]_{k=1..F} and y / c(t), with
c(t) = sqrt(a(s)² E|X_0|²/d + var(s)) the typical size of Q_t (s = T - t), so one network
serves VP, VE and OU schedules.

With a reward gradient (``reward_skip``), g_θ(t, y) = body(t, y) + φ_θ(t) ∇r_eff(y), φ_θ affine in
the time embedding and initialised to t/T: at t = T, ∇log h = ∇r_eff exactly (h(T) = exp r_eff),
so the body only learns what the pretrained flow adds to the reward's own gradient.
With ``reward_transport`` the reward term is φ_θ(t) ∇_y r_eff(x̂(t, y)) instead, at Tweedie's
posterior mean x̂ (`TorchSampler.transported_gradient`): the first-order expansion of log h about
x̂, equal to ∇r_eff at t = T and, near t = T, as sharp across thin modes as ∇log h itself.
With a pretrained score (``score_feature``), c(t)·s(T - t, y) is a further input: the component
responsibilities of a mixture switch sharply between modes, and ∇log h inherits that switch.
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
    """MLP g_θ(t, y): [embedding(t), y / c(t), c(t) s(T - t, y)] -> (n, d); ``body`` may be a user
    module.

    forward(t (n,), y (n, d), scale c(t) (n,)) -> (n, d). ``reward_gradient``: y (n, d) -> ∇r_eff(y)
    (n, d), or None for no reward term; ``score``: (t (n,), y (n, d)) -> s(T - t, y) (n, d), an
    input when ``score_input``; ``transport``: (t, y, score, reward_gradient) -> ∇_y r_eff(x̂(t, y))
    (n, d) for the reward term, or None for ∇r_eff(y) (module docstring).
    """

    def __init__(self, dimension, T, hidden=64, layers=3, frequencies=6, body=None, reward_gradient=None,
                 score=None, score_input=True, transport=None):
        super().__init__()
        self.embedding = TimeEmbedding(T, frequencies)
        self.score = score
        self.score_input = score is not None and score_input
        self.transport = transport if reward_gradient is not None else None
        width = self.embedding.size + dimension * (2 if self.score_input else 1)
        if body is None:
            mods, prev = [], width
            for _ in range(layers):
                mods += [nn.Linear(prev, hidden), nn.SiLU()]
                prev = hidden
            mods.append(nn.Linear(prev, dimension))
            body = nn.Sequential(*mods)
        self.body = body
        self.reward_gradient = reward_gradient
        if reward_gradient is not None:
            self.reward_weight = nn.Linear(self.embedding.size, 1)
            with torch.no_grad():  # φ(t) = t/T: the first embedding feature
                self.reward_weight.weight.zero_()
                self.reward_weight.weight[0, 0] = 1.0
                self.reward_weight.bias.zero_()

    def forward(self, t, y, scale, score=None):
        """(n, d) g_θ(t, y) for times t (n,), points y (n, d), input scales (n,); ``score``: the
        pretrained score s(T - t, y) (n, d) if the caller has it (else computed when needed)."""
        features = self.embedding(t)
        if score is None and (self.score_input or self.transport is not None):
            score = self.score(t, y)
        inputs = [features, y / scale[:, None]]
        if self.score_input:
            inputs.append(score * scale[:, None])
        out = self.body(torch.cat(inputs, dim=1))
        if self.reward_gradient is not None:
            term = self.reward_gradient(y) if self.transport is None else self.transport(t, y, score, self.reward_gradient)
            out = out + self.reward_weight(features) * term
        return out


def build_network(options, dimension, T, reward_gradient=None, score=None, transport=None):
    """The `ControlNet` of the options: an MLP, or ``network = "module:factory"`` giving the body;
    with the reward term when ``options["reward_skip"]`` (``reward_gradient``: y -> ∇r_eff(y)),
    transported to x̂ by ``transport`` when ``options["reward_transport"]`` and the objective is
    bridge matching (it slows the early training of the other two).

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
        inputs = 1 + 2 * options["frequencies"] + dimension * (2 if options["score_feature"] else 1)
        body = factory(inputs, dimension)
        if not isinstance(body, nn.Module):
            raise HJSolveError(f"solver.neural.network: {spec} did not return a torch.nn.Module")
    transported = options["reward_transport"] and options["objective"] == "bridge_matching"
    return ControlNet(dimension, T, options["hidden"], options["layers"], options["frequencies"], body,
                      reward_gradient if options["reward_skip"] else None, score, options["score_feature"],
                      transport if transported else None)
