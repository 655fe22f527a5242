"""The two training objectives of ``[solver.neural] objective``, per unit α (DESIGN §1).

``relative_entropy`` (paper 000, (3.12)–(3.14)): maximise over the control
    J(u) = E[r_eff(Y_T) - ½∫_0^T |u/ς|² dt],  Y_0 ~ p_noise,
by backpropagating through the Euler–Maruyama solver (`paths.simulate`, memory bounded by
`torch.utils.checkpoint` segments). The initial law is not a network parameter here: by
(3.13) the problem separates into (3.14) for u and (3.15) for ν, and ν* ∝ h(0,·) p_noise
is obtained afterwards from the trained control (`estimators`), so the KL(ν‖p_noise) term of
(3.13) is the one (3.15) maximises, not part of this loss.

``adjoint_matching`` (Domingo-Enrich, Drozdzal, Karrer, Chen 2024): simulate paths with the
current control (no gradient), solve the lean adjoint backward along them,
    ã_N = ∇r_eff(Y_T),   ã_j = ã_{j+1} + Δ_j (∇_y b̄(t_j, Y_j))ᵀ ã_{j+1},
(the discrete form of dã/dt = -(∇b̄)ᵀã; the signs are those of maximising r_eff), and regress
    min_θ Σ_j Δ_j w_j E|g_θ(t_j, Y_j) - ã_j|²,   w_j = ς_j² (``weighting = "sigma2"``) or 1.
Why the target is right: under the pretrained flow ã_t = J_{t→T}ᵀ ∇r_eff(Y_T) with J the
Jacobian of Y_T in Y_t, and ∇h(t,y) = E[exp(r_eff(Y_T)) J_{t→T}ᵀ∇r_eff(Y_T) | Y_t = y]; so
E_{Q*}[ã_t | Y_t = y] = ∇log h(t, y) = u*/ς². That conditional expectation concerns the future
of a Markov process only, so it holds for *any* initial law. Adjoint matching needs a
"memoryless" noise schedule when the initial law is held at p_noise: there the optimal
terminal law is p_ftune only if Y_0 and Y_T are independent (h(0,·) constant, ν* = p_noise);
otherwise the initial value function biases the terminal law. Here the initial law is
optimised separately (ν* ∝ h(0,·) p_noise, (3.16)), which removes that bias, so no schedule
change is needed: any VP/VE/OU schedule of the case works as it is
(tests/test_neural.py checks this on an OU schedule with a strongly non-memoryless start).
∇r_eff comes from the numpy `Problem.effective_reward_gradient`, so ``python`` rewards work.
"""
import numpy as np
import torch

from .paths import simulate


def relative_entropy_objective(r_eff, kl):
    """(loss, stats) of the relative-entropy objective per unit α, shared by every model.

    r_eff (n,): the effective reward of each path's end point (r/α for kl); kl (n,): each path's
    control cost, ½∫|u/ς|² dt (3.12) in continuous time, Σ_t KL_t (paper 002, Lemma 2.5) for a
    discrete chain. loss = -mean[r_eff - kl]; stats: ``kl`` = E kl, ``reward_eff`` = E r_eff.
    """
    loss = -(r_eff - kl).mean()
    return loss, {"kl": float(kl.detach().mean()), "reward_eff": float(r_eff.detach().mean())}


def relative_entropy_loss(coeffs, net, reward_eff, y0, noise, segments):
    """(loss, stats): loss = -mean[r_eff(Y_T) - cost] for a batch; stats hold Y_T, E r_eff and E cost."""
    out = simulate(coeffs, net, y0, noise, segments=segments)
    loss, stats = relative_entropy_objective(reward_eff(out["y"]), out["cost"])
    return loss, {"y": out["y"].detach(), **stats}


def drift_jacobians(coeffs, path):
    """(N, n, d, d) ∇_y b̄(t_j, Y_j) along ``path`` (N, n, d), by d backward passes."""
    N, n, d = path.shape
    y = path.reshape(N * n, d).detach().requires_grad_(True)
    j = torch.arange(N).repeat_interleave(n)
    drift = coeffs.drift(j, y)
    rows = [torch.autograd.grad(drift[:, i].sum(), y, retain_graph=i < d - 1)[0] for i in range(d)]
    return torch.stack(rows, dim=1).reshape(N, n, d, d)  # [.., i, k] = ∂b̄_i/∂y_k


def lean_adjoint(coeffs, path, terminal_grad):
    """(N, n, d) ã_j, j = 0..N-1, from ã_N = ``terminal_grad`` (n, d) (module docstring)."""
    jac = drift_jacobians(coeffs, path)
    dts = np.diff(np.append(coeffs.times, coeffs.T_end))
    a = terminal_grad
    out = [None] * len(path)
    for j in range(len(path) - 1, -1, -1):
        a = a + dts[j] * torch.einsum("nik,ni->nk", jac[j], a)
        out[j] = a
    return torch.stack(out)


def adjoint_matching_loss(coeffs, net, problem, y0, noise, weighting):
    """(loss, stats) of one adjoint-matching regression step on fresh paths of the current control."""
    with torch.no_grad():
        out = simulate(coeffs, net, y0, noise, keep_path=True)
    y_T = out["y"]
    grad = problem.effective_reward_gradient(y_T.double().cpu().numpy())
    target = lean_adjoint(coeffs, out["path"], torch.as_tensor(grad, dtype=y_T.dtype, device=y_T.device)).detach()
    N, n, d = out["path"].shape
    t = torch.as_tensor(np.repeat(coeffs.times, n), dtype=y_T.dtype, device=y_T.device)
    scale = coeffs.scale.repeat_interleave(n)
    g = net(t, out["path"].reshape(N * n, d), scale).reshape(N, n, d)
    dts = torch.as_tensor(np.diff(np.append(coeffs.times, coeffs.T_end)), dtype=y_T.dtype, device=y_T.device)
    w = dts * (coeffs.sigma2 if weighting == "sigma2" else 1.0)
    loss = (w[:, None] * ((g - target) ** 2).sum(-1)).sum(0).mean() / w.sum()
    return loss, {"y": y_T, "kl": float(out["cost"].mean())}
