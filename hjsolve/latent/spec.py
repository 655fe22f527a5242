"""What a latent-space case is, without torch: the model folder and the image reward.

`DiffusersModel` reads only the JSON configs of the model folder (the UNet and VAE shapes), so a
case loads and validates fast; `hjsolve.latent.pipeline` loads the weights when solving.
Failures raise `SpecError` with a one-line reason; `hjsolve.case` adds the file and the key.
"""
import json
import re
from pathlib import Path

#: Files a Stable Diffusion folder (diffusers layout) must have.
MODEL_FILES = ("unet/config.json", "vae/config.json", "text_encoder/config.json", "scheduler/scheduler_config.json")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SCHEDULERS = ("ddpm", "ddim")
#: Bundled image rewards (`hjsolve.latent.rewards`) and the adapters that need local weights.
BUNDLED_REWARDS = ("brightness", "colour", "smoothness", "aesthetic", "imagereward")


class SpecError(ValueError):
    """A one-line reason; the case loader names the file and the key."""


def resolve_model(model, base_dir=None):
    """The local folder of ``model``: a folder (relative to ``base_dir``), or a hub id in the local cache.

    hjsolve never downloads: a hub id must already be in the Hugging Face cache.
    """
    path = Path(model).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.is_dir():
        return path.resolve()
    if HUB_ID.match(model) and not Path(model).exists():
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(model, local_files_only=True))
        except Exception:  # not installed, or not in the cache: the message below says what to do
            pass
        raise SpecError(f"{model!r} is neither a local folder nor in the local Hugging Face cache "
                        f"(hjsolve does not download models; fetch it first, e.g. `huggingface-cli download {model}`, "
                        "or give the folder's path)")
    raise SpecError(f"no local model folder {str(path)!r} (give the path of a Stable Diffusion folder in the diffusers "
                    "layout, e.g. a copy of stable-diffusion-v1-5)")


def _config(path, name):
    try:
        return json.loads((path / name).read_text())
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path}: cannot read {name} ({exc})") from None


class DiffusersModel:
    """A text-conditioned latent diffusion model in a local diffusers folder (DESIGN §2 ``[pretrained]``).

    Latents are (C, h, w) with C = the VAE's latent channels and (h, w) = (height, width)/f,
    f = 2^(len(vae.block_out_channels) - 1) (8 for SD 1.5); ``dimension`` = C h w.
    """

    kind = "diffusers"
    #: No data law in closed form (used only by f-divergence checks, which diffusers cases do not allow).
    max_std = 0.0

    def __init__(self, model, path, prompts, scheduler="ddpm", guidance_scale=1.0, negative_prompt="",
                 height=None, width=None):
        self.model, self.path = model, Path(path)
        missing = [name for name in MODEL_FILES if not (self.path / name).is_file()]
        if missing:
            raise SpecError(f"{self.path} is not a Stable Diffusion folder in the diffusers layout "
                            f"(missing {', '.join(missing)})")
        unet, vae = _config(self.path, "unet/config.json"), _config(self.path, "vae/config.json")
        self.vae_factor = 2 ** (len(vae.get("block_out_channels", [0])) - 1)
        self.latent_channels = int(unet.get("in_channels", 4))
        native = int(unet.get("sample_size", 64)) * self.vae_factor
        self.height, self.width = int(height or native), int(width or native)
        for name, size in (("height", self.height), ("width", self.width)):
            if size % self.vae_factor:
                raise SpecError(f"{name} = {size} must be a multiple of the VAE's factor {self.vae_factor}")
        self.prompts, self.negative_prompt = list(prompts), negative_prompt
        self.scheduler, self.guidance_scale = scheduler, float(guidance_scale)

    @property
    def latent_shape(self):
        """(C, h, w) of one latent."""
        return (self.latent_channels, self.height // self.vae_factor, self.width // self.vae_factor)

    @property
    def dimension(self):
        c, h, w = self.latent_shape
        return c * h * w

    def prompts_for(self, n):
        """The n prompts of a batch: sample i uses prompts[i mod len(prompts)]."""
        return [self.prompts[i % len(self.prompts)] for i in range(n)]


class ImageRewardSpec:
    """``[reward] kind = "image"``: r(images, prompts) on decoded images (n, 3, H, W) in [0, 1].

    ``function`` is a bundled name (`BUNDLED_REWARDS`) or ``"module:callable"``; ``params`` are its
    keyword arguments. `hjsolve.latent.rewards.build_reward` turns it into a torch callable.
    """

    kind = "image"
    sup, inf = float("inf"), float("-inf")
    strictly_positive = False

    def __init__(self, function, params=None, search_dir=None):
        self.function, self.params, self.search_dir = function, dict(params or {}), search_dir
