"""The latent DDPM chain of DESIGN §1 on the model's own noise schedule, with its per-step KL.

The scheduler (`DDPMScheduler` or `DDIMScheduler`, built from the model's scheduler config) gives
the N sampler timesteps τ_0 > ... > τ_{N-1} and ᾱ. Step t (sampler index t = 0..N-1) uses
ᾱ = ᾱ(τ_t), ᾱ' = ᾱ(τ_{t+1}) (at the last step 1 for ``ddpm``, ᾱ(0) for ``ddim``),
α_t = ᾱ/ᾱ', β_t = 1 - α_t, and an ε-prediction ε(x) of the UNet:

    x_{t+1} = m(x_t) + σ_t W_t,   m(x) = (x - β_t/sqrt(1-ᾱ) ε(x))/sqrt(α_t),
    σ_t² = β_t (``ddpm``, DESIGN §1: σ_k² = 1 - α_k)   or   (1-ᾱ')/(1-ᾱ) β_t (``ddim``, η = 1).

In the variables of DESIGN §1, m(x) = (x + (1-α_t) u)/sqrt(α_t) with the score u = -ε/sqrt(1-ᾱ).
Fine-tuned and pretrained transitions share σ_t, so (paper 002, Lemma 2.5)

    KL_t = |m_ft - m_pre|²/(2σ_t²) = β_t²/(α_t (1-ᾱ)) |ε_ft - ε_pre|²/(2σ_t²),

and along a fine-tuned path, x_{t+1} = m_ft + σ_t W_t, the log-likelihood ratio of the pretrained
chain is log dP_pre/dP_ft = Σ_t (W_t·(m_pre - m_ft)/σ_t - KL_t). Classifier-free guidance,
ε = ε_u + w (ε_c - ε_u), is applied alike to both predictions. No clipping or thresholding: the
chain is the ε-parameterised Gaussian chain itself. For ``ddim`` the last step ends at ᾱ(0) < 1
(SD 1.5's ``set_alpha_to_one = false``): with ᾱ' = 1 and η = 1 the last σ would be 0 and the KL infinite.
"""
import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch.utils.checkpoint import checkpoint

from ..errors import HJSolveError
from .lora import adapters_disabled

SCHEDULER_CLASSES = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}


class Schedule:
    """Per-step coefficients (numpy float64, (N,)): ``timesteps``, ``alpha_bar``, ``alpha_bar_prev``,
    ``alpha``, ``beta``, ``var`` (σ_t²) and ``eps_coef`` = β_t/sqrt(1-ᾱ)."""

    def __init__(self, scheduler_config, kind, steps):
        scheduler = SCHEDULER_CLASSES[kind].from_config(scheduler_config)
        if scheduler.config.prediction_type != "epsilon":
            raise HJSolveError(f"pretrained.model: the scheduler predicts {scheduler.config.prediction_type!r}; "
                               "hjsolve's latent chain needs an epsilon-prediction model (SD 1.x)")
        scheduler.set_timesteps(int(steps))
        self.kind = kind
        self.timesteps = scheduler.timesteps.numpy().astype(int)
        bars = scheduler.alphas_cumprod.double().numpy()
        self.alpha_bar = bars[self.timesteps]
        last = 1.0 if kind == "ddpm" else bars[0]
        self.alpha_bar_prev = np.append(bars[self.timesteps[1:]], last)
        self.alpha = self.alpha_bar / self.alpha_bar_prev
        self.beta = 1.0 - self.alpha
        self.var = self.beta if kind == "ddpm" else (1 - self.alpha_bar_prev) / (1 - self.alpha_bar) * self.beta
        self.eps_coef = self.beta / np.sqrt(1.0 - self.alpha_bar)

    def __len__(self):
        return len(self.timesteps)

    def mean(self, t, x, eps):
        """m(x) (n, C, h, w) of step t from the ε-prediction ``eps``."""
        return (x - float(self.eps_coef[t]) * eps) / float(np.sqrt(self.alpha[t]))

    def kl(self, t, eps_ft, eps_pre):
        """(n,) KL_t between the fine-tuned and pretrained transitions from x (module docstring)."""
        weight = self.eps_coef[t] ** 2 / self.alpha[t] / (2.0 * self.var[t])
        return float(weight) * ((eps_ft - eps_pre).float() ** 2).flatten(1).sum(1)


class Conditioning:
    """Prompt embeddings of a batch: cond (n, L, D), uncond (n, L, D) (negative prompt) and w."""

    def __init__(self, model, prompts, negative_prompt, guidance_scale):
        self.prompts = list(prompts)
        self.scale = float(guidance_scale)
        self.cond = model.encode(self.prompts)
        self.uncond = model.encode([negative_prompt] * len(self.prompts)) if self.scale != 1.0 else None

    def eps(self, unet, x, timestep):
        """(n, C, h, w) guided ε-prediction ε_u + w (ε_c - ε_u) (just ε_c when w = 1)."""
        if self.uncond is None:
            return unet(x, timestep, encoder_hidden_states=self.cond.to(unet.dtype)).sample
        embeds = torch.cat([self.uncond, self.cond]).to(unet.dtype)
        both = unet(torch.cat([x, x]), timestep, encoder_hidden_states=embeds).sample
        eps_u, eps_c = both.chunk(2)
        return eps_u + self.scale * (eps_c - eps_u)


def _step(schedule, unet, cond, t, x, control):
    """(m_ft, m_pre, KL_t) of step t at x; without control m_ft = m_pre and KL_t = 0."""
    timestep = int(schedule.timesteps[t])
    with adapters_disabled(unet):
        eps_pre = cond.eps(unet, x.to(unet.dtype), timestep).to(x.dtype)
    m_pre = schedule.mean(t, x, eps_pre)
    if not control:
        return m_pre, m_pre, x.new_zeros(x.shape[0])
    eps_ft = cond.eps(unet, x.to(unet.dtype), timestep).to(x.dtype)
    return schedule.mean(t, x, eps_ft), m_pre, schedule.kl(t, eps_ft, eps_pre)


def run_chain(schedule, unet, cond, x0, noise, control=True, grad=False, backprop_steps=0, checkpointing=False):
    """Run the chain from x0 (n, C, h, w) with standard normals ``noise`` (N, n, C, h, w).

    control: the fine-tuned transitions (LoRA on) and their KL to the pretrained ones; else the
    pretrained chain. grad: keep the graph (only through the last ``backprop_steps`` steps if > 0);
    checkpointing: recompute each step's UNet calls in backward (`torch.utils.checkpoint`).
    Returns dict: ``x`` (n, C, h, w) final latents, ``kl`` (n,) Σ_t KL_t, ``log_ratio`` (n,)
    log dP_pre/dP_ft of the path (0 without control).
    """
    N = len(schedule)
    first_grad = N - backprop_steps if backprop_steps else 0
    x = x0
    kl = x0.new_zeros(x0.shape[0], dtype=torch.float32)
    log_ratio = torch.zeros_like(kl)
    for t in range(N):
        keep = grad and t >= first_grad
        with torch.set_grad_enabled(keep):
            if keep and checkpointing:
                m_ft, m_pre, kl_t = checkpoint(_step, schedule, unet, cond, t, x, control, use_reentrant=False)
            else:
                m_ft, m_pre, kl_t = _step(schedule, unet, cond, t, x, control)
            sigma = float(np.sqrt(schedule.var[t]))
            z = noise[t].to(x)
            kl = kl + kl_t
            if control:
                drift_gap = (z.float() * (m_pre - m_ft).float()).flatten(1).sum(1) / sigma
                log_ratio = log_ratio + drift_gap.detach() - kl_t.detach()
            x = m_ft + sigma * z
    return {"x": x, "kl": kl, "log_ratio": log_ratio}
