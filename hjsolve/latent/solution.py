"""`LatentSolution`: the LoRA-fine-tuned latent chain behind the DESIGN §3 interface, and `solve`.

- ``sample(n, seed)`` (n, d): final latents x_N of the fine-tuned chain, flattened (d = C h w);
  ``images(n, seed)`` decodes them, ``write_grid(path, n, seed)`` writes a PNG grid.
- ``control(t, y)`` (n, d): the fine-tuned score u_t(y) = -ε_ft(y, τ_t)/sqrt(1-ᾱ) at the integer
  step t (DESIGN §1's ddpm control: the pretrained chain has u_t = s_t); ``lora_control(t, y)`` is
  the LoRA-induced part u_t - s_t, which moves the step's mean by (1-α_t)/sqrt(α_t) (u_t - s_t).
  Points are paired with prompts as in sampling: y[i] with prompts[i mod len(prompts)].
- ``value`` raises: log h(t, y) would need many chains per point in d = C h w dimensions.
- ``summary``: see `compute_summary`.
"""
import math
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from ..errors import HJSolveError
from ..io import atomic_path
from ..solution import Solution
from .lora import adapters_disabled, add_lora, load_lora_state, lora_parameters, lora_state
from .options import defaults, problems
from .pipeline import LatentModel
from .rewards import build_reward
from .sampler import Conditioning, Schedule, run_chain

WEIGHT_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def latent_options(case, options):
    """The latent options: defaults, then the case's [solver.neural.latent], then ``options``."""
    merged = defaults()
    merged.update(case.options("neural").get("latent", {}))
    for key, value in dict(options).items():
        if key not in merged:
            raise HJSolveError(f"solver.neural.latent.{key}: unknown option (expected one of {', '.join(merged)})")
        merged[key] = value
    for key, reason in problems(merged):
        raise HJSolveError(f"solver.neural.latent.{key}: {reason}")
    return merged


class LatentSolution(Solution):
    """The UNet with trained LoRA adapters, sampled by the latent DDPM chain (`hjsolve.latent.sampler`)."""

    method = "neural"

    def __init__(self, case, options, summary=None, lora=None):
        super().__init__(case, summary)
        self.options = dict(options)
        spec = self.problem.pretrained
        self.accelerator = Accelerator(mixed_precision=options["mixed_precision"], cpu=options["device"] == "cpu")
        self.model = LatentModel(spec)
        add_lora(self.model.unet, options["lora_rank"], options["lora_targets"], options["seed"])
        if lora is not None:
            load_lora_state(self.model.unet, lora)
        self.model.to(self.accelerator.device, WEIGHT_DTYPES[options["mixed_precision"]])
        self.schedule = Schedule(self.model.scheduler_config, spec.scheduler, self.problem.sde.steps)
        self.reward = build_reward(self.problem.reward, self.accelerator.device)
        self._conditioning = {}

    # ----- building blocks ---------------------------------------------------------------------
    def conditioning(self, prompts):
        """The `Conditioning` of a batch with these prompts (cached)."""
        key = tuple(prompts)
        if key not in self._conditioning:
            spec = self.problem.pretrained
            self._conditioning[key] = Conditioning(self.model, key, spec.negative_prompt, spec.guidance_scale)
        return self._conditioning[key]

    def draw(self, n, generator):
        """x_0 (n, C, h, w) ~ N(0, I) and the chain's noise (N, n, C, h, w), drawn on the CPU."""
        shape = (n, *self.problem.pretrained.latent_shape)
        x0 = torch.randn(shape, generator=generator)
        noise = torch.randn((len(self.schedule), *shape), generator=generator)
        return x0.to(self.accelerator.device), noise.to(self.accelerator.device)

    def chains(self, n, seed, control=True):
        """Run n chains (batches of ``batch_size``, no gradient) from ``seed``.

        Returns dict of CPU tensors: ``x`` (n, C, h, w), ``kl`` (n,), ``log_ratio`` (n,), ``reward`` (n,).
        """
        x0, noise = self.draw(n, torch.Generator().manual_seed(int(seed)))
        prompts = self.problem.pretrained.prompts_for(n)
        parts = []
        size = self.options["batch_size"]
        with torch.no_grad(), self.accelerator.autocast():
            for lo in range(0, n, size):
                batch = prompts[lo:lo + size]
                out = run_chain(self.schedule, self.model.unet, self.conditioning(batch), x0[lo:lo + size],
                                noise[:, lo:lo + size], control=control)
                out["reward"] = self.reward(self.model.decode(out["x"]), batch).float()
                parts.append({k: v.float().cpu() for k, v in out.items()})
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    # ----- DESIGN §3 -------------------------------------------------------------------------
    def sample(self, n, seed=0):
        """(n, d) final latents of the fine-tuned chain, flattened (float64)."""
        return self.chains(n, seed)["x"].flatten(1).double().numpy()

    def images(self, n, seed=0):
        """(n, H, W, 3) uint8 images decoded from `sample`'s latents (the same chains)."""
        latents = torch.as_tensor(self.sample(n, seed), dtype=torch.float32).view(n, *self.problem.pretrained.latent_shape)
        pictures = []
        with torch.no_grad(), self.accelerator.autocast():
            for lo in range(0, n, self.options["batch_size"]):
                batch = latents[lo:lo + self.options["batch_size"]].to(self.accelerator.device)
                pictures.append(self.model.decode(batch).float().cpu())
        return (torch.cat(pictures).permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()

    def write_grid(self, path, n=16, seed=0):
        """Write n decoded samples as a PNG grid (ceil(sqrt n) columns), atomically; returns the path."""
        from PIL import Image

        pictures = self.images(n, seed)
        _, H, W, _ = pictures.shape
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        grid = np.zeros((rows * H, cols * W, 3), dtype=np.uint8)
        for i, picture in enumerate(pictures):
            r, c = divmod(i, cols)
            grid[r * H:(r + 1) * H, c * W:(c + 1) * W] = picture
        with atomic_path(path) as tmp:
            Image.fromarray(grid).save(tmp, format="PNG")
        return Path(path)

    def _scores(self, t, y):
        """(u_t - s_t, u_t) (n, d) at the integer step t: the scores -ε/sqrt(1-ᾱ) with LoRA off and on."""
        steps = len(self.schedule)
        if not (isinstance(t, (int, np.integer)) and 0 <= t < steps):
            raise HJSolveError(f"control: t must be an integer step in 0..{steps - 1} (got {t!r})")
        y = self._check_points(y)
        x = torch.as_tensor(y, dtype=torch.float32, device=self.accelerator.device)
        x = x.view(len(y), *self.problem.pretrained.latent_shape)
        cond = self.conditioning(self.problem.pretrained.prompts_for(len(y)))
        unet = self.model.unet
        with torch.no_grad(), self.accelerator.autocast():
            eps_ft = cond.eps(unet, x.to(unet.dtype), int(self.schedule.timesteps[t])).float()
            with adapters_disabled(unet):
                eps_pre = cond.eps(unet, x.to(unet.dtype), int(self.schedule.timesteps[t])).float()
        scale = -1.0 / math.sqrt(1.0 - float(self.schedule.alpha_bar[t]))
        return ((scale * (eps_ft - eps_pre)).flatten(1).double().cpu().numpy(),
                (scale * eps_ft).flatten(1).double().cpu().numpy())

    def control(self, t, y):
        """(n, d) the fine-tuned score u_t(y) at the integer step t (module docstring)."""
        return self._scores(t, y)[1]

    def lora_control(self, t, y):
        """(n, d) u_t(y) - s_t(y): the LoRA-induced control at the integer step t."""
        return self._scores(t, y)[0]

    def value(self, t, y):
        raise HJSolveError("value: not available for pretrained.kind 'diffusers' (log h(t, y) would need many chains "
                           "per point in latent space); summary['log_normalizer'] estimates log C = log h averaged at t = 0")

    # ----- persistence -------------------------------------------------------------------------
    def tabulate(self):
        """No plotting table in latent space (save() writes the LoRA weights and the summary)."""
        return {}

    def write_figures(self, directory):
        """``samples.png``: a grid of ``grid_images`` decoded fine-tuned samples (seed 0)."""
        return [self.write_grid(Path(directory) / "samples.png", self.options["grid_images"], seed=0)]

    def _state(self):
        return {f"lora.{k}": v.float().numpy() for k, v in lora_state(self.model.unet).items()}

    @classmethod
    def from_state(cls, case, summary, state):
        lora = {k[len("lora."):]: torch.as_tensor(v) for k, v in state.items() if k.startswith("lora.")}
        return cls(case, summary["options"], summary=summary, lora=lora)

    # ----- summary -----------------------------------------------------------------------------
    def compute_summary(self, trainer=None):
        """DESIGN §3 keys from ``eval_samples`` fine-tuned and pretrained chains with the same x_0 and noise.

        reward_finetuned / reward_pretrained: E r under the fine-tuned (LoRA) and pretrained chains
        (± standard errors; the chains are paired, so reward_gain_se, the standard error of their
        difference, is much smaller than either); kl_finetuned_pretrained: the path KL E_ft Σ_t KL_t, an upper bound on
        KL of the terminal laws (data processing; equal at the optimal control); log_normalizer:
        log C = log E_pre[exp(r/α)] by importance sampling with the fine-tuned chains as proposal,
        log mean exp(r/α + log dP_pre/dP_ft) (exact in expectation for any LoRA weights; see
        path_ess_fraction for its reliability). tv_bound: None (needs E_pre exp(2r/α) over the data law).
        """
        from scipy.special import logsumexp

        problem, opts = self.problem, self.options
        m = opts["eval_samples"]
        ft = self.chains(m, opts["seed"] + 1, control=True)
        pre = self.chains(m, opts["seed"] + 1, control=False)
        r_ft, r_pre = ft["reward"].double().numpy(), pre["reward"].double().numpy()
        log_w = ft["log_ratio"].double().numpy()
        log_terms = r_ft / problem.alpha + log_w
        log_C = float(logsumexp(log_terms) - np.log(m))
        w = np.exp(log_terms - logsumexp(log_terms))
        se = lambda r: float(np.std(r, ddof=1) / np.sqrt(len(r))) if len(r) > 1 else None
        spec = problem.pretrained
        self.summary.update({
            "case": self.case.title, "method": self.method, "dimension": problem.dimension,
            "alpha": problem.alpha, "divergence": problem.divergence.name,
            "log_normalizer": log_C,
            "reward_pretrained": float(np.mean(r_pre)), "reward_finetuned": float(np.mean(r_ft)),
            "kl_finetuned_pretrained": float(ft["kl"].double().mean()),
            "tv_bound": None, "wall_time_s": None,
            "reward_pretrained_se": se(r_pre), "reward_finetuned_se": se(r_ft), "reward_gain_se": se(r_ft - r_pre),
            "path_ess_fraction": float(1.0 / np.sum(w**2) / m),
            "eval_samples": m, "sampler_steps": len(self.schedule), "scheduler": spec.scheduler,
            "guidance_scale": spec.guidance_scale, "latent_shape": list(spec.latent_shape),
            "lora_parameters": int(sum(p.numel() for p in lora_parameters(self.model.unet).values())),
            "notes": ("reward_finetuned is E r under the trained LoRA chain; kl_finetuned_pretrained is the path KL "
                      "(an upper bound on the terminal KL); tv_bound is not estimated in latent space"),
            "options": dict(opts),
        })
        if trainer is not None:
            last = trainer.history[-1] if trainer.history else (0, 0.0, None, None, None)
            self.summary.update({"train_steps_done": trainer.step, "train_time_s": trainer.elapsed,
                                 "training_complete": trainer.step >= opts["train_steps"],
                                 "loss_final": last[2], "reward_train_final": last[3], "kl_train_final": last[4]})
        return self


def train_solution(case, options, callback=None):
    """(LatentSolution, LatentTrainer) after training (or resuming) per the latent ``options``."""
    from .train import LatentTrainer

    solution = LatentSolution(case, options)
    trainer = LatentTrainer(solution)
    trainer.train(checkpoint=options["checkpoint"] or None, checkpoint_every=options["checkpoint_every"],
                  stop_after=options["stop_after"], callback=callback)
    return solution, trainer


def solve(case, options):
    """Train the LoRA adapters (resuming from ``checkpoint``) and fill the summary."""
    threads = options["threads"]
    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        solution, trainer = train_solution(case, options)
        return solution.compute_summary(trainer)
    finally:
        torch.set_num_threads(saved)
