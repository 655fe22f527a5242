"""Torch versions of the bundled rewards (DESIGN §2) and of r_eff (DESIGN §1, (4.6)).

`torch_effective_reward(problem)` returns a callable y (n, d) tensor -> r_eff(y) (n,), differentiable
in y, or raises `NotApplicableError` for a ``python`` reward (it has no torch version).
"""
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
        "differentiate it; use objective = 'adjoint_matching' (it needs only reward.gradient)")


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
