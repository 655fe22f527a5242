"""Differentiable rewards on decoded images: r(images, prompts) -> (n,).

images: (n, 3, H, W) float tensor in [0, 1] (RGB), differentiable; prompts: the n prompts.
A reward is any callable of that form: a bundled one below by name, or ``"module:callable"``
from the case (called as ``callable(images, prompts, **params)``).

Bundled (their ``params`` in brackets):
- ``brightness`` [scale = 1]: r = scale · mean pixel value, in [0, scale].
- ``colour`` [target = [r, g, b] in [0, 1], scale = 1]: r = -scale · mean_pixels |pixel - target|².
- ``smoothness`` [scale = 1]: r = -scale · total variation, mean(|∂_x I| + |∂_y I|): a
  compressibility proxy (smooth images compress well).
- ``aesthetic`` [clip, weights]: the LAION aesthetic predictor: a CLIP ViT-L/14 image embedding
  (transformers folder ``clip``), normalised, through the MLP of ``weights``
  (e.g. ``sac+logos+ava1-l14-linearMSE.pth``, keys layers.{0,2,4,6,7}.{weight,bias}).
- ``imagereward`` [weights, med_config]: ImageReward (package ``image-reward``) from the local
  ``ImageReward.pt`` and ``med_config.json``, scored differentiably (`score_gard`).
The adapters load their weights once, when the reward is built; missing files or packages raise
a one-line HJSolveError that names the key.
"""
import functools
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import HJSolveError
from ..rewards import import_callable

#: CLIP's input normalisation (ViT-L/14, BLIP's visual encoder uses the same).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def brightness(images, prompts, scale=1.0):
    """(n,) scale · mean pixel value."""
    return scale * images.flatten(1).mean(1)


def colour(images, prompts, target, scale=1.0):
    """(n,) -scale · mean over pixels of |pixel - target|² (target: RGB in [0, 1])."""
    target = torch.as_tensor(target, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return -scale * ((images - target) ** 2).sum(1).flatten(1).mean(1)


def smoothness(images, prompts, scale=1.0):
    """(n,) -scale · mean(|I(x+1, y) - I(x, y)| + |I(x, y+1) - I(x, y)|) (anisotropic total variation)."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().flatten(1).mean(1)
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).mean(1)
    return -scale * (dx + dy)


def _clip_input(images, size):
    """Resize to size × size (bicubic) and normalise as CLIP expects."""
    images = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False)
    mean = torch.tensor(CLIP_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def _existing(path, key):
    path = Path(path).expanduser()
    if not path.exists():
        raise HJSolveError(f"reward.params.{key}: {str(path)!r} not found (the adapter needs its weights locally; "
                           "hjsolve does not download them)")
    return path


class Aesthetic(torch.nn.Module):
    """LAION aesthetic predictor: MLP(normalised CLIP image embedding); the MLP's widths come from ``weights``."""

    def __init__(self, clip, weights):
        super().__init__()
        from transformers import CLIPVisionModelWithProjection

        self.clip = CLIPVisionModelWithProjection.from_pretrained(str(_existing(clip, "clip")), local_files_only=True)
        state = torch.load(_existing(weights, "weights"), map_location="cpu", weights_only=True)
        linear = sorted({int(k.split(".")[1]) for k in state if k.startswith("layers.") and k.endswith(".weight")})
        if not linear:
            raise HJSolveError(f"reward.params.weights: {weights} holds no layers.<i>.weight (not an aesthetic MLP)")
        modules = []
        for index in range(linear[-1] + 1):  # dropouts (identity at evaluation) where no weight is stored
            w = state.get(f"layers.{index}.weight")
            modules.append(torch.nn.Linear(w.shape[1], w.shape[0]) if w is not None else torch.nn.Identity())
        self.layers = torch.nn.Sequential(*modules)
        self.layers.load_state_dict({k[len("layers."):]: v for k, v in state.items() if k.startswith("layers.")})
        self.size = self.clip.config.image_size
        self.requires_grad_(False)
        self.eval()

    def forward(self, images, prompts):
        embeds = self.clip(pixel_values=_clip_input(images, self.size).to(self.clip.dtype)).image_embeds
        return self.layers(embeds / embeds.norm(dim=-1, keepdim=True)).squeeze(-1).float()


class ImageRewardScore(torch.nn.Module):
    """ImageReward (Xu et al. 2023) through the package's differentiable `score_gard`."""

    def __init__(self, weights, med_config):
        super().__init__()
        try:
            import ImageReward
        except ImportError:
            raise HJSolveError("reward.function: 'imagereward' needs the ImageReward package: pip install image-reward") from None
        weights, med_config = _existing(weights, "weights"), _existing(med_config, "med_config")
        self.model = ImageReward.load(str(weights), device="cpu", med_config=str(med_config))
        self.requires_grad_(False)
        self.eval()

    def forward(self, images, prompts):
        model = self.model
        model.device = images.device
        tokens = model.blip.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=35,
                                      return_tensors="pt").to(images.device)
        return model.score_gard(tokens.input_ids, tokens.attention_mask, _clip_input(images, 224)).squeeze(-1).float()


FUNCTIONS = {"brightness": brightness, "colour": colour, "smoothness": smoothness}
ADAPTERS = {"aesthetic": Aesthetic, "imagereward": ImageRewardScore}


def build_reward(spec, device="cpu"):
    """The callable (images, prompts) -> (n,) of an `ImageRewardSpec`."""
    if spec.function in FUNCTIONS:
        return functools.partial(FUNCTIONS[spec.function], **spec.params)
    if spec.function in ADAPTERS:
        return ADAPTERS[spec.function](**spec.params).to(device)
    return functools.partial(import_callable(spec.function, spec.search_dir), **spec.params)
