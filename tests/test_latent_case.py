"""Case files for Stable Diffusion latent space (pretrained.kind "diffusers", reward.kind "image"):
the schema, its one-line errors naming file and key, and the bundled SD 1.5 case. The model
folder here holds only the JSON configs that case loading reads (no weights, no torch)."""
import copy
import json
import tomllib
from pathlib import Path

import pytest

import hjsolve
from hjsolve.case import case_from_dict
from hjsolve.cli import main
from hjsolve.errors import CaseError

from latent_helpers import latent_case

CASES_DIR = Path(__file__).resolve().parent.parent / "cases"
SD15 = CASES_DIR / "sd15_brightness.toml"


@pytest.fixture
def configs(tmp_path):
    """A folder with the diffusers layout's configs: 4 latent channels, 8×8 latents, VAE factor 2."""
    folder = tmp_path / "sd"
    files = {"unet/config.json": {"in_channels": 4, "sample_size": 8}, "vae/config.json": {"block_out_channels": [32, 64]},
             "text_encoder/config.json": {}, "scheduler/scheduler_config.json": {}}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(data))
    return folder


def with_keys(data, **keys):
    """A copy of ``data`` with dotted keys set (value None deletes the key)."""
    data = copy.deepcopy(data)
    for dotted, value in keys.items():
        *path, last = dotted.split("__")
        node = data
        for part in path:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def test_diffusers_case_loads_with_shapes_from_the_configs(configs):
    case = case_from_dict(latent_case(configs, height=32, width=16))
    model = case.problem.pretrained
    assert model.latent_shape == (4, 16, 8) and case.problem.dimension == 512
    assert model.prompts_for(3) == ["red cat", "blue cat", "red cat"]
    assert case_from_dict(case.raw) == case
    default = case_from_dict(latent_case(configs)).problem.pretrained
    assert (default.height, default.width, default.dimension) == (16, 16, 256)


@pytest.mark.parametrize("keys, blamed", [
    ({"pretrained__bogus": 1}, "pretrained.bogus"),
    ({"pretrained__prompts": []}, "pretrained.prompts"),
    ({"pretrained__scheduler": "euler"}, "pretrained.scheduler"),
    ({"pretrained__guidance_scale": 0.5}, "pretrained.guidance_scale"),
    ({"pretrained__height": 15}, "pretrained.height"),
    ({"sde__kind": "vp", "sde__steps": None}, "pretrained.kind"),
    ({"sde__beta_1": 1e-4}, "sde.beta_1"),
    ({"reward": {"kind": "quadratic", "center": [0.0], "scale": 1.0}}, "reward.kind"),
    ({"reward__function": "sharpness"}, "reward.function"),
    ({"reward__params": {"bogus": 1}}, "reward.params.bogus"),
    ({"reward": {"kind": "image", "function": "colour", "params": {"target": [1.0, 2.0, 0.0]}}}, "reward.params.target"),
    ({"reward": {"kind": "image", "function": "aesthetic", "params": {"clip": "/no/clip", "weights": "/no/w.pth"}}},
     "reward.params.clip"),
    ({"reward": {"kind": "image", "function": "imagereward", "params": {"weights": "/no/ImageReward.pt",
                                                                         "med_config": "/no/med.json"}}},
     "reward.params.weights"),
    ({"reward__function": "no_such_module:f"}, "reward.function"),
    ({"finetune__divergence": "forward_kl"}, "finetune.divergence"),
    ({"finetune__alpha": [1.0, 1.0, 1.0]}, "finetune.alpha"),
    ({"solver__method": "grid"}, "solver.method"),
    ({"solver__neural__batch_size": 4}, "solver.neural.batch_size"),
    ({"solver__neural__latent__bogus": 1}, "solver.neural.latent.bogus"),
    ({"solver__neural__latent__lr": -1.0}, "solver.neural.latent.lr"),
    ({"solver__neural__latent__mixed_precision": "fp8"}, "solver.neural.latent.mixed_precision"),
    ({"solver__neural__latent__batch_size": "4"}, "solver.neural.latent.batch_size"),
])
def test_bad_latent_keys_are_one_line_errors_naming_the_key(configs, keys, blamed):
    with pytest.raises(CaseError) as info:
        case_from_dict(with_keys(latent_case(configs), **keys))
    assert info.value.key == blamed, str(info.value)
    assert "\n" not in str(info.value)


def test_image_reward_and_latent_options_need_a_diffusers_model(bimodal_case):
    data = copy.deepcopy(bimodal_case.raw)
    data["reward"] = {"kind": "image", "function": "brightness"}
    with pytest.raises(CaseError, match="needs pretrained.kind = 'diffusers'") as info:
        case_from_dict(data)
    assert info.value.key == "reward.kind"
    data = copy.deepcopy(bimodal_case.raw)
    data["solver"] = {"method": "neural", "neural": {"latent": {"batch_size": 2}}}
    with pytest.raises(CaseError) as info:
        case_from_dict(data)
    assert info.value.key == "solver.neural.latent"


def test_missing_model_folder_and_uncached_hub_id_are_one_line_errors(configs, tmp_path):
    with pytest.raises(CaseError, match="no local model folder") as info:
        case_from_dict(latent_case(tmp_path / "absent"))
    assert info.value.key == "pretrained.model"
    with pytest.raises(CaseError, match="does not download") as info:
        case_from_dict(latent_case("no-such-org/no-such-model-hjsolve"))
    assert info.value.key == "pretrained.model" and "\n" not in str(info.value)
    (configs / "unet" / "config.json").unlink()
    with pytest.raises(CaseError, match="missing unet/config.json"):
        case_from_dict(latent_case(configs))


def test_relative_model_path_is_resolved_from_the_case_folder(configs):
    text = SD15.read_text(encoding="utf-8").replace('"/path/to/stable-diffusion-v1-5"', '"sd"')
    path = configs.parent / "sd15.toml"
    path.write_text(text)
    case = hjsolve.load_case(path)
    assert case.problem.pretrained.path == configs.resolve()
    assert case.problem.pretrained.latent_shape == (4, 8, 8)
    assert case.raw["pretrained"]["model"] == "sd"


def test_bundled_sd15_case_is_documented_and_needs_local_weights(capsys):
    """Without the SD 1.5 folder, `hjsolve run` stops with a one-line error naming pretrained.model (exit 2)."""
    raw = tomllib.loads(SD15.read_text(encoding="utf-8"))
    assert raw["pretrained"]["kind"] == "diffusers" and raw["solver"]["method"] == "neural"
    if Path(raw["pretrained"]["model"]).is_dir():
        pytest.skip(f"{raw['pretrained']['model']} exists: this test checks the message when it does not")
    assert main(["run", str(SD15)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pretrained.model" in err and "sd15_brightness.toml" in err
    assert main(["cases"]) == 0
    assert "sd15_brightness.toml" in capsys.readouterr().out
