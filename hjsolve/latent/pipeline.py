"""Load a Stable Diffusion folder (diffusers layout) into torch modules; encode prompts, decode latents.

The components are loaded one by one from the local folder (`DiffusersModel.path`): the UNet
(`UNet2DConditionModel`), the VAE (`AutoencoderKL`), the CLIP text model and tokenizer, and the
scheduler's config (its noise schedule ᾱ; `hjsolve.latent.sampler` builds the chain from it).
No safety checker, no download: ``local_files_only``. Every weight is frozen here.
"""
from contextlib import contextmanager

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from diffusers.utils import logging as diffusers_logging
from transformers import CLIPTextModel, CLIPTokenizer
from transformers.utils import logging as transformers_logging

from ..errors import HJSolveError


@contextmanager
def _quiet():
    """Silence the libraries' loading logs and progress bars (restored afterwards)."""
    saved = diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(saved[0])
        transformers_logging.set_verbosity(saved[1])
        transformers_logging.enable_progress_bar()


class LatentModel:
    """UNet, VAE, text model and tokenizer of ``spec`` (a `DiffusersModel`), frozen, in float32 on CPU."""

    def __init__(self, spec):
        self.spec = spec
        path = str(spec.path)
        try:
            with _quiet():
                self.tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", local_files_only=True)
                self.text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", local_files_only=True)
                self.unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", local_files_only=True)
                self.vae = AutoencoderKL.from_pretrained(path, subfolder="vae", local_files_only=True)
                self.scheduler_config = DDPMScheduler.load_config(path, subfolder="scheduler", local_files_only=True)
        except Exception as exc:  # a broken or foreign folder: the user's to fix
            reason = " ".join(str(exc).split())
            raise HJSolveError(f"pretrained.model: cannot load {path} ({type(exc).__name__}: {reason})") from None
        for module in (self.text_encoder, self.unet, self.vae):
            module.requires_grad_(False)
            module.eval()

    def to(self, device, dtype=torch.float32):
        """Move the frozen modules to ``device`` in ``dtype`` (LoRA parameters are kept in float32)."""
        with _quiet():  # diffusers notes every cast to a dtype
            for module in (self.text_encoder, self.unet, self.vae):
                module.to(device=device, dtype=dtype)
        for name, param in self.unet.named_parameters():
            if "lora_" in name:
                param.data = param.data.float()
        return self

    @property
    def device(self):
        return self.unet.device

    def encode(self, prompts):
        """(n, L, D) CLIP last hidden states of the n ``prompts`` (padded to the tokenizer's length)."""
        ids = self.tokenizer(list(prompts), padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            return self.text_encoder(ids.to(self.device))[0]

    def decode(self, latents):
        """(n, 3, H, W) images in [0, 1] from latents (n, C, h, w); differentiable in the latents."""
        vae = self.vae
        images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
        return (images.float() / 2 + 0.5).clamp(0, 1)
