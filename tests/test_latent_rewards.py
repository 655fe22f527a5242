"""Image rewards (hjsolve.latent.rewards) against closed forms on constant and checkerboard images,
the aesthetic adapter against the same computation written out by hand (tiny random CLIP), and
the messages for adapters whose weights or packages are absent."""
import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers", reason="the latent solver needs the neural extra (transformers)")

from hjsolve.errors import HJSolveError  # noqa: E402
from hjsolve.latent.rewards import CLIP_MEAN, CLIP_STD, build_reward  # noqa: E402
from hjsolve.latent.spec import ImageRewardSpec  # noqa: E402

torch.set_num_threads(1)  # small models: one thread is fastest and immune to oversubscription


def constant(values, size=8):
    """(n, 3, size, size) images of constant RGB colours ``values`` (n, 3)."""
    return torch.tensor(values, dtype=torch.float64)[:, :, None, None].expand(-1, -1, size, size).clone()


def test_brightness_colour_and_smoothness_closed_forms():
    images = constant([[0.2, 0.4, 0.6], [1.0, 1.0, 1.0]])
    prompts = ["a", "b"]
    brightness = build_reward(ImageRewardSpec("brightness", {"scale": 2.0}))
    torch.testing.assert_close(brightness(images, prompts), torch.tensor([0.8, 2.0], dtype=torch.float64))
    colour = build_reward(ImageRewardSpec("colour", {"target": [1.0, 0.0, 0.0], "scale": 3.0}))
    torch.testing.assert_close(colour(images, prompts), -3.0 * torch.tensor([0.64 + 0.16 + 0.36, 0.0 + 1.0 + 1.0],
                                                                              dtype=torch.float64))
    smooth = build_reward(ImageRewardSpec("smoothness", {}))
    assert torch.count_nonzero(smooth(images, prompts)) == 0
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2  # |∂x| = |∂y| = 1 everywhere
    board = checker.to(torch.float64).expand(1, 3, 8, 8)
    torch.testing.assert_close(smooth(board, ["c"]), torch.tensor([-2.0], dtype=torch.float64))


@pytest.mark.parametrize("name, params", [("brightness", {}), ("colour", {"target": [0.0, 1.0, 0.0]}),
                                          ("smoothness", {})])
def test_bundled_rewards_are_differentiable(name, params):
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64, requires_grad=True)
    reward = build_reward(ImageRewardSpec(name, params))
    assert torch.autograd.gradcheck(lambda x: reward(x, ["a", "b"]), (images,))


def test_user_reward_gets_images_prompts_and_params(tmp_path):
    (tmp_path / "my_image_reward.py").write_text(
        "def red(images, prompts, weight):\n    return weight * images[:, 0].flatten(1).mean(1) + len(prompts)\n")
    reward = build_reward(ImageRewardSpec("my_image_reward:red", {"weight": 5.0}, search_dir=tmp_path))
    torch.testing.assert_close(reward(constant([[0.5, 0.0, 0.0]]), ["x"]), torch.tensor([3.5], dtype=torch.float64))


@pytest.fixture
def tiny_aesthetic(tmp_path):
    """A tiny random CLIP vision model (projection 16) and an aesthetic MLP 16-8-4-4-2-1 with dropout slots."""
    config = transformers.CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37,
                                           num_hidden_layers=2, num_attention_heads=4, projection_dim=16)
    torch.manual_seed(0)
    transformers.CLIPVisionModelWithProjection(config).save_pretrained(tmp_path / "clip")
    widths = {0: (8, 16), 2: (4, 8), 4: (4, 4), 6: (2, 4), 7: (1, 2)}
    state = {}
    for index, (out, inp) in widths.items():
        state[f"layers.{index}.weight"] = torch.randn(out, inp)
        state[f"layers.{index}.bias"] = torch.randn(out)
    torch.save(state, tmp_path / "mlp.pth")
    return tmp_path / "clip", tmp_path / "mlp.pth", state


def test_aesthetic_adapter_matches_the_computation_written_out(tiny_aesthetic):
    clip_dir, weights, state = tiny_aesthetic
    reward = build_reward(ImageRewardSpec("aesthetic", {"clip": str(clip_dir), "weights": str(weights)}))
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
    r = reward(images, ["a", "b"])
    clip = transformers.CLIPVisionModelWithProjection.from_pretrained(clip_dir)
    pixels = torch.nn.functional.interpolate(images, size=(32, 32), mode="bicubic", align_corners=False)
    pixels = (pixels - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    h = clip(pixel_values=pixels).image_embeds
    h = h / h.norm(dim=-1, keepdim=True)
    for index in (0, 2, 4, 6, 7):  # linear layers only: no activations in the LAION predictor
        h = h @ state[f"layers.{index}.weight"].T + state[f"layers.{index}.bias"]
    torch.testing.assert_close(r, h[:, 0], rtol=1e-5, atol=1e-6)
    r.sum().backward()
    assert math.isfinite(float(images.grad.abs().sum())) and float(images.grad.abs().sum()) > 0
    assert all(not p.requires_grad for p in reward.parameters())


def test_adapters_without_weights_or_package_say_so(tmp_path):
    with pytest.raises(HJSolveError, match=r"reward.params.clip: .* not found") as info:
        build_reward(ImageRewardSpec("aesthetic", {"clip": str(tmp_path / "none"), "weights": str(tmp_path / "w.pth")}))
    assert "\n" not in str(info.value)
    (tmp_path / "ImageReward.pt").write_bytes(b"")
    (tmp_path / "med_config.json").write_text("{}")
    try:
        import ImageReward  # noqa: F401
    except ImportError:
        with pytest.raises(HJSolveError, match="pip install image-reward"):
            build_reward(ImageRewardSpec("imagereward", {"weights": str(tmp_path / "ImageReward.pt"),
                                                         "med_config": str(tmp_path / "med_config.json")}))
    else:
        pytest.skip("the ImageReward package is installed: its missing-package message cannot be shown")
