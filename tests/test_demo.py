"""``quarf-hf demo --task segmentation``: the four SegFormer arms, end to end, on a short budget; a hit
time cap aborts. The restoration demo (the default) is tests/test_demo_restoration.py."""

import json
import shlex
from pathlib import Path

import pytest
from PIL import Image

from quarf_hf.cli import build_parser, main
from quarf_hf.demo.segmentation import ARM_NAMES, BUDGETS, arm_configs
from quarf_hf.training import load_train_config

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = load_train_config(REPO / "configs" / "quarf.yaml").evaluation


@pytest.mark.parametrize("arm", ARM_NAMES)
def test_demo_arms_are_the_configs_arms(arm, tmp_path):
    """The full demo trains what configs/ describes: same model, augmentation, data, held-out
    evaluation and recipe (only the output folder and checkpointing differ); --quick changes only
    the steps, the image size and the number of validation scenes."""
    config = load_train_config(REPO / "configs" / f"{arm}.yaml")
    demo = arm_configs(tmp_path)[arm]
    assert demo.max_minutes is None and demo.checkpoint_every == 0  # every arm trains all its steps
    assert demo.output_dir == str(tmp_path / arm)
    assert config.evaluation == HELD_OUT  # every arm is evaluated on the same held-out kinds
    for key in ("task", "model", "augmentation", "evaluation", "data", "seed", "max_steps", "batch_size",
                "learning_rate", "schedule", "warmup_steps"):
        assert getattr(config, key) == getattr(demo, key), key
    quick = BUDGETS["quick"]
    short = arm_configs(tmp_path, seed=2, steps=quick["steps"], validation_images=quick["validation_images"],
                        size=quick["size"])[arm]
    assert short.max_steps == 300 and short.seed == config.seed + 2 and short.model == config.model
    assert short.data["train"]["size"] == short.data["validation"]["size"] == 48
    assert short.data["validation"]["num_samples"] == 32
    assert short.data["train"]["seed"] == config.data["train"]["seed"] + 2


def test_every_config_arm_is_in_the_demo():
    """A new arm file in configs/ (any training config but the studies) is trained by the demo too."""
    arms = {p.stem for p in (REPO / "configs").glob("*.yaml") if not p.stem.startswith("study")}
    assert arms == set(ARM_NAMES)


@pytest.mark.slow
def test_demo_runs_four_arms_and_writes_a_loadable_quarf_model(tmp_path, capsys):
    from transformers import AutoModelForSemanticSegmentation, pipeline

    out = tmp_path / "demo"
    assert main(["demo", "--task", "segmentation", "--quick", "--steps", "20", "--max-minutes", "60", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = json.loads((out / "comparison.json").read_text())
    assert [row["arm"] for row in rows] == ["baseline", "data augmentation", "static mixture + data augmentation",
                                            "QuARF + data augmentation"]
    assert "one run (one seed)" in printed and "docs/study.md" in printed
    for row in rows:
        assert row["steps"] == 20 and 0 <= row["clean"] <= 1 and 0 <= row["degraded"] <= 1
        assert set(HELD_OUT["corruptions"]) <= set(row)
    assert (out / "comparison.md").read_text().strip() in printed
    assert Image.open(out / "comparison.png").size[0] > 100
    assert (out / "quarf" / "evaluation" / "routing_vs_severity.png").is_file()
    assert not (out / "baseline" / "evaluation" / "routing_vs_severity.png").exists()
    static = AutoModelForSemanticSegmentation.from_pretrained(out / "static" / "model", trust_remote_code=True)
    assert static.config.quality == {"type": "constant", "dim": 36}
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


@pytest.mark.parametrize("task", ["segmentation", "restoration"])
@pytest.mark.parametrize("flag, value", [("--max-minutes", "-1"), ("--steps", "0"), ("--seed", "-1"), ("--threads", "0"),
                                         ("--task", "depth")])
def test_demo_rejects_a_bad_flag_in_one_line(tmp_path, capsys, flag, value, task):
    args = ["demo", "--task", task, flag, value, "--out", str(tmp_path / "x")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and value in err
    assert not (tmp_path / "x").exists()


def test_a_hit_time_cap_aborts_the_demo_instead_of_comparing_unequal_arms(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--task", "segmentation", "--quick", "--steps", "1000", "--max-minutes", "0.001", "--out", str(out)]) == 3
    printed = capsys.readouterr().out
    assert "the arms would be unequally trained" in printed and "of 1000 steps of arm 'baseline'" in printed
    assert not (out / "comparison.json").exists() and not (out / "augmentation").exists()
