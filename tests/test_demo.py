"""``quarf-hf demo``: the three arms, end to end, on a short budget."""

import json
import shlex
from pathlib import Path

import pytest
from PIL import Image

from quarf_hf.cli import build_parser, main
from quarf_hf.commands.demo import ARMS, BUDGETS, HELD_OUT, arm_configs
from quarf_hf.training import load_train_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("arm", sorted(ARMS))
def test_demo_arms_are_the_configs_arms(arm, tmp_path):
    """The full demo trains what configs/ describes: same model, augmentation, data, held-out
    evaluation and recipe (only the output folder, time cap and checkpointing differ)."""
    config = load_train_config(REPO / "configs" / f"{arm}.yaml")
    minutes, steps, validation_images, size = BUDGETS["full"]
    demo = arm_configs(tmp_path, minutes, steps, validation_images, size)[arm]
    assert config.model == ARMS[arm]["model"] and config.augmentation == ARMS[arm]["augmentation"]
    assert config.evaluation == HELD_OUT
    for key in ("task", "model", "augmentation", "evaluation", "data", "seed", "max_steps", "batch_size",
                "learning_rate", "schedule", "warmup_steps", "load_balancing_weight"):
        assert getattr(config, key) == getattr(demo, key), key


@pytest.mark.slow
def test_demo_runs_three_arms_and_writes_a_loadable_quarf_model(tmp_path, capsys):
    from transformers import AutoModelForSemanticSegmentation, pipeline

    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--minutes", "0.4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = json.loads((out / "comparison.json").read_text())
    assert [row["arm"] for row in rows] == ["baseline", "data augmentation", "QuARF + data augmentation"]
    for row in rows:
        assert row["steps"] >= 1 and 0 <= row["clean"] <= 1 and 0 <= row["degraded"] <= 1
        assert set(HELD_OUT["corruptions"]) <= set(row)
    assert (out / "comparison.md").read_text().strip() in printed
    assert Image.open(out / "comparison.png").size[0] > 100
    assert (out / "quarf" / "evaluation" / "routing_vs_severity.png").is_file()
    assert not (out / "baseline" / "evaluation" / "routing_vs_severity.png").exists()
    folder = out / "quarf" / "model"
    assert f'from_pretrained("{folder}", trust_remote_code=True)' in printed
    # the closing lines open these models in the Space: a `quarf-hf space` line the CLI accepts
    space_line = next(line.strip() for line in printed.splitlines() if line.strip().startswith("quarf-hf space"))
    space_args = build_parser().parse_args(shlex.split(space_line)[1:])
    assert Path(space_args.model) == folder and (Path(space_args.baseline) / "config.json").is_file()
    model = AutoModelForSemanticSegmentation.from_pretrained(folder, trust_remote_code=True)
    assert model.config.model_type == "quarf_segformer" and model.config.quality["type"] == "brisque"
    segments = pipeline("image-segmentation", model=str(folder), trust_remote_code=True)(Image.new("RGB", (48, 48)))
    assert segments and {"label", "mask"} <= set(segments[0])


def test_demo_rejects_a_bad_budget(tmp_path, capsys):
    assert main(["demo", "--minutes", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "--minutes" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
