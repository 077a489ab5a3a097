"""Graph capture of an adapter-attached network: ``torch.compile(fullgraph=True)``
with no graph break, ``torch.export`` (strict and non-strict, static and dynamic batch) and ONNX
through the dynamo exporter, run in onnxruntime.

The reference is the same network's eager forward (<= 1e-4; onnxruntime <= 1e-3). The ``constant``
quality type proves the adapter's own part (its forward wrapper and block hooks); BRISQUE and a tiny
CONTRIQUE need capture-friendly extractors as well. CONTRIQUE's weights are kept out of the network's
parameters, which strict export alone lifts: the holder traces it through a parameter-free view.
"""

import sys
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DModel

from quarf_hf import insert_quarf

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models  # noqa: E402

QUALITIES = ["constant", "brisque", "contrique"]


def quality_of(kind):
    if kind == "constant":
        return {"type": "constant", "dim": 8}
    if kind == "contrique":
        return tiny_models.make_contrique()
    return kind


class Denoiser(torch.nn.Module):
    """The UNet called as a sampler calls it (a fixed timestep), so that export sees one tensor input."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet.eval()

    def forward(self, sample):
        return self.unet(sample, timestep=10).sample


def attached(kind):
    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
    ).eval()
    adapter = insert_quarf(unet, after="conv_in", quality=quality_of(kind), pixel_mean=0.5, pixel_std=0.5)
    with torch.no_grad():  # blocks that matter (at insertion they are the identity)
        for parameter in adapter.blocks.parameters():
            parameter.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    sample = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        assert (unet(sample, timestep=10).sample - adapter.unload()(sample, timestep=10).sample).abs().max() > 1e-3
    adapter.attach(unet)
    return Denoiser(unet).eval(), sample


@pytest.mark.parametrize("kind", QUALITIES)
@pytest.mark.slow  # a trace or an export per case: seconds each, minutes on a loaded CPU
def test_compile_fullgraph_without_graph_breaks(kind):
    """The adapter's ContextVar hooks broke fullgraph compilation; torch._dynamo.explain counts
    the breaks, and the compiled forward equals eager."""
    model, sample = attached(kind)
    torch._dynamo.reset()
    with torch.no_grad():
        eager = model(sample)
        explanation = torch._dynamo.explain(model.unet)(sample, timestep=10)
        assert explanation.graph_break_count == 0 and explanation.graph_count == 1, explanation.break_reasons
        torch._dynamo.reset()
        compiled = torch.compile(model.unet, fullgraph=True, backend="aot_eager")(sample, timestep=10).sample
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=0)


@pytest.mark.slow  # a trace or an export per case: seconds each, minutes on a loaded CPU
@pytest.mark.parametrize("strict", [True, False], ids=["strict", "non-strict"])
@pytest.mark.parametrize("kind", QUALITIES)
def test_torch_export_static_and_dynamic_batch(kind, strict):
    """torch.export with a static and a dynamic batch; the exported program equals eager on a new batch size too.
    Strict export with BRISQUE failed before: the extractor's tables were named through the network's forward
    wrapper (``unet.forward.holder...``), which ExportedProgram.module() could not put back. Strict export with
    CONTRIQUE failed (a KeyError on the extractor's first weight in torch.export's _trace.py): its weights are outside
    the network's parameters."""
    model, sample = attached(kind)
    with torch.no_grad():
        eager = model(sample)
        program = torch.export.export(model, (sample,), strict=strict)
        torch.testing.assert_close(program.module()(sample), eager, atol=1e-4, rtol=0)
        batch = torch.export.Dim("batch", min=1, max=8)
        program = torch.export.export(model, (sample,), dynamic_shapes={"sample": {0: batch}}, strict=strict)
        three = torch.cat([sample, sample[:1].flip(-1)])
        torch.testing.assert_close(program.module()(three), model(three), atol=1e-4, rtol=0)


@pytest.mark.slow  # a trace or an export per case: seconds each, minutes on a loaded CPU
@pytest.mark.parametrize("strict", [True, False], ids=["strict", "non-strict"])
@pytest.mark.parametrize("kind", QUALITIES)
def test_torch_export_of_the_attached_network_itself(kind, strict):
    """torch.export.export(network, ...) called on the attached network itself (not a module around it), dynamic
    batch: it failed before, as export reads ``network.forward.__code__`` and the wrapped forward had none."""
    model, sample = attached(kind)
    unet = model.unet
    three = torch.cat([sample, sample[:1].flip(-1)])
    with torch.no_grad():
        batch = torch.export.Dim("batch", min=1, max=8)
        program = torch.export.export(unet, (sample,), {"timestep": 10}, strict=strict,
                                      dynamic_shapes={"sample": {0: batch}, "timestep": None})
        for pixels in (sample, three):
            torch.testing.assert_close(program.module()(pixels, timestep=10).sample, unet(pixels, timestep=10).sample,
                                       atol=1e-4, rtol=0)


@pytest.mark.slow  # a trace or an export per case: seconds each, minutes on a loaded CPU
@pytest.mark.parametrize("kind", QUALITIES)
def test_onnx_dynamo_export_runs_in_onnxruntime(kind, tmp_path):
    """The dynamo ONNX exporter writes the network with its blocks and extractor; onnxruntime's output equals eager."""
    import onnxruntime

    model, sample = attached(kind)
    with torch.no_grad():
        eager = model(sample)
        torch.onnx.export(model, (sample,), dynamo=True, verbose=False).save(str(tmp_path / "model.onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: sample.numpy()})
    torch.testing.assert_close(torch.from_numpy(output), eager, atol=1e-3, rtol=0)


def test_hooked_module_traced_alone_still_raises():
    """Under capture too, the module a block follows, traced on its own, refuses instead of using a stale vector."""
    model, sample = attached("constant")
    with torch.no_grad():
        model(sample)
        with pytest.raises(Exception, match="runs only inside a forward of the UNet2DModel"):
            torch.export.export(model.unet.conv_in, (sample,), strict=False)


def test_eager_guarantees_hold_after_capture():
    """After compiling and exporting, eager forwards still keep per-call state: the stack used while tracing
    is empty, routing is recorded, and the hooked module alone raises."""
    model, sample = attached("constant")
    holder = model.unet.quarf_conv_in_quality
    with torch.no_grad():
        torch.export.export(model, (sample,), strict=False)
        assert holder._captured == []
        model(sample)
    with pytest.raises(RuntimeError, match="runs only inside a forward"):
        model.unet.conv_in(sample)


def test_strict_export_view_of_contrique_shares_its_weights():
    """What strict export traces in place of CONTRIQUE (QuarfExtractorHolder's view): no parameters, the
    extractor's own memory, the extractor's features exactly; and still nothing of it in the network's
    parameters or state dict (the reason it is not a submodule). It follows weights assigned from outside
    (``load_state_dict(assign=True)`` replaces the tensors) at the next eager forward."""
    model, sample = attached("contrique")
    unet = model.unet
    holder = unet.quarf_conv_in_quality
    extractor, view = holder.extractor, holder._export_view
    assert list(view.parameters()) == [] and len(list(extractor.parameters())) > 0
    pointers = {parameter.data_ptr() for parameter in extractor.parameters()}
    assert {tensor.data_ptr() for tensor in view.buffers()} >= pointers
    network_parameters = {id(parameter) for parameter in unet.parameters()}
    assert not any(id(parameter) in network_parameters for parameter in extractor.parameters())
    assert not any("quarf_conv_in_quality" in name for name in unet.state_dict())
    pixels = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))  # CONTRIQUE's smallest image
    with torch.no_grad():
        assert torch.equal(view(pixels), extractor(pixels))
        model(sample)
        assert holder._export_view is view, "an eager forward keeps a current view"
        replaced = {name: tensor + 0.1 if tensor.is_floating_point() else tensor
                    for name, tensor in extractor.state_dict().items()}
        extractor.load_state_dict(replaced, assign=True)
        assert not torch.equal(holder._export_view(pixels), extractor(pixels))
        model(sample)
        assert torch.equal(holder._export_view(pixels), extractor(pixels))
