"""`quarf-hf export`'s library: a model with its quality extractor inside as one ONNX file or one
``torch.export`` program, checked against the eager model before anything is written.

The exported graph takes ``pixel_values`` (batch, 3, H, W) at the size given (the batch size is
dynamic; the extractor's resize tables are fixed per size) and returns the model's main output
(``logits`` or ``reconstruction``) and its ``quality_features``. ``export.json`` beside it says
how to feed it: the size, the pixel normalisation and the output names.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_folder
from .evaluation.pixels import model_pixel_normalisation
from .models.checks import InputError
from .outputs import check_model_folder
from .tasks import task_of

FORMATS = {"onnx": "model.onnx", "exported-program": "model.pt2"}
# How far the exported result may be from the eager model's (ONNX Runtime fuses and reorders float ops).
TOLERANCE = {"onnx": 1e-3, "exported-program": 1e-4}
MARKER = "export.json"


class ExportedOutputs(nn.Module):
    """``model(pixel_values)`` as a tuple (main output, quality features), what exporters take."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.main_name = task_of(model).output

    def forward(self, pixel_values: torch.Tensor):
        output = self.model(pixel_values, return_dict=True)
        return getattr(output, self.main_name), output.quality_features


def check_out_folder(out, overwrite: bool) -> Path:
    """``out`` as a Path, refused when it holds anything but an earlier export (replaced only with ``overwrite``)."""
    check_model_folder(out, "--out", overwrite, holds=MARKER, what="earlier export")
    return Path(out)


def sample_pixels(model: nn.Module, size: tuple[int, int], batch: int = 2) -> torch.Tensor:
    """A fixed batch of random images in the model's pixel convention (normalised for segmentation)."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand(batch, 3, *size, generator=generator)
    mean, std = model_pixel_normalisation(model)
    return (pixels - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


def _max_difference(got, expected) -> float:
    return max(float((torch.as_tensor(g) - e).abs().max()) for g, e in zip(got, expected))


def export_model(model: nn.Module, fmt: str, out, *, size: tuple[int, int] = (512, 512), overwrite: bool = False,
                 source: str | None = None, revision: str | None = None) -> dict:
    """Exports ``model`` (eval mode, CPU) as ``fmt`` into the folder ``out``, runs the result on a sample next to
    the eager model and writes it only when they agree to :data:`TOLERANCE`. Returns the record written to
    ``out/export.json`` (its ``max_difference`` included)."""
    if fmt not in FORMATS:
        raise InputError(f"--format: expected one of {', '.join(FORMATS)}, found {fmt!r}")
    out = check_out_folder(out, overwrite)
    model = model.eval().to("cpu")
    wrapper = ExportedOutputs(model).eval()
    sample = sample_pixels(model, size)
    with torch.no_grad():
        expected = [wrapper(sample), wrapper(sample[:1])]
    batch = torch.export.Dim.DYNAMIC  # any batch size the graph allows (export finds the range)
    with atomic_folder(out) as staging:
        path = Path(staging) / FORMATS[fmt]
        if fmt == "onnx":
            results = _export_onnx(wrapper, sample, batch, path)
        else:
            results = _export_program(wrapper, sample, batch, path)
        difference = max(_max_difference(got, want) for got, want in zip(results, expected))
        if not difference <= TOLERANCE[fmt]:
            raise InputError(f"MODEL: the {fmt} export differs from the eager model by {difference:.3g} "
                             f"(more than {TOLERANCE[fmt]:g}); nothing was written")
        mean, std = model_pixel_normalisation(model)
        record = {
            "format": fmt, "file": FORMATS[fmt], "model": source, "revision": revision,
            "model_type": model.config.model_type, "input": "pixel_values",
            "input_shape": ["batch", 3, *size], "outputs": [wrapper.main_name, "quality_features"],
            "pixel_mean": mean, "pixel_std": std, "max_difference": difference, "tolerance": TOLERANCE[fmt],
        }
        (Path(staging) / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def _export_onnx(wrapper, sample, batch, path: Path) -> list:
    import onnxruntime

    program = torch.onnx.export(wrapper, (sample,), dynamo=True, dynamic_shapes=({0: batch},), verbose=False,
                                input_names=["pixel_values"], output_names=[wrapper.main_name, "quality_features"])
    program.save(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [[torch.from_numpy(o) for o in session.run(None, {"pixel_values": pixels.numpy()})]
            for pixels in (sample, sample[:1])]


def _export_program(wrapper, sample, batch, path: Path) -> list:
    program = torch.export.export(wrapper, (sample,), dynamic_shapes=({0: batch},), strict=False)
    torch.export.save(program, str(path))
    loaded = torch.export.load(str(path)).module()
    with torch.no_grad():
        return [loaded(pixels) for pixels in (sample, sample[:1])]


def parse_size(text: str) -> tuple[int, int]:
    """``"512"`` or ``"512x384"`` (height x width) -> (height, width)."""
    parts = str(text).lower().split("x")
    try:
        size = tuple(int(part) for part in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise InputError(f"--size: expected N or HxW in pixels (e.g. 512 or 512x384), found {text!r}")
    return size


__all__ = ["export_model", "check_out_folder", "parse_size", "ExportedOutputs", "FORMATS", "TOLERANCE"]
