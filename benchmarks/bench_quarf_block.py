"""Speed of the QuARF block against the published loop structure and a dense convolution.

Baselines, measured in the same run:
  (a) ``reference``: a faithful re-implementation of the published module's loop structure
      (Python loop over groups x experts, and over samples in hard mode), noise removed;
  (b) ``dense``: one 3x3 convolution C -> C. It has the same multiply-adds as soft mode, so it
      is the practical floor.

    python benchmarks/bench_quarf_block.py [--repeats 5] [--quick]

Prints one row per (shape, pass, mode) with times in ms and the ratios the targets are about:
reference / ours (higher is better) and ours / dense (lower is better), plus hard-mode
inference speed-up over our soft mode.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_quarf import ReferenceQuARF  # noqa: E402
from timing import run_times  # noqa: E402

from quarf_hf import QuARF  # noqa: E402

SHAPES = {
    "8x64x128x128": (8, 64, 128, 128),
    "segformer-b0 stage1 (8x32x128x128, 512px input)": (8, 32, 128, 128),
}


def best_time(fn, repeats: int) -> float:
    """Best wall time in ms of ``fn()`` over ``repeats`` runs, after one warm-up."""
    return min(run_times(fn, repeats)) * 1000


def forward_fn(module, x, q, backward: bool):
    if q is None:
        run = lambda: module(x)  # noqa: E731
    else:
        run = lambda: module(x, q)  # noqa: E731
    if not backward:
        def step():
            with torch.no_grad():
                run()
        return step

    def step():
        x.grad = None
        run().sum().backward()
    return step


def bench_shape(name, shape, repeats, quality_dim=4096):
    batch, channels, height, width = shape
    torch.manual_seed(0)
    x = torch.randn(shape)
    q = torch.randn(batch, quality_dim)
    rows = []
    dense = torch.nn.Conv2d(channels, channels, 3, padding=1)
    for backward in (False, True):
        pass_name = "fwd+bwd" if backward else "fwd"
        xin = x.clone().requires_grad_(backward)
        dense_ms = best_time(forward_fn(dense.train(backward), xin, None, backward), repeats)
        ours_soft_ms = None
        for mode in ("soft", "hard"):
            ours = QuARF(channels, quality_dim=quality_dim, mode=mode)
            reference = ReferenceQuARF(channels, quality_dim=quality_dim, mode=mode)
            reference.load_state_dict(ours.state_dict())
            # Forward alone is inference (eval); forward+backward is a training step.
            ours.train(backward)
            reference.train(backward)
            ours_ms = best_time(forward_fn(ours, xin, q, backward), repeats)
            ref_ms = best_time(forward_fn(reference, xin, q, backward), repeats)
            if mode == "soft":
                ours_soft_ms = ours_ms
            rows.append(
                dict(shape=name, pass_=pass_name, mode=mode, ours=ours_ms, reference=ref_ms, dense=dense_ms,
                     speedup_vs_reference=ref_ms / ours_ms, ratio_to_dense=ours_ms / dense_ms,
                     speedup_vs_our_soft=ours_soft_ms / ours_ms)
            )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one small shape, 2 repeats (smoke run)")
    args = parser.parse_args(argv)
    shapes = {"quick 2x16x32x32": (2, 16, 32, 32)} if args.quick else SHAPES
    repeats = 2 if args.quick else args.repeats
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    header = f"{'shape':<48} {'pass':<8} {'mode':<5} {'ours ms':>8} {'ref ms':>8} {'dense ms':>9} {'ref/ours':>9} {'ours/dense':>11} {'soft/ours':>10}"
    print(header)
    print("-" * len(header))
    for name, shape in shapes.items():
        for row in bench_shape(name, shape, repeats):
            print(
                f"{row['shape']:<48} {row['pass_']:<8} {row['mode']:<5} {row['ours']:>8.1f} {row['reference']:>8.1f} "
                f"{row['dense']:>9.1f} {row['speedup_vs_reference']:>8.2f}x {row['ratio_to_dense']:>10.2f}x "
                f"{row['speedup_vs_our_soft']:>9.2f}x"
            )
    print("targets (CPU): soft fwd ref/ours >= 2, soft fwd ours/dense <= 2, hard fwd soft/ours >= 2.5")


if __name__ == "__main__":
    main()
