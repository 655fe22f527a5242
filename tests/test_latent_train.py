"""Fine-tuning the tiny Stable Diffusion pipeline end to end on CPU (method "neural", diffusers):
loading through hjsolve's loader, training that changes only the LoRA weights and raises the
reward on fixed seeds, the KL accounted, a killed run that resumes bit for bit, the summary, the
PNG grid, and `hjsolve run` with save/load."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers", reason="the latent solver needs the neural extra (diffusers)")
pytest.importorskip("peft", reason="the latent solver needs the neural extra (peft)")
pytest.importorskip("accelerate", reason="the latent solver needs the neural extra (accelerate)")
transformers = pytest.importorskip("transformers")

import hjsolve  # noqa: E402
from hjsolve.case import case_from_dict  # noqa: E402
from hjsolve.cli import main  # noqa: E402
from hjsolve.errors import HJSolveError  # noqa: E402
from hjsolve.latent.lora import lora_state  # noqa: E402
from hjsolve.latent.solution import LatentSolution, latent_options, train_solution  # noqa: E402
from hjsolve.solution import SUMMARY_KEYS  # noqa: E402

from latent_helpers import build_tiny_pipeline, latent_case  # noqa: E402

torch.set_num_threads(1)  # small models: one thread is fastest and immune to oversubscription

#: The random VAE ends in GroupNorm -> conv, so its mean brightness varies by only ~1e-3 across
#: latents: α = 1e-4 makes r/α vary by O(10), a tilt the LoRA can learn in a few steps.
ALPHA = 1e-4
TRAIN = {"train_steps": 6, "lr": 3e-2}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("latent") / "tiny-sd")


def brightness_case(model_dir, **latent):
    data = latent_case(model_dir, reward={"kind": "image", "function": "brightness"}, latent={**TRAIN, **latent})
    data["finetune"]["alpha"] = ALPHA
    return case_from_dict(data)


@pytest.fixture(scope="module")
def trained(tiny_model):
    case = brightness_case(tiny_model)
    solution, trainer = train_solution(case, latent_options(case, {}))
    return solution, trainer


def frozen_state(solution):
    """Base (non-LoRA) weights of UNet, VAE and text encoder, as CPU tensors."""
    unet = {k.replace(".base_layer", ""): v for k, v in solution.model.unet.state_dict().items() if "lora_" not in k}
    return {"unet": unet, "vae": solution.model.vae.state_dict(), "text": solution.model.text_encoder.state_dict()}


def test_loading_goes_through_hjsolve_and_matches_the_saved_weights(tiny_model):
    """hjsolve's loader (LatentModel, from the saved folder) gives the weights diffusers/transformers load."""
    case = brightness_case(tiny_model)
    sol = LatentSolution(case, latent_options(case, {}))
    state = frozen_state(sol)
    reference = {
        "unet": diffusers.UNet2DConditionModel.from_pretrained(tiny_model, subfolder="unet").state_dict(),
        "vae": diffusers.AutoencoderKL.from_pretrained(tiny_model, subfolder="vae").state_dict(),
        "text": transformers.CLIPTextModel.from_pretrained(tiny_model, subfolder="text_encoder").state_dict(),
    }
    for part in reference:
        assert state[part].keys() == reference[part].keys(), part
        assert all(torch.equal(state[part][k], reference[part][k]) for k in reference[part]), part
    assert sol.model.tokenizer("red cat").input_ids[0] == 0 and sol.problem.pretrained.latent_shape == (4, 8, 8)
    assert sol.schedule.timesteps.tolist() == [667, 334, 1]


def test_training_changes_only_the_lora_weights(trained, tiny_model):
    solution, trainer = trained
    case = brightness_case(tiny_model)
    fresh = LatentSolution(case, latent_options(case, {}))
    before, after = frozen_state(fresh), frozen_state(solution)
    for part in before:
        assert all(torch.equal(before[part][k], after[part][k]) for k in before[part]), f"{part} weights changed"
    lora_before, lora_after = lora_state(fresh.model.unet), lora_state(solution.model.unet)
    changed = [k for k in lora_before if not torch.equal(lora_before[k], lora_after[k])]
    assert len(changed) == len(lora_before), "every LoRA matrix should move"
    assert trainer.step == TRAIN["train_steps"] and len(trainer.history) == trainer.step


def test_training_raises_the_reward_on_fixed_seeds(trained):
    """Paired chains (same x_0 and noise) with and without LoRA: the brightness gain is more than
    5 standard errors (measured ≈ 7.6 SE, gain ≈ 0.2 pretrained std) and the path KL is positive."""
    solution, _ = trained
    ft = solution.chains(16, seed=123, control=True)
    pre = solution.chains(16, seed=123, control=False)
    gain = (ft["reward"] - pre["reward"]).double()
    assert float(gain.mean()) > 5 * float(gain.std() / 4)
    assert float(gain.mean()) > 0.1 * float(pre["reward"].std())
    assert float(ft["kl"].min()) > 0 and torch.count_nonzero(pre["kl"]) == 0


def test_summary_has_the_design_keys_and_kl_bookkeeping(trained):
    solution, trainer = trained
    summary = solution.compute_summary(trainer).summary
    assert all(key in summary for key in SUMMARY_KEYS)
    assert summary["method"] == "neural" and summary["dimension"] == 256 and summary["alpha"] == ALPHA
    assert summary["tv_bound"] is None and summary["kl_finetuned_pretrained"] > 0
    # paired evaluation chains (same x_0 and noise): the trained model is brighter
    assert summary["reward_finetuned"] - summary["reward_pretrained"] > 2 * summary["reward_gain_se"]
    assert summary["train_steps_done"] == TRAIN["train_steps"] and summary["training_complete"]
    # the objective's bookkeeping: loss = -(E r/α - E ΣKL) of the last batch
    _, _, loss, reward, kl = trainer.history[-1]
    assert loss == pytest.approx(-(reward / ALPHA - kl), rel=1e-5)
    assert np.isfinite(summary["log_normalizer"]) and 0 < summary["path_ess_fraction"] <= 1
    json.dumps(summary)


def test_sample_control_and_png_grid(trained, tmp_path):
    from PIL import Image

    solution, _ = trained
    x = solution.sample(3, seed=5)
    assert x.shape == (3, 256) and np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, solution.sample(3, seed=5))
    u, gap = solution.control(0, x), solution.lora_control(0, x)
    assert u.shape == gap.shape == (3, 256) and np.abs(gap).max() > 0
    with pytest.raises(HJSolveError, match="integer step"):
        solution.control(3, x)
    with pytest.raises(HJSolveError, match="not available"):
        solution.value(0, x)
    path = solution.write_grid(tmp_path / "grid.png", n=5, seed=0)
    with Image.open(path) as image:
        assert image.size == (3 * 16, 2 * 16) and image.mode == "RGB"  # 3 columns × 2 rows of 16×16 images
    assert not list(tmp_path.glob(".grid.png.*"))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_lora_weights(tiny_model, tmp_path):
    """3 steps straight vs 2 steps, 'killed', then resumed from the checkpoint: identical LoRA, Adam state, history."""
    case = brightness_case(tiny_model, train_steps=3)
    straight, trainer = train_solution(case, latent_options(case, {}))
    ckpt = tmp_path / "run.ckpt"
    options = latent_options(case, {"checkpoint": str(ckpt), "checkpoint_every": 1, "stop_after": 2})
    first, first_trainer = train_solution(case, options)
    assert first_trainer.step == 2 and ckpt.exists()
    resumed, resumed_trainer = train_solution(case, {**options, "stop_after": 0})
    assert resumed_trainer.step == 3
    a, b = lora_state(straight.model.unet), lora_state(resumed.model.unet)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h[2:] for h in trainer.history] == [h[2:] for h in resumed_trainer.history]
    other = latent_options(case, {"checkpoint": str(ckpt), "lr": 1e-3})
    with pytest.raises(HJSolveError, match="belongs to another run"):
        train_solution(case, other)


@pytest.mark.slow
def test_cli_run_writes_grid_and_the_solution_loads_back(tiny_model, tmp_path, capsys):
    case_file = tmp_path / "tiny.toml"
    case_file.write_text(f"""title = "tiny latent"
[sde]
kind = "ddpm"
steps = 2
[pretrained]
kind = "diffusers"
model = "{tiny_model}"
prompts = ["red cat"]
guidance_scale = 2.0
[reward]
kind = "image"
function = "smoothness"
[finetune]
alpha = 0.01
[solver]
method = "neural"
[solver.neural.latent]
train_steps = 2
batch_size = 2
eval_samples = 2
grid_images = 3
device = "cpu"
""")
    out = tmp_path / "out"
    assert main(["run", str(case_file), "--out", str(out)]) == 0
    assert "reward_finetuned" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"solution.npz", "summary.json", "samples.png"}
    loaded = hjsolve.load(out)
    assert isinstance(loaded, LatentSolution)
    again = hjsolve.solve(hjsolve.load_case(case_file))
    np.testing.assert_array_equal(loaded.sample(2, seed=1), again.sample(2, seed=1))
