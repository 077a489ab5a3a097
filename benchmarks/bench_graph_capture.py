"""Speed of the captured graphs: torch.compile and onnxruntime against eager, inference on the CPU.

    python benchmarks/bench_graph_capture.py [--size 512] [--repeats 10] [--quick]

Rows (interleaved round-robin, medians, batch 1):
  - QuARF-SegFormer-b0 with BRISQUE (150 labels) and the plain transformers SegFormer-b0: eager,
    ``torch.compile`` (default inductor) and, for QuARF-SegFormer, the dynamo ONNX export run in
    onnxruntime; the ratios compiled / eager and QuARF / plain, eager and compiled;
  - the QuARF block alone (32 channels, the SegFormer-b0 stage-1 map of a 512 px image, BRISQUE's
    36-d quality vector): our soft forward eager and compiled against the reference loop
    (tests/reference_quarf.py).
``--quick``: 128 px, 2 repeats, no ONNX (a smoke run).
``--pieces``: instead, where QuARF's extra time goes: each part it adds (un-normalising and BRISQUE,
BRISQUE alone, the block on the stage-1 tokens) eager and compiled on its own, then the whole
models; with ``--profile`` also torch.profiler's top ops of both compiled models (inductor kernels
named). A probe: run it alone, with ``OMP_NUM_THREADS`` set as for the rows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_quarf import ReferenceQuARF  # noqa: E402
from timing import interleaved_medians  # noqa: E402

from quarf_hf import QuARF, QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation  # noqa: E402
from quarf_hf.models.conditioning import apply_block  # noqa: E402


def no_grad(fn, *args):
    def call():
        with torch.no_grad():
            return fn(*args)
    return call


def onnx_session(model, pixels):
    import onnxruntime

    folder = tempfile.mkdtemp(prefix="bench-onnx-")
    path = f"{folder}/model.onnx"
    torch.onnx.export(model, (pixels,), dynamo=True, verbose=False).save(path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: pixels.numpy()}
    return lambda: session.run(None, feed)


class Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values).logits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="smoke run: 128 px, 2 repeats, no ONNX")
    parser.add_argument("--pieces", action="store_true", help="time each part QuARF adds, eager and compiled alone")
    parser.add_argument("--profile", action="store_true", help="with --pieces: torch.profiler tables of the compiled models")
    args = parser.parse_args(argv)
    size, repeats = (128, 2) if args.quick else (args.size, args.repeats)
    warnings.filterwarnings("ignore")
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    quarf = Logits(QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(quality="brisque", num_labels=150))).eval()
    plain = Logits(SegformerForSemanticSegmentation(SegformerConfig(num_labels=150))).eval()
    pixels = torch.randn(1, 3, size, size)
    if args.pieces:
        return pieces(quarf, plain, pixels, repeats, args.profile)
    functions = {
        "quarf eager": no_grad(quarf, pixels),
        "plain eager": no_grad(plain, pixels),
        "quarf compiled": no_grad(torch.compile(quarf), pixels),
        "plain compiled": no_grad(torch.compile(plain), pixels),
    }
    if not args.quick:
        functions["quarf onnxruntime"] = onnx_session(quarf, pixels)
    times = interleaved_medians(functions, repeats)
    print(f"SegFormer-b0, {size}x{size}, batch 1, medians of {repeats} interleaved rounds (ms):")
    for name, seconds in times.items():
        print(f"  {name:20s} {seconds * 1000:8.1f}", flush=True)
    print(f"  compiled / eager: quarf {times['quarf compiled'] / times['quarf eager']:.2f}x, "
          f"plain {times['plain compiled'] / times['plain eager']:.2f}x")
    print(f"  quarf / plain: eager {times['quarf eager'] / times['plain eager']:.3f}x, "
          f"compiled {times['quarf compiled'] / times['plain compiled']:.3f}x")
    if "quarf onnxruntime" in times:
        print(f"  onnxruntime / eager (quarf): {times['quarf onnxruntime'] / times['quarf eager']:.2f}x")

    channels, side = 32, size // 4
    block = QuARF(channels, quality_dim=36).eval()
    reference = ReferenceQuARF(channels, quality_dim=36).eval()
    reference.load_state_dict(block.state_dict(), strict=False)
    x, q = torch.randn(1, channels, side, side), torch.randn(1, 36)
    block_times = interleaved_medians({
        "block eager": no_grad(block, x, q),
        "block compiled": no_grad(torch.compile(block), x, q),
        "reference loop": no_grad(reference, x, q),
    }, repeats)
    print(f"QuARF block, 1x{channels}x{side}x{side}, soft, inference (ms):")
    for name, seconds in block_times.items():
        print(f"  {name:20s} {seconds * 1000:8.2f}")
    print(f"  reference / ours: eager {block_times['reference loop'] / block_times['block eager']:.2f}x, "
          f"compiled {block_times['reference loop'] / block_times['block compiled']:.2f}x")
    return 0


def pieces(quarf, plain, pixels, repeats: int, profile: bool) -> int:
    """Prints each part QuARF-SegFormer adds to SegFormer, eager and compiled on its own, and the whole models."""
    model = quarf.model.segformer
    side = pixels.shape[-1] // 4
    with torch.no_grad():
        quality = model.compute_quality_features(pixels)
        tokens = model.stages[0].patch_embeddings(pixels)[0]
    unit = (pixels * torch.tensor(model.config.image_std).view(1, -1, 1, 1)
            + torch.tensor(model.config.image_mean).view(1, -1, 1, 1)).clamp(0, 1)
    parts = {
        "quality vector": (model.compute_quality_features, pixels),
        "BRISQUE alone": (model.quality_extractor, unit),
        "block on tokens": (lambda t, q: apply_block(model.quarf, t, q, (side, side)), tokens, quality),
        "whole QuARF": (quarf, pixels),
        "whole plain": (plain, pixels),
    }
    functions = {}
    for name, (fn, *inputs) in parts.items():
        functions[f"{name}, eager"] = no_grad(fn, *inputs)
        functions[f"{name}, compiled"] = no_grad(torch.compile(fn), *inputs)
    times = interleaved_medians(functions, repeats)
    print(f"QuARF-SegFormer-b0 + BRISQUE, {pixels.shape[-1]}x{pixels.shape[-1]}, batch 1, medians of {repeats} (ms):")
    for name, seconds in times.items():
        print(f"  {name:28s} {seconds * 1000:8.2f}", flush=True)
    extra = times["whole QuARF, compiled"] - times["whole plain, compiled"]
    parts_sum = times["quality vector, compiled"] + times["block on tokens, compiled"]
    print(f"  compiled: QuARF - plain {extra * 1000:.2f} ms; quality vector + block alone {parts_sum * 1000:.2f} ms")
    if profile:
        import torch._inductor.config as inductor_config

        inductor_config.cpp.enable_kernel_profile = True  # each inductor kernel as a row
        for name in ("whole QuARF", "whole plain"):
            torch._dynamo.reset()
            fn, *inputs = parts[name]
            compiled = no_grad(torch.compile(fn), *inputs)
            compiled()
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
                for _ in range(repeats):
                    compiled()
            print(f"{name}, compiled, {repeats} calls:")
            print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    return 0


if __name__ == "__main__":
    sys.exit(main())
