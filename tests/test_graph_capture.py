"""Graph capture of the Hub models with their quality extractor inside: torch.compile(fullgraph=True),
torch.export (strict and non-strict, dynamic batch) and ONNX (dynamo exporter, run in onnxruntime).

The reference everywhere is the same model run eagerly. The models are tiny and their weights are
nudged off their identity initialisation, so that the quality features change the output (checked):
an extractor that went wrong in the captured graph would show in the output.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from quarf_hf.models.quarf import quarf_blocks
from tiny_models import contrique_config, make_quarf_segformer, make_restoration

KINDS = ["segformer", "restoration"]
QUALITIES = ["brisque", "contrique"]


def _quality(name):
    return name if name == "brisque" else {"type": "contrique", "config": contrique_config()}


class Outputs(torch.nn.Module):
    """The model's main output and its quality features, as a tuple (what exporters take)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        out = self.model(pixel_values, return_dict=True)
        main = out.logits if hasattr(out, "logits") else out.reconstruction
        return main, out.quality_features


def opened(kind: str, quality: str) -> tuple[Outputs, torch.Tensor]:
    """A tiny model whose every weight is moved off its initialisation, and a batch of 2 inputs."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a CONTRIQUE with random weights says so
        model = (make_quarf_segformer if kind == "segformer" else make_restoration)(quality=_quality(quality))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
        for block in quarf_blocks(model):  # a router that reacts strongly to the quality features
            block.router.route_linear.weight.normal_(0.0, 3.0)
    pixels = torch.randn(3, 3, 64, 64) if kind == "segformer" else torch.rand(3, 3, 32, 32)
    return Outputs(model).eval(), pixels


def assert_close(got, expected, tolerance):
    for a, b in zip(got, expected):
        a = torch.as_tensor(a)
        assert a.shape == b.shape
        assert (a - b.detach()).abs().max().item() <= tolerance


@pytest.fixture(scope="module", params=[(k, q) for k in KINDS for q in QUALITIES], ids=lambda p: f"{p[0]}-{p[1]}")
def case(request):
    wrapper, pixels = opened(*request.param)
    with torch.no_grad():
        expected = wrapper(pixels)
        # The quality features matter: the output moves when they are replaced.
        model = wrapper.model
        moved = model(pixels, quality_features=torch.zeros_like(expected[1]), return_dict=False)[0]
    assert (moved - expected[0]).abs().max() > 2e-3  # above the tolerances of the checks below
    return wrapper, pixels, expected


# The slow tests (over ~30 s each on 2 CPU cores) cover one model kind per extractor, and ONNX three of the
# four (restoration + BRISQUE goes through ONNX in docs/export.md's block, run by tests/test_readme.py).
ONE_PER_EXTRACTOR = pytest.mark.parametrize("case", [("segformer", "brisque"), ("restoration", "contrique")],
                                            indirect=True, ids=["segformer-brisque", "restoration-contrique"])


def test_no_graph_breaks(case):
    """torch._dynamo.explain finds one graph and no break (main had 25 with BRISQUE and 5 with CONTRIQUE in
    QuARF-SegFormer, 24 and 4 in the restoration model: the value checks' tolist(), BRISQUE's out= views)."""
    wrapper, pixels, _ = case
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(wrapper)(pixels)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


@pytest.mark.slow
@ONE_PER_EXTRACTOR
def test_compile_fullgraph_equals_eager(case):
    """torch.compile(fullgraph=True) (inductor) traces the whole forward and equals eager to 1e-4."""
    wrapper, pixels, expected = case
    torch._dynamo.reset()
    compiled = torch.compile(wrapper, fullgraph=True, dynamic=False)
    with torch.no_grad():
        assert_close(compiled(pixels), expected, 1e-4)


def test_export_dynamic_batch(case):
    """Non-strict torch.export with a dynamic batch: the program equals eager at the traced batch and others."""
    check_export(case, strict=False)


@pytest.mark.slow
@ONE_PER_EXTRACTOR
def test_strict_export_dynamic_batch(case):
    """Strict (dynamo) torch.export with a dynamic batch equals eager."""
    check_export(case, strict=True)


def check_export(case, strict: bool):
    wrapper, pixels, expected = case
    batch = torch.export.Dim.DYNAMIC  # the range export finds (restoration + CONTRIQUE at 32x32: up to 63)
    program = torch.export.export(wrapper, (pixels[:2],), dynamic_shapes=({0: batch},), strict=strict)
    assert_close(program.module()(pixels), expected, 1e-4)
    with torch.no_grad():
        single = wrapper(pixels[:1])
    assert_close(program.module()(pixels[:1]), single, 1e-4)


@pytest.mark.parametrize("case", [("restoration", "brisque")], indirect=True, ids=["restoration-brisque"])
def test_export_static(case):
    """A static export (no dynamic dimension) equals eager."""
    wrapper, pixels, expected = case
    program = torch.export.export(wrapper, (pixels,), strict=False)
    assert_close(program.module()(pixels), expected, 1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("case", [("segformer", "brisque"), ("segformer", "contrique"), ("restoration", "contrique")],
                         indirect=True, ids=["segformer-brisque", "segformer-contrique", "restoration-contrique"])
def test_onnx_runs_in_onnxruntime(case, tmp_path):
    """The dynamo ONNX exporter writes a graph that onnxruntime runs, at another batch size than traced,
    equal to eager to 1e-3 (quality features included; main failed at the export step)."""
    ort = pytest.importorskip("onnxruntime")
    wrapper, pixels, expected = case
    batch = torch.export.Dim.DYNAMIC  # the range export finds (restoration + CONTRIQUE at 32x32: up to 63)
    program = torch.onnx.export(wrapper, (pixels[:2],), dynamo=True, dynamic_shapes=({0: batch},),
                                input_names=["pixel_values"], output_names=["main", "quality_features"], verbose=False)
    path = tmp_path / "model.onnx"
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"pixel_values": pixels.numpy()})
    assert_close([torch.from_numpy(g) for g in got], expected, 1e-3)
