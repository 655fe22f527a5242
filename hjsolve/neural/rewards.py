"""Torch versions of the bundled rewards (DESIGN §2) and of r_eff (DESIGN §1, (4.6)).

`torch_effective_reward(problem)` returns a callable y (n, d) tensor -> r_eff(y) (n,), differentiable
in y, or raises `NotApplicableError` for a ``python`` reward (it has no torch version).
`torch_effective_reward_gradient(problem)` returns y -> ∇r_eff(y) (n, d) for every reward.
"""
import numpy as np
import torch

from ..errors import NotApplicableError


def _tensor(values, like):
    return torch.as_tensor(values, dtype=like.dtype, device=like.device)


def torch_reward(reward):
    """A callable y (n, d) -> r(y) (n,) in torch for the kinds quadratic, linear, bump, sigmoid."""
    kind = reward.kind
    if kind == "quadratic":
        return lambda y: -0.5 * reward.scale * ((y - _tensor(reward.center, y)) ** 2).sum(-1)
    if kind == "linear":
        return lambda y: y @ _tensor(reward.weight, y) + reward.offset
    if kind == "bump":
        return lambda y: reward.height * torch.exp(-0.5 * ((y - _tensor(reward.center, y)) ** 2).sum(-1) / reward.width**2)
    if kind == "sigmoid":
        return lambda y: reward.height * torch.sigmoid(y @ _tensor(reward.weight, y) + reward.offset)
    raise NotApplicableError(
        f"neural: reward.kind = '{kind}' has no torch version, so objective 'relative_entropy' cannot "
        "differentiate it; use objective = 'bridge_matching' (the default) or 'adjoint_matching' "
        "(they need only reward.gradient)")


def torch_effective(divergence, r):
    """r_eff from r (tensors): r/α (kl), -ln(r/α) (forward_kl), -(1/γ) ln(1 - γ r/α) (gamma)."""
    name, alpha = divergence.name, divergence.alpha
    if name == "kl":
        return r / alpha
    if name == "forward_kl":
        return -torch.log(r / alpha)
    if name == "gamma":
        return -torch.log1p(-divergence.gamma * r / alpha) / divergence.gamma
    raise NotApplicableError(f"neural: divergence '{name}' has no torch version")


def torch_effective_reward(problem):
    """y (n, d) tensor -> r_eff(y) (n,) tensor, differentiable."""
    reward = torch_reward(problem.reward)
    return lambda y: torch_effective(problem.divergence, reward(y))


def torch_effective_reward_gradient(problem):
    """y (n, d) tensor -> ∇r_eff(y) (n, d) tensor.

    By autograd of `torch_effective_reward` (differentiable again when y carries a graph, as in
    the relative-entropy objective), else from the numpy ``Problem.effective_reward_gradient``
    (a constant in the graph: enough for adjoint matching and evaluation, which detach y).
    """
    try:
        r_eff = torch_effective_reward(problem)
    except NotApplicableError:
        def numpy_gradient(y):
            grad = problem.effective_reward_gradient(y.detach().cpu().numpy().astype(np.float64))
            return torch.as_tensor(grad, dtype=y.dtype, device=y.device)
        return numpy_gradient

    def gradient(y):
        if y.requires_grad:
            return torch.autograd.grad(r_eff(y).sum(), y, create_graph=True)[0]
        with torch.enable_grad():
            leaf = y.detach().requires_grad_(True)
            return torch.autograd.grad(r_eff(leaf).sum(), leaf)[0]

    return gradient
