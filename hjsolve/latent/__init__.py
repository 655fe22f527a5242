"""Reward fine-tuning of Stable Diffusion in latent space (``pretrained.kind = "diffusers"``).

The model is the discrete DDPM chain of DESIGN §1 run with the model's own noise schedule; the
fine-tuned score is the UNet with LoRA adapters (peft), the pretrained one the same UNet with the
adapters disabled, so the control is the LoRA-induced drift difference. Training maximises, per
unit α, E[r(decode(x_N))/α - Σ_t KL_t] through the sampling chain into the LoRA weights only
(`hjsolve.neural.objectives.relative_entropy_objective`, shared with the low-dimensional solver).

`spec` and `options` are light (no torch): the case loader uses them. The other modules import
torch, diffusers, transformers, peft and accelerate at their top; call `require()` first.

- `spec`: the case's model (`DiffusersModel`) and image reward (`ImageRewardSpec`).
- `options`: the ``[solver.neural.latent]`` options and their checks.
- `pipeline`: load UNet, VAE, CLIP text model and tokenizer from a local folder; encode, decode.
- `lora`: LoRA adapters on the UNet, switching them off, their state.
- `sampler`: the per-step Gaussian transitions, their KL and the controlled chain.
- `rewards`: bundled differentiable image rewards and the ImageReward / aesthetic adapters.
- `train`: the training loop (accelerate, mixed precision, resumable checkpoints).
- `solution`: `LatentSolution` (DESIGN §3) and the solver entry point.
"""
import importlib

from ..errors import HJSolveError

#: The packages of the ``neural`` extra that the latent solver imports.
EXTRA_MODULES = ("torch", "diffusers", "transformers", "peft", "accelerate")


def require():
    """Raise a one-line HJSolveError naming the ``neural`` extra if one of its packages is missing."""
    missing = []
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise HJSolveError(f"pretrained.kind 'diffusers' needs the neural extra (missing: {', '.join(missing)}): "
                           "pip install 'hjsolve[neural]'")
