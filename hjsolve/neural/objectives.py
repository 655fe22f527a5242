"""The three training objectives of ``[solver.neural] objective``, per unit α (DESIGN §1).

``bridge_matching`` (default): regression of g_θ onto ∇log h over (t, Q*_t), with targets that
need no differentiation through the SDE. Under Q* = Q^{u*,ν*} (dQ*/dQ = exp(r_eff(Y_T))/C) the
path given its end points (Y_0, Y_T) is the pretrained bridge, and the pretrained sampler's
transition kernels are those of the forward noising reversed, so its bridge is the Gaussian
bridge of the forward SDE (`metrics.bridge_coefficients`; exact when the score is the exact score of
the diffused data law, as for `gaussian_mixture` and the bundled two-moons model). With
s = T - t, x = Y_T, y = Y_t and Q*(Y_t | Y_T) = Q(Y_t | Y_T):
    ∇log h(t, y) = E_{Q*}[D | Y_t = y] = E_{Q*}[S | Y_t = y],
    D = -(y - a(s) x)/var(s) - s(s, y)                       (denoising, as in score matching),
    S = (∇r_eff(x) + s(0, x))/a(s) - s(s, y)                  (target score: ∇_y moves x by 1/a),
so any κ D + (1 - κ) S is an unbiased target. D is noisy near t = T (1/var(s)), S near t = 0
(1/a(s)); κ per time bin is the running variance-minimising value E[(S-g)·(S-D)]/E|S-D|².
Each step simulates ``batch_size`` paths of the current control from p_noise (no gradient);
their self-normalised weights exp(r_eff(Y_T) + girsanov) ∝ dQ*/dQ^{u_θ} make the pairs
(Y_0, Y_T) draws of Q* whatever the control. The last ``bridge_buffer`` batches are kept;
``bridge_points`` pairs are resampled by weight, given ``bridge_times`` times t and bridge
points Y_t, and the loss is mean λ(t)/q(t) |g_θ(t, Y_t) - target|², λ = ς⁴ (so the loss is
E|u_θ - u*|² over (t, Q*_t), the validation metric, up to the target noise). The time density q
is piecewise constant on ``bridge_bins`` bins, ∝ the running RMS of λ·residual per bin (mixed
20 % with uniform): samples go where the target noise and the error are, e.g. the times at
which the reward empties a mode. Bins are uniform in sqrt(T - t), so they narrow towards t = T.
Rao–Blackwellisation (``bridge_rao_blackwell``): the m pairs of one time form an empirical law
of Q*(Y_0, Y_T); given the bridge point y_t, the pair is j with posterior probability
∝ N(y_t; w_T x_j + w_0 y0_j, std² I), and D, S are affine in (x, ∇r_eff(x) + s(0, x)), so
replacing those by their posterior means keeps the targets' conditional mean given y_t and cuts
their variance (15x at t = 0.8 in 1-D, tests/test_neural.py), at O(m²) per time.
Unlike ``relative_entropy`` (which weights errors by Q^{u_θ}, so a mode the control empties too
early costs almost nothing) this weights them by Q*.

``relative_entropy`` (paper 000, (3.12)–(3.14)): maximise over the control
    J(u) = E[r_eff(Y_T) - ½∫_0^T |u/ς|² dt],  Y_0 ~ p_noise,
by backpropagating through the Euler–Maruyama solver (`paths.simulate`, memory bounded by
`torch.utils.checkpoint` segments). The initial law is not a network parameter here: by
(3.13) the problem separates into (3.14) for u and (3.15) for ν, and ν* ∝ h(0,·) p_noise
is obtained afterwards from the trained control (`estimators`, or `initial` for the learned
law of (3.31)–(3.32)), so the KL(ν‖p_noise) term of
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

from .metrics import bridge_coefficients
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


def bridge_posterior_means(y_t, mean, std, values):
    """(K, m, c) Σ_j π_kij values[k, j] with π_ki· = softmax_j(-|y_t[k, i] - mean[k, j]|² / (2 std_k²)):
    the posterior mean of the pairs' ``values`` (K, m, c) given the bridge point y_t (K, m, d), when
    the pair is uniform among the m pairs of its time and y_t | pair j ~ N(mean[k, j], std_k² I)."""
    inv = (0.5 / torch.clamp(std, min=1e-6) ** 2)[:, None, None]
    logits = inv * (2 * torch.bmm(y_t, mean.transpose(1, 2)) - (mean * mean).sum(-1)[:, None, :])
    return torch.bmm(torch.softmax(logits, dim=-1), values)


def bridge_targets(sampler, t, x, y0, grad0, eps, rao_blackwell=False):
    """Bridge points and the two unbiased targets of ∇log h (module docstring).

    t (K,) sampler times; x = Y_T, y0 = Y_0 (K, m, d) end points; grad0 (K, m, d) = ∇r_eff(x) + s(0, x);
    eps (K, m, d) standard normals. Returns (y_t (K m, d), s(T - t, y_t), D, S), each (K m, d).
    ``rao_blackwell``: D and S are averaged over the m pairs of their time by the posterior
    probability of each pair given y_t (`bridge_posterior_means`; module docstring).
    """
    K, m, d = x.shape
    T, sde = sampler.T, sampler.sde
    s = T - np.asarray(t, float)
    a_s, v_s = np.asarray(sde.a(s), float) * np.ones_like(s), np.asarray(sde.var(s), float) * np.ones_like(s)
    weight_T, weight_0, std = bridge_coefficients(sde, t)
    col = lambda v: sampler.tensor(v)[:, None, None]
    mean = col(weight_T) * x + col(weight_0) * y0
    y_t = mean + col(std) * eps
    flat = y_t.reshape(K * m, d)
    if rao_blackwell:
        with torch.no_grad():
            both = bridge_posterior_means(y_t, mean, sampler.tensor(std), torch.cat([x, grad0], dim=-1))
        x, grad0 = both[..., :d], both[..., d:]
    with torch.no_grad():
        score = sampler.score_model(sampler, s)(torch.arange(K, device=x.device).repeat_interleave(m), flat)
        dsm = (-(y_t - col(a_s) * x) / col(v_s)).reshape(K * m, d) - score
        tsm = (grad0 / col(a_s)).reshape(K * m, d) - score
    return flat, score, dsm, tsm


class BridgeMatching:
    """State and loss of ``objective = "bridge_matching"`` (module docstring); the state is saved
    in training checkpoints, so a resumed run is bit-identical.

    Keeps the last ``bridge_buffer`` batches of weighted endpoint pairs (Y_0, Y_T) and a running
    per-time-bin estimate of the squared weighted residual, which sets the time-sampling density.
    """

    def __init__(self, sampler, coeffs, problem, options):
        self.sampler, self.coeffs, self.problem = sampler, coeffs, problem
        self.batches = int(options["bridge_buffer"])
        self.points = int(options["bridge_points"])
        self.times = int(options["bridge_times"])
        self.bins = int(options["bridge_bins"])
        self.rao_blackwell = bool(options["bridge_rao_blackwell"])
        self.buffer = []  # [(y0 (n, d), y_T (n, d), log-weights (n,), ∇r_eff(y_T) + s(0, y_T) (n, d))]
        self.path_stats = {}  # KL and ESS of the newest simulated batch
        self.stat = torch.ones(self.bins, dtype=torch.float64)  # running mean of λ² |g - target|² per bin
        self.mix = torch.zeros(2, self.bins, dtype=torch.float64)  # running E[(S-g)·(S-D)], E|S-D|² per bin
        self.mix[1] = 1.0
        self.data_score = sampler.score_model(sampler, np.zeros(1))  # s(0, ·), the data score
        fine = np.linspace(0.0, sampler.T, 1001)
        self.mean_sigma4 = float(np.mean(np.asarray(sampler.sde.sampler_sigma2(fine), float) ** 2))

    def state_dict(self):
        return {"buffer": [tuple(x.clone() for x in b) for b in self.buffer], "stat": self.stat.clone(),
                "mix": self.mix.clone(), "path_stats": dict(self.path_stats)}

    def load_state_dict(self, state):
        self.buffer = [tuple(b) for b in state["buffer"]]
        self.path_stats = dict(state["path_stats"])
        self.stat = state["stat"].clone()
        self.mix = state["mix"].clone()

    def bin_times(self, w):
        """(t, (dt/dw)/T) for bin coordinates w in [0, 1]: t = T (1 - (1 - w)²), bins uniform in
        sqrt(T - t), so they narrow towards t = T where the targets and ∇log h change fastest."""
        return self.sampler.T * (1.0 - (1.0 - w) ** 2), 2.0 * (1.0 - w)

    def time_weight(self, t):
        """λ(t) = ς(t)⁴ / mean_t ς⁴: the loss is then E|u_θ - u*|² over (t, Q*_t), the validation metric."""
        sig4 = (np.asarray(self.sampler.sde.sampler_sigma2(t), float) * np.ones_like(t)) ** 2
        return sig4 / self.mean_sigma4

    def add_paths(self, net, y0, noise):
        """Simulate controlled paths from y0 (n, d) with Euler noise (N, n, d) and add their weighted
        endpoint pairs to the buffer."""
        problem = self.problem
        with torch.no_grad():
            out = simulate(self.coeffs, net, y0, noise)
        y_T = out["y"]
        log_w = torch.as_tensor(problem.effective_reward(y_T.double().cpu().numpy()), dtype=torch.float64) \
            + out["girsanov"].double().cpu()
        log_w = log_w - torch.logsumexp(log_w, 0)
        with torch.no_grad():
            grad0 = self.data_score(torch.zeros(len(y_T), dtype=torch.long), y_T) + torch.as_tensor(
                problem.effective_reward_gradient(y_T.double().cpu().numpy()), dtype=y_T.dtype, device=y_T.device)
        self.buffer = (self.buffer + [(y0.detach(), y_T.detach(), log_w, grad0)])[-self.batches:]
        self.path_stats = {"kl": float(out["cost"].mean()), "ess": float(1.0 / (torch.exp(2 * log_w)).sum())}

    def loss(self, net, y0, noise, generator, simulate_paths=True):
        """(loss, stats) of one regression on the buffer, after adding the paths from y0 (n, d) with
        Euler noise (N, n, d) when ``simulate_paths`` (or the buffer is empty); draws from ``generator``."""
        sampler = self.sampler
        if simulate_paths or not self.buffer:
            self.add_paths(net, y0, noise)
        Y0 = torch.cat([b[0] for b in self.buffer])
        YT = torch.cat([b[1] for b in self.buffer])
        G0 = torch.cat([b[3] for b in self.buffer])
        W = torch.exp(torch.cat([b[2] for b in self.buffer]))
        y_T = self.buffer[-1][1]
        d = y_T.shape[1]
        K, per = self.times, max(self.points // self.times, 1)
        idx = torch.multinomial(W, K * per, replacement=True, generator=generator)
        X, Z, G0 = YT[idx].reshape(K, per, d), Y0[idx].reshape(K, per, d), G0[idx].reshape(K, per, d)
        q = torch.sqrt(self.stat)
        q = 0.8 * q / q.sum() + 0.2 / self.bins
        bins = torch.multinomial(q, K, replacement=True, generator=generator)
        u = torch.rand(K, generator=generator, dtype=torch.float64)
        t, jacobian = self.bin_times(((bins.double() + u) / self.bins).numpy())
        eps = torch.randn(K, per, d, generator=generator, dtype=y_T.dtype).to(y_T.device)
        flat, score, dsm, tsm = bridge_targets(sampler, t, X, Z, G0, eps, self.rao_blackwell)
        kappa = torch.clamp(self.mix[0] / self.mix[1], 0.0, 1.0)[bins].to(y_T.dtype).repeat_interleave(per)[:, None]
        target = kappa * dsm + (1 - kappa) * tsm
        tt = sampler.tensor
        weight = self.time_weight(t)
        lam = weight * jacobian / (self.bins * q[bins].numpy())  # λ(t) / (T density of t)
        g = net(tt(t).repeat_interleave(per), flat, tt(sampler.input_scale(t)).repeat_interleave(per), score=score)
        res = ((g - target) ** 2).sum(-1).reshape(K, per)
        loss = (tt(lam)[:, None] * res).mean()
        with torch.no_grad():  # running per-bin statistics: κ and the time density
            mean = lambda v: v.sum(-1).reshape(K, per).double().mean(1).cpu()
            A, B = mean((tsm - g) * (tsm - dsm)), mean((tsm - dsm) ** 2)
            per_bin = torch.as_tensor(weight * jacobian, dtype=torch.float64) ** 2 * res.double().mean(1).cpu()
            for b in range(self.bins):
                hit = bins == b
                if hit.any():
                    self.mix[0, b] = 0.9 * self.mix[0, b] + 0.1 * A[hit].mean()
                    self.mix[1, b] = 0.9 * self.mix[1, b] + 0.1 * B[hit].mean()
                    self.stat[b] = 0.9 * self.stat[b] + 0.1 * per_bin[hit].mean()
        return loss, {"y": y_T, **self.path_stats}
