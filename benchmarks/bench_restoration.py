"""QuARF restoration against the plain UNet of the same architecture: inference, training step, peak memory.

    python benchmarks/bench_restoration.py [--variant small|base|photos] [--size 256] [--repeats 5]
                                           [--train-batch 8]

"Plain" is the same model with ``conditioning: none`` (no block, its BRISQUE never runs): the
same diffusers blocks and, from the same seed, the same UNet weights. QuARF is the variant as
published (the block routed by BRISQUE, computed inside the forward). Timed, interleaved in one
run (round-robin, so a busy machine slows every case alike), medians of ``--repeats`` calls after
a warm-up:

* inference at batch 1 and batch 8 (eval mode, no gradient);
* one training step at ``--train-batch`` (forward with labels, Charbonnier loss, backward, AdamW step).

Peak memory: on CUDA ``max_memory_allocated`` of each case; on the CPU the peak resident-set growth
during one call of each case, in a fresh subprocess per (model, case) so that no allocator is shared.
The target is QuARF / plain <= 1.10 for time and memory, BRISQUE included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch
from timing import interleaved_medians, peak_rss_growth

from quarf_hf import QuarfRestorationConfig, QuarfRestorationModel
from quarf_hf.hub.variants import load_hub_config

MODELS = ("plain", "quarf")
CASES = ("infer_b1", "infer_b8", "train_step")


def build(variant: str, arm: str) -> QuarfRestorationModel:
    """The variant's UNet; ``arm`` ``"plain"`` (conditioning none) or ``"quarf"`` (routed by BRISQUE)."""
    data = load_hub_config(f"quarf-restoration-{variant}")
    torch.manual_seed(0)
    config = QuarfRestorationConfig(**data["unet"], quarf=data.get("quarf"), quality="brisque",
                                    conditioning="none" if arm == "plain" else "route")
    return QuarfRestorationModel(config)


def case_function(model, case: str, size: int, train_batch: int, device: str):
    """A no-argument function that runs ``case`` once on ``model``."""
    if case.startswith("infer"):
        images = torch.rand(int(case[-1]), 3, size, size, device=device)
        model.eval()

        def infer():
            with torch.no_grad():
                model(images)
        return infer
    images = torch.rand(train_batch, 3, size, size, device=device)
    clean = torch.rand(train_batch, 3, size, size, device=device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        model.train()
        model(images, labels=clean).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def cpu_peak(variant: str, arm: str, case: str, size: int, train_batch: int) -> int:
    """Peak RSS growth (bytes) over one call of ``case`` after one warm-up call (run in a fresh process)."""
    fn = case_function(build(variant, arm), case, size, train_batch, "cpu")
    fn()
    return peak_rss_growth(fn)


def cpu_peak_in_subprocess(variant, arm, case, size, train_batch) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys; sys.path.insert(0, {here!r}); from bench_restoration import cpu_peak; "
            f"print(cpu_peak({variant!r}, {arm!r}, {case!r}, {size}, {train_batch}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def cuda_peak(fn) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="small", choices=["small", "base", "photos"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-batch", type=int, default=8)
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else None
    models = {arm: build(args.variant, arm).to(device) for arm in MODELS}
    functions = {(arm, case): case_function(models[arm], case, args.size, args.train_batch, device)
                 for case in CASES for arm in MODELS}
    medians = interleaved_medians(functions, args.repeats, sync=sync)
    peaks = {}
    for key, fn in functions.items():
        peaks[key] = cuda_peak(fn) if device == "cuda" else cpu_peak_in_subprocess(args.variant, *key, args.size,
                                                                                     args.train_batch)
    params = {arm: sum(p.numel() for p in models[arm].parameters()) for arm in MODELS}
    print(f"quarf-restoration-{args.variant} at {args.size}x{args.size}, {device}, {torch.get_num_threads()} threads, "
          f"medians of {args.repeats} interleaved runs; training batch {args.train_batch}")
    print(f"parameters: plain {params['plain']:,}, QuARF {params['quarf']:,} "
          f"({params['quarf'] / params['plain']:.4f}x)")
    print(f"{'case':<12} {'plain ms':>9} {'QuARF ms':>9} {'ratio':>6} {'plain MiB':>10} {'QuARF MiB':>10} {'ratio':>6}")
    rows = {}
    for case in CASES:
        plain, quarf = medians[("plain", case)], medians[("quarf", case)]
        plain_mem, quarf_mem = peaks[("plain", case)], peaks[("quarf", case)]
        rows[case] = {"plain_ms": plain * 1e3, "quarf_ms": quarf * 1e3, "time_ratio": quarf / plain,
                      "plain_peak_bytes": plain_mem, "quarf_peak_bytes": quarf_mem,
                      "memory_ratio": quarf_mem / plain_mem if plain_mem > 0 else None}
        memory_ratio = f"{quarf_mem / plain_mem:>6.2f}" if plain_mem > 0 else f"{'-':>6}"
        print(f"{case:<12} {plain * 1e3:>9.1f} {quarf * 1e3:>9.1f} {quarf / plain:>6.2f} "
              f"{plain_mem / 2**20:>10.1f} {quarf_mem / 2**20:>10.1f} {memory_ratio}")
    print(json.dumps({"variant": args.variant, "size": args.size, "device": device, "params": params, "cases": rows}))


if __name__ == "__main__":
    main()
