"""All-in-one restoration training on the built-in photos: the four arm
configs, their shared initial UNet, the loop's on-device degradation, a tiny run end to end and the
published recipe's Hub-ready folder (card, model-index, the photos' licences)."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.utils import set_seed
from huggingface_hub import ModelCard

from quarf_hf import QuarfRestorationModel
from quarf_hf.training import TrainConfig, load_train_config, train
from quarf_hf.training.models import build_model

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("plain", "static", "film", "quarf")
ARM_FILES = {arm: ROOT / "configs" / "restoration" / f"{arm}.yaml" for arm in ARMS}


def _raw(arm: str) -> dict:
    return yaml.safe_load(ARM_FILES[arm].read_text())


def test_the_four_arms_differ_only_in_what_the_block_sees():
    """Same data, steps, seed, augmentation and evaluation; only the quality, the conditioning and the
    output folder differ, and they are the four arms."""
    raws = {arm: _raw(arm) for arm in ARMS}
    blocks = {arm: (raw["model"]["quality"], raw["model"]["config"]["conditioning"]) for arm, raw in raws.items()}
    assert blocks == {"plain": ("brisque", "none"), "static": ({"type": "constant", "dim": 36}, "route"),
                      "film": ("brisque", "film"), "quarf": ("brisque", "route")}
    stripped = []
    for arm, raw in raws.items():
        raw = copy.deepcopy(raw)
        assert raw.pop("output_dir") == f"outputs/restoration/{arm}"
        del raw["model"]["quality"], raw["model"]["config"]["conditioning"]
        stripped.append(raw)
    assert all(raw == stripped[0] for raw in stripped[1:])
    config = load_train_config(ARM_FILES["quarf"])
    assert config.task == "restoration" and config.data["train"]["type"] == "photos"
    # crops are windows on whole photos: the tables' pixel values, unscaled (see the configs)
    assert "reference_size" in config.augmentation and "reference_size" in config.evaluation
    assert config.augmentation["reference_size"] is config.evaluation["reference_size"] is None


def test_evaluation_kinds_are_held_out_from_the_augmentation():
    for arm in ARMS:
        config = load_train_config(ARM_FILES[arm])
        trained, evaluated = set(config.augmentation["corruptions"]), set(config.evaluation["corruptions"])
        assert evaluated and trained and not trained & evaluated, arm
    recipe = load_train_config("quarf-restoration-photos")
    held_out = set(recipe.evaluation["corruptions"]) - set(recipe.augmentation["corruptions"])
    assert {"shot_noise", "defocus_blur", "jpeg_compression"} <= held_out


def _trunk(model) -> dict:
    return {k: v for k, v in model.state_dict().items() if not k.startswith(("quarf.", "quality_extractor."))}


def test_the_arms_start_from_the_same_unet():
    """Same seed -> the same UNet weights in every arm (the block is built and initialised after the
    UNet, without drawing from its random stream); static and QuARF also share the block's weights."""
    models = {}
    for arm in ARMS:
        config = load_train_config(ARM_FILES[arm])
        set_seed(config.seed)
        models[arm] = build_model(config.model)
        assert models[arm].config.conditioning == _raw(arm)["model"]["config"]["conditioning"]
    reference = _trunk(models["quarf"])
    for arm in ("plain", "static", "film"):
        trunk = _trunk(models[arm])
        assert trunk.keys() == reference.keys()
        assert all(torch.equal(trunk[k], reference[k]) for k in reference), arm
    static, quarf = models["static"].quarf.state_dict(), models["quarf"].quarf.state_dict()
    assert static.keys() == quarf.keys() and all(torch.equal(static[k], quarf[k]) for k in quarf)
    assert sum(p.numel() for p in models["plain"].quarf.parameters()) == 0
    set_seed(1)
    other = _trunk(build_model(load_train_config(ARM_FILES["quarf"]).model))
    assert not all(torch.equal(other[k], reference[k]) for k in reference)  # the seed does matter


def test_the_loop_degrades_pixel_values_and_keeps_labels_clean():
    """A restoration batch: pixel_values degraded on the device (size rule passed on), labels the clean crop."""
    from quarf_hf.training.segmentation import SegmentationTask, _augmentation

    config = load_train_config(ARM_FILES["film"])
    task = SegmentationTask(config)
    task.augmentation = _augmentation(config)
    assert task.augmentation.reference_size is None and task.augmentation.p == config.augmentation["p"]
    config.augmentation["reference_size"] = 224
    assert _augmentation(config).reference_size == 224  # the config key reaches RandomDegradation
    task.augmentation.p = 1.0
    task.mean, task.std = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    seen = {}

    class Model(torch.nn.Module):
        def forward(self, pixel_values, labels):
            seen.update(pixel_values=pixel_values, labels=labels)
            return type("Out", (), {"loss": (pixel_values - labels).abs().mean()})()

    class Accelerator:
        @staticmethod
        def autocast():
            return contextlib.nullcontext()

    class Run:
        model, accelerator = Model(), Accelerator()

    clean = torch.rand(4, 3, 32, 32)
    batch = {"pixel_values": clean.clone(), "labels": clean.clone(), "index": torch.arange(4)}
    task.loss(Run(), batch, (0, 0, 0, 0))
    assert torch.equal(seen["labels"], clean)
    assert all(not torch.equal(seen["pixel_values"][i], clean[i]) for i in range(4))


TINY = {"block_out_channels": [8, 16, 32], "norm_num_groups": 4}


def _tiny(config_data: dict, tmp_path, name="run") -> dict:
    data = copy.deepcopy(config_data)
    data.update(max_steps=3, batch_size=2, output_dir=str(tmp_path / name), warmup_steps=0)
    data["data"]["train"].update(crop_size=32, num_samples=4)
    data["data"]["validation"] = {"type": "photos", "photos": ["chelsea"], "crop_size": 128}
    data["evaluation"].update(corruptions=["shot_noise"], severities=[3])
    return data


def test_restoration_training_end_to_end_film_arm(tmp_path):
    """A few steps of the FiLM arm (tiny UNet): trained, evaluated with the identity row, exported."""
    data = _tiny(_raw("film"), tmp_path)
    data["model"]["config"].update(TINY)
    data["model"]["quarf"]["num_groups"] = 2
    summary = train(TrainConfig.from_dict(data))
    assert summary["steps"] == 3 and not summary["stopped_early"]
    evaluation = summary["evaluation"]
    assert evaluation["task"] == "restoration" and evaluation["num_images"] == 12  # 3 x 4 grid crops of chelsea
    assert "experts" not in evaluation and "routing" not in evaluation["clean"]  # FiLM routes nothing
    identity = evaluation["identity"]
    assert identity["clean"] == {"psnr": 100.0, "ssim": 1.0}  # the clean input scored against itself
    assert set(identity["corruptions"]) == {"shot_noise"} and set(identity["corruptions"]["shot_noise"]) == {"3"}
    assert 5 < identity["corruptions"]["shot_noise"]["3"]["psnr"] < 40
    model = QuarfRestorationModel.from_pretrained(tmp_path / "run" / "model")
    assert model.config.conditioning == "film" and model.config.block_out_channels == [8, 16, 32]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 3


def test_published_recipe_trains_into_a_hub_ready_folder(tmp_path):
    """`quarf-hf train quarf-restoration-photos` (a few steps here): the card carries the evaluation
    (model-index), the training photos' licences with the CC BY credits, and the limitations;
    `quarf-hf build NAME --base RUN/model` publishes that folder, card kept."""
    from quarf_hf.hub.build import build

    config = load_train_config("quarf-restoration-photos")
    assert config.name == "quarf-restoration-photos" and config.output_dir == "outputs/quarf-restoration-photos"
    assert config.model == {"type": "quarf_restoration", "hub_config": "quarf-restoration-photos", "quality": "brisque"}
    assert config.data["validation"] == {"type": "photos", "split": "test", "crop_size": 96}
    data = _tiny({k: v for k, v in vars(config).items()}, tmp_path)
    summary = train(TrainConfig.from_dict(data))
    folder = tmp_path / "run" / "model"
    card = ModelCard.load(folder / "README.md")
    assert card.data.model_name == "quarf-restoration-photos" and card.data.pipeline_tag == "image-to-image"
    found = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    name = "quarf-hf built-in photos (chelsea)"
    evaluation = summary["evaluation"]
    assert found[(f"{name} (shot_noise, severity 3)", "psnr")] == pytest.approx(evaluation["corruptions"]["shot_noise"]["3"]["psnr"])
    assert found[(f"{name} (clean)", "ssim")] == pytest.approx(evaluation["clean"]["ssim"])
    text = card.content
    for photo in ("astronaut", "rocket", "china", "flower", "grace_hopper", "chelsea"):
        assert f"| {photo} |" in text, photo
    assert "Credits (CC BY 2.0" in text and "china: danielbuechele" in text and "flower: vultilion" in text
    assert "## Limitations" in text and "does not cover real-world degradations" in text
    assert "identity (degraded input)" in text
    out = build("quarf-restoration-photos", tmp_path / "published", base=str(folder))
    published = ModelCard.load(out / "README.md")
    assert published.data.eval_results == card.data.eval_results
    assert 'model="<your-org>/quarf-restoration-photos"' in published.content and "## Limitations" in published.content
