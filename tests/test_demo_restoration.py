"""``quarf-hf demo`` (default task: restoration): the four restoration arms, their held-out test
(photos and kinds), the table, the picture grid, QuARF's routing and the model folders the Space loads."""

import json
from pathlib import Path

import pytest
from PIL import Image

from quarf_hf.cli import main
from quarf_hf.data.photos import photo_names
from quarf_hf.degradations.gallery import HEADER_HEIGHT, LABEL_WIDTH
from quarf_hf.demo import restoration
from quarf_hf.demo.restoration import ARM_NAMES, TEST_KINDS, arm_configs
from quarf_hf.training import load_train_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "restoration"
# a budget for the end-to-end tests: 2 steps, 2 test crops of 64 px, 64-px picture tiles
TINY = {"minutes": 10.0, "steps": 2, "severities": (2, 4), "crop_size": 64, "test_crops": 2, "grid_crop": 64}


@pytest.mark.parametrize("arm", ARM_NAMES)
def test_demo_arms_are_the_configs_arms_evaluated_on_the_test_photos(arm, tmp_path):
    """Each arm is its configs/restoration file (model, augmentation, training data, seed, recipe);
    only the output folder, checkpointing and the evaluation change: the test photos under the
    held-out kinds."""
    config = load_train_config(CONFIGS / f"{arm}.yaml")
    demo = arm_configs(tmp_path)[arm]
    assert demo.output_dir == str(tmp_path / "restoration" / arm)
    assert demo.max_minutes is None and demo.checkpoint_every == 0 and demo.eval_every == 0
    for key in ("task", "model", "augmentation", "seed", "max_steps", "batch_size", "learning_rate", "schedule",
                "warmup_steps"):
        assert getattr(config, key) == getattr(demo, key), key
    assert demo.data["train"] == config.data["train"]
    assert demo.data["validation"] == {"type": "photos", "split": "test", "crop_size": 128}
    assert demo.evaluation == {"corruptions": list(TEST_KINDS), "severities": [2, 4], "reference_size": None}
    shifted = arm_configs(tmp_path, seed=3, steps=7, severities=(3,), test_crops=5)[arm]
    assert shifted.seed == config.seed + 3 and shifted.max_steps == 7
    assert shifted.data["train"]["seed"] == config.data["train"].get("seed", 0) + 3
    assert shifted.data["validation"] == {"type": "photos", "split": "test", "crop_size": 128, "crops": "random",
                                          "num_samples": 5, "seed": 3}


def test_the_held_out_kinds_are_neither_training_nor_development_kinds():
    """The test kinds were chosen on nothing: not trained on, not used by the configs' evaluation."""
    configs = [load_train_config(CONFIGS / f"{arm}.yaml") for arm in ARM_NAMES]
    for config in configs:
        assert not set(TEST_KINDS) & set(config.augmentation["corruptions"])
        assert not set(TEST_KINDS) & set(config.evaluation["corruptions"])
    # one architecture and seed: the same initial UNet in every arm
    assert len({(c.seed, str(c.model["config"]["block_out_channels"])) for c in configs}) == 1
    assert photo_names("test") == ["chelsea", "coffee"]


def test_the_restoration_demo_end_to_end_on_a_tiny_budget(tmp_path, capsys, monkeypatch):
    from transformers import AutoModel

    monkeypatch.setitem(restoration.BUDGETS, "quick", TINY)
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0  # no --task: restoration is the default
    printed = capsys.readouterr().out
    root = out / "restoration"
    results = json.loads((root / "results.json").read_text())

    # the table: the identity's row (the floor), then the four arms, each kind and the mean
    assert [row["arm"] for row in results["table"]] == ["identity", "plain", "static", "film", "quarf"]
    table = (root / "comparison.md").read_text().strip()
    assert table in printed
    lines = table.splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == [restoration.IDENTITY, "plain", "static", "FiLM", "QuARF"]
    assert all(kind in lines[0] for kind in TEST_KINDS)
    for row in results["table"]:
        assert set(row["kinds"]) == set(TEST_KINDS) and 0 < row["mean"]["ssim"] <= 1 and row["mean"]["psnr"] > 0
        assert row["steps"] == (None if row["arm"] == "identity" else 2)
    identity = results["table"][0]["mean"]
    plain_evaluation = json.loads((root / "plain" / "evaluation" / "results.json").read_text())
    assert identity["psnr"] == pytest.approx(plain_evaluation["identity"]["mean_corrupted"]["psnr"])

    # QuARF's routing per kind and severity: one weight per expert, summing to one
    routing = results["routing"]
    assert len(routing["experts"]) == 4 and set(routing["corruptions"]) == set(TEST_KINDS)
    for by_severity in routing["corruptions"].values():
        assert set(by_severity) == {"2", "4"}
        assert all(sum(weights) == pytest.approx(1, abs=1e-6) for weights in by_severity.values())
    assert "RF " in printed and "zoom_blur s4" in printed
    assert (root / "quarf" / "evaluation" / "routing_vs_severity.png").is_file()

    # the picture: one row per held-out kind, six columns (degraded, four arms, clean)
    grid = Image.open(root / "grid.png")
    assert grid.size == (LABEL_WIDTH + 6 * 64, HEADER_HEIGHT + len(TEST_KINDS) * 64)
    assert results["grid_severity"] == 4

    # the model folders the Space loads, each loadable with AutoModel
    conditioning = {"plain": "none", "static": "route", "film": "film", "quarf": "route"}
    for arm in ARM_NAMES:
        folder = root / arm / "model"
        assert results["models"][arm] == str(folder)
        model = AutoModel.from_pretrained(folder)
        assert model.config.model_type == "quarf_restoration" and model.config.conditioning == conditioning[arm]
    assert not (out / "quarf").exists()  # the segmentation demo's folders are not written

    assert "Gain over the identity (mean held-out PSNR): plain " in printed
    assert "one seed" in printed and "no difference detected" in printed and "docs/study.md" in printed
    assert f"quarf-hf space --restoration {root / 'quarf' / 'model'}" in printed


def test_a_hit_time_cap_aborts_the_restoration_demo(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(restoration.BUDGETS, "quick", TINY)  # the stopped arm's own evaluation stays short
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--steps", "1000", "--max-minutes", "0.001", "--out", str(out)]) == 3
    printed = capsys.readouterr().out
    assert "the arms would be unequally trained" in printed and "of 1000 steps of arm 'plain'" in printed
    assert not (out / "restoration" / "results.json").exists() and not (out / "restoration" / "static").exists()
