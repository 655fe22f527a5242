"""The options of ``[solver.neural.latent]`` (a diffusers case), with defaults sized for SD 1.5.

`OPTIONS`: name -> (type, default), the same form as a solver module's OPTIONS. `problems`
yields (key, reason) for values out of range; the case loader and the solver report the first.
"""
OPTIONS = {
    "train_steps": (int, 200),  # optimiser steps
    "batch_size": (int, 4),  # chains per step (per process)
    "lr": (float, 1e-4),  # Adam learning rate (constant)
    "grad_clip": (float, 1.0),  # LoRA gradient-norm clipping (0: none)
    "lora_rank": (int, 4),  # LoRA rank r (lora_alpha = r: scale 1); B starts at 0, so the start is the pretrained model
    "lora_targets": (list, ["to_q", "to_k", "to_v", "to_out.0"]),  # UNet modules that get adapters
    "backprop_steps": (int, 0),  # gradient through the last K sampler steps only (AlignProp-style); 0: all
    "gradient_checkpointing": (bool, True),  # recompute each sampler step's UNet calls in backward
    "mixed_precision": (str, "no"),  # no | fp16 | bf16 (accelerate); frozen weights are cast, LoRA stays fp32
    "device": (str, "auto"),  # auto (accelerate's choice) | cpu
    "eval_samples": (int, 16),  # chains for the summary (fine-tuned and pretrained each)
    "grid_images": (int, 16),  # images in samples.png written by `hjsolve run`
    "checkpoint": (str, ""),  # path of the resumable training checkpoint ("" for none)
    "checkpoint_every": (int, 25),  # steps between checkpoints
    "stop_after": (int, 0),  # stop after this many steps in this call (as if killed); 0: never
    "seed": (int, 0),
    "threads": (int, 0),  # torch CPU threads while solving; 0: leave
}
CHOICES = {"mixed_precision": ("no", "fp16", "bf16"), "device": ("auto", "cpu")}
POSITIVE = ("train_steps", "batch_size", "lora_rank", "eval_samples", "grid_images", "checkpoint_every")


def defaults():
    return {name: (list(value) if isinstance(value, list) else value) for name, (_, value) in OPTIONS.items()}


def problems(options):
    """Yield (key, reason) for each option value out of its range."""
    for key, allowed in CHOICES.items():
        if options[key] not in allowed:
            yield key, f"must be one of {', '.join(allowed)} (got {options[key]!r})"
    for key in POSITIVE:
        if options[key] < 1:
            yield key, f"must be >= 1 (got {options[key]})"
    for key in ("lr", "grad_clip", "backprop_steps", "stop_after", "threads"):
        if options[key] < 0 or (key == "lr" and options[key] == 0):
            yield key, f"must be {'> 0' if key == 'lr' else '>= 0'} (got {options[key]})"
    targets = options["lora_targets"]
    if not targets or not all(isinstance(name, str) and name for name in targets):
        yield "lora_targets", f"expected a non-empty list of module names, got {targets!r}"
