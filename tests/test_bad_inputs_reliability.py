"""Bad input that used to pass silently or fail deep inside a library (issue 24): one table, by entry point.

Each row: (id, entry point, call, expected exception type, text the one-line message must hold). The
call gets ``w`` (shared tiny models and files, made once) and a fresh output folder.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from quarf_hf import (
    QuARF,
    QuarfRestorationConfig,
    QuarfRestorationModel,
    QuarfSegformerConfig,
    QuarfSegformerForSemanticSegmentation,
    extract_quality,
    insert_quarf,
)
from quarf_hf.models.conditioning import quality_vector
from quarf_hf.models.quality import build_quality_extractor

TINY = dict(hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1],
            decoder_hidden_size=16, num_labels=3)


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_reliability")
    torch.manual_seed(0)
    segformer = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(**TINY, quality="brisque")).eval()
    segformer.save_pretrained(root / "seg")
    damaged = root / "damaged"
    shutil.copytree(root / "seg", damaged)
    (damaged / "model.safetensors").write_bytes(b"not a safetensors file" * 4)
    typed = root / "typed"
    shutil.copytree(root / "seg", typed)
    config = json.loads((typed / "config.json").read_text())
    config["hidden_sizes"] = "abc"
    (typed / "config.json").write_text(json.dumps(config))
    custom = root / "custom"
    shutil.copytree(root / "seg", custom)
    config = json.loads((custom / "config.json").read_text())
    config["model_type"] = "someone_elses_model"
    (custom / "config.json").write_text(json.dumps(config))
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(root / "ok.png")
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(root / "small.png")
    restoration = QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[8, 16], quality="brisque")).eval()
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1)).eval()
    insert_quarf(cnn, after="0", quality="brisque", num_groups=2)
    shrink = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.AdaptiveAvgPool2d(0)).eval()
    insert_quarf(shrink, after="1", channels=8, quality="brisque", num_groups=2)
    return {"root": root, "seg": segformer, "res": restoration, "cnn": cnn, "shrink": shrink,
            "block": QuARF(8, quality_dim=36, num_groups=2)}


def _cli(*args):
    def call(w, out):
        from quarf_hf.cli import main, user_error_message

        resolved = [str(w["root"] / a[1:]) if a.startswith("@") else a for a in args]
        try:
            code = main([*resolved, "--out", str(out)])
        except SystemExit as err:  # argparse
            code = err.code
        if code == 2:
            raise CliError(CAPTURED.get("line", ""))
        return code
    return call


class CliError(Exception):
    pass


CAPTURED: dict = {}


def _api_load(folder):
    return lambda w, out: QuarfSegformerForSemanticSegmentation.from_pretrained(w["root"] / folder)


ROWS = [
    # ---- the QuARF block
    ("block NaN quality", "QuARF block", lambda w, o: w["block"].eval()(torch.rand(1, 8, 8, 8), torch.full((1, 36), float("nan"))),
     ValueError, "quality_features: expected finite values, found NaN"),
    ("block inf quality", "QuARF block", lambda w, o: w["block"].eval()(torch.rand(1, 8, 8, 8), torch.full((1, 36), float("inf"))),
     ValueError, "found inf"),
    ("block empty map", "QuARF block", lambda w, o: w["block"].eval()(torch.rand(1, 8, 0, 4), torch.rand(1, 36)),
     ValueError, "empty 0x4 feature map"),
    # ---- an adapter inside someone else's network
    ("adapter 0-255 floats", "adapter", lambda w, o: w["cnn"](torch.full((1, 3, 32, 32), 200.0)),
     ValueError, "look like 0-255"),
    ("adapter NaN pixels", "adapter", lambda w, o: w["cnn"](torch.full((1, 3, 32, 32), float("nan"))),
     ValueError, "finite pixel values"),
    ("adapter empty map names block", "adapter", lambda w, o: w["shrink"](torch.rand(1, 3, 32, 32)),
     ValueError, "the QuARF block after '1': x: the QuARF block got an empty 0x0 feature map"),
    ("adapter unknown quality name", "adapter", lambda w, o: insert_quarf(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1)), after="0", quality="niqe"),
     ValueError, "unknown quality extractor 'niqe'"),
    # ---- QuARF-SegFormer and the restoration model
    ("segformer 0-255 floats", "QuARF-SegFormer", lambda w, o: w["seg"](pixel_values=torch.full((1, 3, 32, 32), 200.0)),
     ValueError, "image processor"),
    ("restoration NaN quality", "restoration", lambda w, o: w["res"](pixel_values=torch.rand(1, 3, 16, 16),
                                                                    quality_features=torch.full((1, 36), float("nan"))),
     ValueError, "quality_features: expected finite values"),
    ("segformer damaged weights", "QuARF-SegFormer", _api_load("damaged"), ValueError, "model.safetensors: not a readable safetensors file"),
    ("segformer badly typed config", "QuARF-SegFormer", _api_load("typed"), ValueError, "config.json: "),
    # ---- quality functions
    ("quality_vector 0-255", "quality", lambda w, o: quality_vector(build_quality_extractor("brisque"), torch.full((1, 3, 32, 32), 255.0)),
     ValueError, "divide by 255"),
    ("extract_quality niqe", "quality", lambda w, o: extract_quality(torch.rand(3, 32, 32), extractor="niqe"),
     ValueError, "expected one of 'brisque', 'contrique', 'constant'"),
    ("extract_quality 16-bit as 8-bit", "quality", lambda w, o: extract_quality(np.full((32, 32, 3), 70000, np.int64)),
     ValueError, "0-255"),
    # ---- commands (one line, exit 2)
    ("predict damaged weights", "predict", _cli("predict", "@damaged", "@ok.png"), CliError, "model.safetensors: not a readable safetensors file"),
    ("predict badly typed config", "predict", _cli("predict", "@typed", "@ok.png"), CliError, "hidden_sizes"),
    ("predict unknown type", "predict", _cli("predict", "@custom", "@ok.png"), CliError, "Pass --trust-remote-code"),
    ("predict small second image", "predict", _cli("predict", "@seg", "@ok.png", "@small.png"), CliError, "small.png' is 8x8 pixels"),
    ("evaluate unknown type", "evaluate", _cli("evaluate", "@custom", "--data", "quarf-shapes"), CliError, "Pass --trust-remote-code"),
    ("evaluate damaged weights", "evaluate", _cli("evaluate", "@damaged", "--data", "quarf-shapes"), CliError, "not a readable safetensors file"),
]


@pytest.fixture(autouse=True)
def capture_cli_line(monkeypatch, capsys):
    """The CLI prints its one line to stderr; keep it for the CliError rows."""
    import quarf_hf.cli as cli

    original = cli.user_error_message

    def keep(err, *args, **kwargs):
        line = original(err, *args, **kwargs)
        CAPTURED["line"] = line or ""
        return line

    monkeypatch.setattr(cli, "user_error_message", keep)
    CAPTURED.clear()


@pytest.mark.parametrize("name,entry,call,error,text", ROWS, ids=[row[0] for row in ROWS])
def test_bad_input_is_one_clear_line(w, tmp_path, name, entry, call, error, text):
    with pytest.raises(error) as info:
        call(w, tmp_path / "out")
    message = str(info.value)
    assert text in message, message
    assert "\n" not in message.strip(), f"{name}: expected one line, found {message!r}"
    if entry in ("predict", "evaluate"):
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), "nothing written before the check"


def test_row_counts_by_entry_point():
    counts = {}
    for row in ROWS:
        counts[row[1]] = counts.get(row[1], 0) + 1
    assert counts == {"QuARF block": 3, "adapter": 4, "QuARF-SegFormer": 3, "restoration": 1, "quality": 3,
                      "predict": 4, "evaluate": 2}
