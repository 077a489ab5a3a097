"""quarf_hf/building.py: the one reader of a block in YAML (hub configs and training configs alike)
and the one builder of QuARF models, new or from a base with the block at its identity, shared by
`quarf-hf build` and `quarf-hf train`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from quarf_hf.building import BlockSpec, new_quarf_model, quarf_model_from_base, read_block
from quarf_hf.hub.variants import HUB_CONFIGS, hub_block, load_hub_config
from quarf_hf.training.models import build_model, model_block
from tiny_models import RESTORATION, segformer_config

ROOT = Path(__file__).resolve().parents[1]


def test_hub_and_training_dialects_read_as_one_block():
    """A hub config's `quarf: {stage, width, ...}` and a training section's `quarf:` with `quarf_stage:`
    beside it are the same block; `width` is kept apart from the settings (a check)."""
    hub = read_block({"quarf": {"stage": 1, "width": 16, "num_groups": 2, "mode": "soft"}, "quality": "brisque"},
                     {"conditioning": "film"})
    training = read_block({"quarf": {"num_groups": 2, "mode": "soft"}, "quarf_stage": 1, "quality": "brisque"},
                          {"conditioning": "film"})
    assert hub.settings == training.settings == {"num_groups": 2, "mode": "soft"}
    assert (hub.stage, hub.width, training.stage, training.width) == (1, 16, 1, None)
    assert hub.quality == training.quality == "brisque" and hub.conditioning == training.conditioning == "film"
    assert not read_block({"quarf_stage": 1}).given and read_block({"quality": "brisque"}).given
    with pytest.raises(ValueError, match=r"^model\.quarf: expected a mapping of block settings, found \[1\]"):
        read_block({"quarf": [1]}, where="model.")
    with pytest.raises(ValueError, match=r"^model\.quarf_stage: expected the stage model\.quarf\.stage gives \(1\), found 2$"):
        read_block({"quarf": {"stage": 1}, "quarf_stage": 2}, where="model.")


@pytest.mark.parametrize("name", ["quarf-segformer-b0", "quarf-restoration-small", "quarf-sam-vit-base"])
def test_published_block_is_the_files_quarf_section(name):
    """Independent reference: the YAML file read with yaml.safe_load."""
    raw = yaml.safe_load((HUB_CONFIGS / f"{name}.yaml").read_text())
    block = hub_block(load_hub_config(name))
    assert block.settings == {k: v for k, v in raw["quarf"].items() if k not in ("stage", "width")}
    assert block.stage == raw["quarf"].get("stage") and block.width == raw["quarf"].get("width")
    assert block.quality == raw["quality"]


def test_training_section_over_its_hub_config():
    """The section's settings update the variant's, its stage replaces the variant's, and its quality
    is its own (unset: not the variant's CONTRIQUE)."""
    raw = yaml.safe_load((HUB_CONFIGS / "quarf-segformer-b0.yaml").read_text())["quarf"]
    block = model_block({"type": "quarf_segformer", "hub_config": "quarf-segformer-b0", "quarf": {"num_groups": 2},
                         "quarf_stage": 1})
    assert block.settings == {**{k: v for k, v in raw.items() if k not in ("stage", "width")}, "num_groups": 2}
    assert block.stage == 1 and block.quality is None
    assert model_block({"type": "quarf_segformer", "hub_config": "quarf-segformer-b0"}).stage == raw["stage"]


def test_training_stage_written_either_way_builds_the_same_model():
    """`quarf: {stage: 1}` (the hub dialect) and `quarf_stage: 1` give the same model, weights included."""
    sections = [{"quarf": {"num_groups": 2, "stage": 1}}, {"quarf": {"num_groups": 2}, "quarf_stage": 1}]
    models = []
    for section in sections:
        torch.manual_seed(0)
        models.append(build_model({"type": "quarf_segformer", "quality": "brisque", "config": segformer_config(),
                                   **section}, num_labels=3))
    assert models[0].config.quarf_stage == models[1].config.quarf_stage == 1
    assert models[0].segformer.quarf.in_channels == segformer_config()["hidden_sizes"][1]
    first, second = (model.state_dict() for model in models)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_training_width_is_checked_against_the_stage():
    section = {"type": "quarf_segformer", "quality": "brisque", "config": segformer_config()}
    model = build_model({**section, "quarf": {"width": 8}}, num_labels=3)  # stage 0's width: accepted
    assert model.segformer.quarf.in_channels == 8
    with pytest.raises(ValueError, match=r"^model\.quarf\.width: expected stage 0's hidden size 8, found 16$"):
        build_model({**section, "quarf": {"width": 16}}, num_labels=3)


def test_restoration_from_base_inserts_the_block_at_its_identity(tmp_path):
    """Independent reference: the base's own reconstruction. A block that sets nothing keeps the base
    as it is; one that does gives a new block (here routed) on the base's UNet weights."""
    torch.manual_seed(0)
    base = new_quarf_model("quarf_restoration", RESTORATION, BlockSpec(quality="brisque", conditioning="none")).eval()
    with torch.no_grad():  # a trained-looking UNet: the base's outputs are not the input
        for parameter in base.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    base.save_pretrained(tmp_path / "base")
    kept = quarf_model_from_base("quarf_restoration", tmp_path / "base", BlockSpec())
    assert kept.config.conditioning == "none"
    routed = quarf_model_from_base("quarf_restoration", tmp_path / "base",
                                   BlockSpec(settings={"num_groups": 4}, conditioning="route")).eval()
    assert routed.config.conditioning == "route" and routed.config.quarf["num_groups"] == 4
    pixels = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = base(pixel_values=pixels).reconstruction
        assert not torch.allclose(expected, pixels, atol=1e-3)
        torch.testing.assert_close(routed(pixel_values=pixels).reconstruction, expected, atol=1e-6, rtol=0)


def test_training_does_not_import_the_publishing_module():
    """Training takes its model factory from quarf_hf.building, not from `quarf-hf build`'s module."""
    code = ("import sys, quarf_hf.training, quarf_hf.training.models, quarf_hf.training.segmentation; "
            "print('quarf_hf.hub.build' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert found.stdout.strip() == "False"
