"""The learned initial law (``initial_law = "learned"``): paper 000, (3.31)–(3.32).

ν* ∝ h(0,·) p_noise (3.16) is the terminal law of a second control problem. On [0, T],

    dZ_t = q_t dt + σ' dB_t,   Z_0 = 0 (p_fix = δ_0),   σ'² = var(T)/T,                 (3.31)

so that with q = 0, Z_T ~ N(0, var(T) I) = p_noise. Maximising, per unit α,

    E[log h(0, Z_T) - ½ ∫_0^T |q_t/σ'|² dt]                                              (3.32)

tilts the law of Z_T by h(0,·): Z_T ~ ν* under q*, with q*(t, z) = σ'² ∇_z log E[h(0, z + σ'(B_T - B_t))].
((3.32) writes v*(0, Y_0); the tilted variable is the auxiliary end point.) Here q = σ'² k_φ, with
k_φ a `ControlNet` whose reward term is the trained g_θ(0,·) ≈ ∇log h(0,·): exact at t = T, where
k* = ∇log h(0,·). The pathwise gradient of E log h(0, Z_T) needs ∇log h(0,·) only, so the loss
-E[stop_grad(g_θ(0, Z_T))·Z_T] + E cost has the gradient of (3.32) with no value estimate.

Draws report an importance check: for each auxiliary path, exp(L(Z_T) + log dP⁰/dP^q) is an
unbiased estimate of C·ν*(Z_T)/ν̃(Z_T) (L the controlled sampler's log-weight from Z_T, see
`estimators`; P⁰ the q = 0 path law), and its effective sample size is the summary's
``initial_ess_fraction``.
"""
import numpy as np
import torch

from ..progress import progress
from .network import ControlNet
from .train import learning_rate


class LearnedInitialLaw:
    """The auxiliary control k_φ of (3.31)–(3.32) for a trained g_θ (``net``) of ``sampler``."""

    def __init__(self, sampler, net, options):
        self.sampler, self.net, self.options = sampler, net, options
        self.T = sampler.T
        self.sigma2 = sampler.problem.noise_std() ** 2 / self.T  # σ'²
        self.steps = int(options["steps"])
        scale0 = float(sampler.input_scale(0.0))
        self.scale = float(sampler.problem.noise_std())  # typical size of Z_t, t > 0

        def grad_log_h0(z):
            zeros = z.new_zeros(len(z))
            return self.net(zeros, z, torch.full_like(zeros, scale0))

        self.grad_log_h0 = grad_log_h0
        self.k = ControlNet(sampler.dimension, self.T, options["hidden"], options["layers"], options["frequencies"],
                            reward_gradient=grad_log_h0).to(dtype=sampler.dtype, device=sampler.device)

    def simulate(self, n, generator):
        """(Z_T (n, d), cost (n,), log dP⁰/dP^q (n,)): Euler–Maruyama of (3.31) with ``steps`` steps."""
        sampler, dt = self.sampler, self.T / self.steps
        sig = np.sqrt(self.sigma2 * dt)
        noise = torch.randn(self.steps, n, sampler.dimension, generator=generator, dtype=sampler.dtype).to(sampler.device)
        z = noise.new_zeros(n, sampler.dimension)
        cost, ito = z.new_zeros(n), z.new_zeros(n)
        scale = z.new_full((n,), self.scale)
        for j in range(self.steps):
            k = self.k(z.new_full((n,), j * dt), z, scale)
            cost = cost + 0.5 * self.sigma2 * dt * (k * k).sum(1)
            ito = ito + sig * (k * noise[j]).sum(1)
            z = z + self.sigma2 * dt * k + sig * noise[j]
        return z, cost, -ito - cost

    def train(self, generator):
        """Adam on (3.32) for ``initial_train_steps`` steps of ``batch_size`` paths (g_θ frozen);
        the learning rate decays as in the main training. The bar shows E ½∫|q/σ'|² dt, the path
        KL from P⁰ (→ KL(ν*‖p_noise) at q*)."""
        opts = self.options
        schedule = dict(opts, train_steps=opts["initial_train_steps"])
        frozen = [p.requires_grad for p in self.net.parameters()]
        for p in self.net.parameters():
            p.requires_grad_(False)
        optimizer = torch.optim.Adam(self.k.parameters(), lr=opts["lr"])
        try:
            self.k.train()
            bar = progress(range(opts["initial_train_steps"]), desc="neural: initial law (3.32)")
            for step in bar:
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(schedule, step)
                z, cost, _ = self.simulate(opts["batch_size"], generator)
                loss = (cost - (self.grad_log_h0(z).detach() * z).sum(1)).mean()
                optimizer.zero_grad()
                loss.backward()
                if opts["grad_clip"] > 0:
                    torch.nn.utils.clip_grad_norm_(self.k.parameters(), opts["grad_clip"])
                optimizer.step()
                bar.set_postfix(kl=f"{float(cost.detach().mean()):.4g}", refresh=False)
        finally:
            for p, flag in zip(self.net.parameters(), frozen):
                p.requires_grad_(flag)
            self.k.eval()

    def sample(self, n, generator):
        """(Z_T (n, d) numpy float64, log dP⁰/dP^q (n,) numpy): n draws of the learned ν̃."""
        with torch.no_grad():
            z, _, log_ratio = self.simulate(n, generator)
        return z.double().cpu().numpy(), log_ratio.double().cpu().numpy()
