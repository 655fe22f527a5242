"""LoRA adapters (peft) on the UNet: the fine-tuned score, and the pretrained one with them off.

Each targeted linear map W becomes W + (r/r) B A with A (r, in), B (out, r), B = 0 at the start
(peft's default initialisation): the fine-tuned chain starts exactly at the pretrained one.
Only A and B are trainable; every base weight stays frozen.
"""
from contextlib import contextmanager

import torch
from peft import LoraConfig


def add_lora(unet, rank, targets, seed):
    """Add a rank-``rank`` adapter to the ``targets`` modules of ``unet``; A drawn from ``seed``."""
    unet.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        unet.add_adapter(LoraConfig(r=int(rank), lora_alpha=int(rank), lora_dropout=0.0, init_lora_weights=True,
                                    target_modules=list(targets)))
    return lora_parameters(unet)


def lora_parameters(unet):
    """The trainable LoRA parameters (name -> Parameter), in a fixed order."""
    return {name: p for name, p in unet.named_parameters() if "lora_" in name}


@contextmanager
def adapters_disabled(unet):
    """Inside, ``unet`` is the pretrained UNet (every adapter off); on exit they are on again."""
    unet.disable_adapters()
    try:
        yield unet
    finally:
        unet.enable_adapters()


def lora_state(unet):
    """{name: CPU tensor} of the LoRA weights."""
    return {name: p.detach().cpu().clone() for name, p in lora_parameters(unet).items()}


def load_lora_state(unet, state):
    """Copy ``state`` (from `lora_state`) into the adapters; the names must match exactly."""
    params = lora_parameters(unet)
    if set(params) != set(state):
        raise ValueError(f"LoRA state does not match the adapters ({len(state)} tensors for {len(params)} parameters)")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(torch.as_tensor(state[name]))
