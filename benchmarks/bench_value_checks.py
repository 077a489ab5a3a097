"""Training-step time with the value checks on every step against on the first step only (issue 24).

    python benchmarks/bench_value_checks.py [--repeats 20] [--device cpu|cuda]

The models' checks of values (NaN/inf in pixels and quality features, label ranges) read a result
back from the device: a host sync. Since issue 24 they run in inference and on a module's first
training batch only (``input_checks.value_checks``). This times one training step (forward with
labels, backward, AdamW) of a small QuARF restoration model and a small QuARF-SegFormer both ways,
interleaved round-robin in one run, medians: "every step" forgets, before each step, that the first
batch was checked. On a CPU there is no device to wait for, so the ratio there is the checks' own
arithmetic; the sync they cost on a GPU shows with ``--device cuda``.
"""

from __future__ import annotations

import argparse

import torch

from timing import interleaved_medians

from quarf_hf import (QuarfRestorationConfig, QuarfRestorationModel, QuarfSegformerConfig,
                      QuarfSegformerForSemanticSegmentation)


def models():
    """(name, model, inputs) of the two training steps timed."""
    torch.manual_seed(0)
    restoration = QuarfRestorationModel(QuarfRestorationConfig(
        block_out_channels=[8, 16, 32], layers_per_block=1, norm_num_groups=4,
        quarf={"num_groups": 4, "experts": [[3, 1], [3, 2], [3, 4], [3, 8]]}))
    clean = torch.rand(8, 3, 64, 64)
    segformer = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(
        hidden_sizes=[32, 64, 96, 128], depths=[1, 1, 1, 1], num_attention_heads=[1, 2, 2, 4],
        sr_ratios=[4, 2, 1, 1], decoder_hidden_size=64, num_labels=3, quarf={"num_groups": 8}))
    pixels = torch.randn(16, 3, 64, 64)
    labels = torch.randint(0, 3, (16, 64, 64))
    return [("restoration 64x64, batch 8", restoration, {"pixel_values": (clean * 0.8).clamp(0, 1), "labels": clean}),
            ("QuARF-SegFormer 64x64, batch 16", segformer, {"pixel_values": pixels, "labels": labels})]


def step_function(model, inputs, every_step: bool, sync):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        if every_step:  # forget that the first batch was checked: the checks run again
            for module in model.modules():
                module.__dict__.pop("_checked_a_training_batch", None)
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if sync:
            sync()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} rounds")
    print("| training step | checks every step ms | checks on the first step ms | ratio |")
    print("|---|---:|---:|---:|")
    for name, model, inputs in models():
        model.to(device).train()
        inputs = {key: value.to(device) for key, value in inputs.items()}
        medians = interleaved_medians({
            "every": step_function(model, inputs, True, sync),
            "first": step_function(model, inputs, False, sync),
        }, args.repeats)
        print(f"| {name} | {medians['every'] * 1e3:.1f} | {medians['first'] * 1e3:.1f} | "
              f"{medians['first'] / medians['every']:.3f} |")


if __name__ == "__main__":
    main()
