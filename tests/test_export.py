"""``quarf-hf export``: the written program or ONNX file, run here independently of the command, gives the
saved model's eager output; a used --out, a bad --size and a disagreeing export are refused with one line
and nothing written."""

from __future__ import annotations

import json

import pytest
import torch

from quarf_hf import export as export_module
from quarf_hf.cli import main
from tiny_models import make_restoration


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny restoration model with BRISQUE, its output layer nudged off zero (not the identity)."""
    path = tmp_path_factory.mktemp("restoration")
    torch.manual_seed(0)
    model = make_restoration()
    with torch.no_grad():
        model.conv_out.weight.normal_(0.0, 0.05)
    model.save_pretrained(path)
    return path, model


def error_lines(capsys) -> list[str]:
    """The command's error lines (stderr also holds transformers' progress bars)."""
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("quarf-hf export: error:")]


@pytest.mark.slow
def test_exported_program_matches_the_model(folder, tmp_path, capsys):
    """The .pt2 file, loaded with torch.export.load, equals the eager model on new images and batch sizes."""
    path, model = folder
    out = tmp_path / "export"
    assert main(["export", str(path), "--format", "exported-program", "--out", str(out), "--size", "32"]) == 0
    printed = capsys.readouterr().out
    assert "max difference from the eager model" in printed
    record = json.loads((out / "export.json").read_text())
    assert record["outputs"] == ["reconstruction", "quality_features"] and record["input_shape"] == ["batch", 3, 32, 32]
    program = torch.export.load(str(out / "model.pt2")).module()
    pixels = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model(pixels)
        reconstruction, quality = program(pixels)
    assert (reconstruction - expected.reconstruction).abs().max() <= 1e-4
    assert (quality - expected.quality_features).abs().max() <= 1e-4
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.pt2"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no staging folder left


def test_used_out_is_refused_and_overwrite_replaces_only_an_export(folder, tmp_path, capsys):
    """A folder with the user's files is refused, with --overwrite too (it replaces only an earlier export)."""
    path, _ = folder
    used = tmp_path / "used"
    used.mkdir()
    (used / "mine.txt").write_text("keep")
    for extra in ([], ["--overwrite"]):
        assert main(["export", str(path), "--format", "onnx", "--out", str(used), "--size", "32", *extra]) == 2
        error = error_lines(capsys)
        assert len(error) == 1 and "--out" in error[0]
        assert [p.name for p in used.iterdir()] == ["mine.txt"]


def test_bad_size_is_refused_before_loading(folder, tmp_path, capsys):
    """A --size that is not N or HxW: one line naming it, nothing created."""
    path, _ = folder
    out = tmp_path / "out"
    assert main(["export", str(path), "--format", "onnx", "--out", str(out), "--size", "big"]) == 2
    assert "--size" in capsys.readouterr().err
    assert not out.exists()


def test_disagreeing_export_writes_nothing(folder, tmp_path, monkeypatch, capsys):
    """An export whose results are off by 0.5: one line with the difference, and --out is not created."""
    path, _ = folder

    def off_by_half(wrapper, sample, batch, file):
        file.write_bytes(b"half-written")  # inside the staging folder, which must go
        return [[output + 0.5 for output in results] for results in [wrapper(sample), wrapper(sample[:1])]]

    monkeypatch.setattr(export_module, "_export_program", off_by_half)
    out = tmp_path / "out"
    assert main(["export", str(path), "--format", "exported-program", "--out", str(out), "--size", "32"]) == 2
    error = error_lines(capsys)
    assert len(error) == 1 and "differs from the eager model by 0.5" in error[0]
    assert list(tmp_path.iterdir()) == []
