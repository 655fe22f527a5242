"""A tiny random-weight Stable Diffusion pipeline (diffusers layout) and latent cases, for CPU tests.

UNet2DConditionModel (block_out_channels (32, 64), 8×8 latents with 4 channels), AutoencoderKL
(two blocks: factor 2, so 16×16 images), a 2-layer CLIP text model (hidden 32) and a CLIP
tokenizer built from a small vocab.json + merges.txt written here; saved with save_pretrained.
"""
import json
from pathlib import Path

#: Letters and a few merges: enough for the test prompts.
LETTERS = "abcdefghijklmnopqrstuvwxyz"
MERGES = ["r e", "re d</w>", "b l", "bl u", "blu e</w>", "c a", "ca t</w>"]
MAX_LENGTH = 16


def write_tokenizer_files(directory):
    """vocab.json and merges.txt of a tiny byte-level BPE vocabulary; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokens = ["<|startoftext|>", "<|endoftext|>"] + [c for c in LETTERS] + [c + "</w>" for c in LETTERS]
    tokens += ["".join(m.split()) for m in MERGES]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    return directory / "vocab.json", directory / "merges.txt"


def build_tiny_pipeline(directory, seed=0):
    """Build the tiny pipeline with random weights (seeded) and save it into ``directory``."""
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    directory = Path(directory)
    vocab, merges = write_tokenizer_files(directory.parent / f"{directory.name}_tokenizer_source")
    tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=MAX_LENGTH)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=MAX_LENGTH, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=32))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, norm_num_groups=32, attention_head_dim=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(32, 64), latent_channels=4,
        layers_per_block=1, norm_num_groups=32, sample_size=16)
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, clip_sample=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(str(directory))
    return directory


def latent_case(model_dir, reward=None, steps=3, latent=None, **pretrained):
    """A diffusers case dict on ``model_dir`` (brightness reward, 3 DDPM steps, tiny batches)."""
    options = {"train_steps": 4, "batch_size": 2, "lr": 3e-3, "lora_rank": 2, "eval_samples": 4,
               "grid_images": 4, "device": "cpu", "gradient_checkpointing": False, "threads": 1}
    options.update(latent or {})
    return {
        "title": "tiny latent",
        "sde": {"kind": "ddpm", "steps": steps},
        "pretrained": {"kind": "diffusers", "model": str(model_dir), "prompts": ["red cat", "blue cat"], **pretrained},
        "reward": reward or {"kind": "image", "function": "brightness", "params": {"scale": 10.0}},
        "finetune": {"alpha": 1.0, "divergence": "kl"},
        "solver": {"method": "neural", "neural": {"latent": options}},
    }
