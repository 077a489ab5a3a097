"""Every bad input refused up front, in one line (values that would otherwise pass silently are rows too).

The tables of bad inputs live in one file per entry point: test_bad_inputs_block.py (the QuARF block),
test_bad_inputs_models.py (the models, their configs and the image-to-image pipeline),
test_bad_inputs_quality.py (quality extraction), test_bad_inputs_data.py (corruptions, datasets and
``evaluate_model``), test_bad_inputs_training.py (training configs), test_bad_inputs_hub.py (``build`` and
``convert-contrique`` as functions) and test_bad_inputs_cli.py (every command). bad_input_world.py makes the
tiny models, images, datasets and damaged files they refer to (the ``bad_input_world`` fixture, made once)
and holds what each kind of row asserts. This file counts the rows and holds what is not a row: a bug keeps
its traceback, and the rules that replace a refusal (what a bad-looking input now gives).
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import quarf_hf  # noqa: F401 - registers the Auto classes
from bad_input_world import train_config
from quarf_hf import extract_quality
from quarf_hf.cli import main
from tiny_models import make_quarf_segformer

API_TABLES = ["block", "models", "quality", "data", "training", "hub"]


@pytest.fixture
def world(bad_input_world):
    """The tables' world, under the short name the tests below use."""
    return bad_input_world


def test_table_size():
    """At least 150 bad inputs, ids unique in each table; the counts by entry point are printed."""
    api_tables = [importlib.import_module(f"test_bad_inputs_{name}").API for name in API_TABLES]
    cli = importlib.import_module("test_bad_inputs_cli").CLI
    api = Counter(row[1] for table in api_tables for row in table)
    commands = Counter(row[0].removeprefix("FILE: ").split()[0] for row in cli)
    print("API:", dict(api), "CLI:", dict(commands), "total:", sum(api.values()) + len(cli))
    assert sum(api.values()) + len(cli) >= 150
    for table in [*api_tables, cli]:
        assert len({row[0] for row in table}) == len(table)


# ----------------------------------------------------------------------------------------------
# Bugs are not user errors: a programming error keeps its traceback.


def test_cli_shows_a_traceback_for_a_bug(monkeypatch):
    import quarf_hf.commands.bench as bench

    def broken(args):
        return len(5)  # TypeError: a bug, not bad input

    monkeypatch.setattr(bench, "run_bench", broken, raising=False)
    from quarf_hf.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["bench", "--list"])
    args.func = broken
    monkeypatch.setattr("quarf_hf.cli.build_parser", lambda: _FixedParser(args))
    with pytest.raises(TypeError, match="has no len"):
        main(["bench"])


class _FixedParser:
    def __init__(self, args):
        self.args = args

    def parse_args(self, argv):
        return self.args

    def print_help(self):
        pass


# ----------------------------------------------------------------------------------------------
# The rules that replace refusals: what a bad-looking input now gives.


def test_integer_pixels_are_0_255_in_every_width(world):
    """int32, int64 and uint8 tensors give the features of the same image as floats / 255 (independent reference)."""
    image = torch.randint(0, 256, (1, 3, 64, 64))
    reference = world["contrique"](pixel_values=image.float() / 255).quality_features
    for dtype in (torch.uint8, torch.int32, torch.int64):
        torch.testing.assert_close(world["contrique"](pixel_values=image.to(dtype)).quality_features, reference)
    as_array = extract_quality(image[0].permute(1, 2, 0).numpy().astype(np.int32))
    torch.testing.assert_close(as_array, extract_quality(image[0].float() / 255))


def test_rounding_outside_unit_range_is_clamped(world):
    image = torch.rand(1, 3, 64, 64)
    nudged = image.clone()
    nudged[..., 0, 0] = 1 + 1e-3  # under half an 8-bit step
    clamped = nudged.clamp(0, 1)
    torch.testing.assert_close(world["contrique"](pixel_values=nudged).quality_features,
                               world["contrique"](pixel_values=clamped).quality_features)


def test_hard_mode_empty_batch(world):
    for block in (world["block"], world["hard_block"]):
        out, weights = block(torch.rand(0, 8, 6, 6), torch.rand(0, 4), return_routing=True)
        assert out.shape == (0, 8, 6, 6) and weights.shape == (0, 4, 4)


def test_restoration_runs_below_the_quality_minimum(world):
    """A 5x7 image runs (the quality model sees a documented bicubic upscale); still the identity at init."""
    image = torch.rand(1, 3, 5, 7)
    out = world["res"](pixel_values=image).reconstruction
    assert out.shape == image.shape
    torch.testing.assert_close(out, image)


def test_pipeline_without_trust_remote_code(world):
    from transformers import pipeline

    restorer = pipeline("quarf-restoration", model=str(world["res_dir"]))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8))
    assert restorer(image).size == (11, 9)


def test_evaluate_skip_bad_lists_what_it_skipped(world, tmp_path, capsys):
    out = tmp_path / "eval"
    status = main(["evaluate", str(world["seg_dir"]), "--dataset", str(world["ds_text"]), "--split", "train",
                   "--corruptions", "gaussian_noise", "--severities", "1", "--out", str(out), "--no-progress",
                   "--skip-bad"])
    assert status == 0
    assert "skipped" in capsys.readouterr().err and "b.png" in capsys.readouterr().err + json.dumps(
        json.loads((out / "results.json").read_text()).get("skipped"))
    results = json.loads((out / "results.json").read_text())
    assert results["num_images"] == 1 and results["skipped"][0]["item"].endswith("b.png")


def test_evaluate_takes_the_models_classes(world, tmp_path):
    """ds_good's masks hold classes 0-2 of the 3-class model; a 5-class model is evaluated over its 5 classes."""
    folder = tmp_path / "five"
    make_quarf_segformer(num_labels=5).save_pretrained(folder)
    out = tmp_path / "eval"
    assert main(["evaluate", str(folder), "--dataset", str(world["ds_good"]), "--split", "train", "--corruptions",
                 "gaussian_noise", "--severities", "1", "--out", str(out), "--no-progress"]) == 0
    assert len(json.loads((out / "results.json").read_text())["clean"]["per_class_iou"]) == 5


def test_train_skip_bad_lists_what_it_skipped(world, tmp_path, capsys):
    from quarf_hf.training import TrainConfig, train

    data = train_config(data={"train": {"type": "folder", "path": str(world["ds_text"]), "split": "train",
                                              "num_labels": 3}}, batch_size=1)
    data["output_dir"] = str(tmp_path / "run")
    summary = train(TrainConfig.from_dict(data), skip_bad=True)
    assert summary["steps"] == 1
    assert [Path(entry["item"].split()[-1]).name for entry in summary["skipped"]] == ["b.png"]
    assert "skipped data.train" in capsys.readouterr().out
