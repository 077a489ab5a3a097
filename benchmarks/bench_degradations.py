"""Speed of the batched corruptions against a per-image loop of the same call.

For every kind in ``quarf_hf.degradations.CORRUPTIONS`` at each ``--severities`` level, on one
batch of ``--batch`` x 3 x ``--size`` x ``--size`` images:

  (a) ``batched``: ``degrade(images, kind, severity, generator)``, one call on the whole batch;
  (b) ``loop`` (the baseline, measured in the same run): the same call looped over the images
      one at a time, as per-image augmentation pipelines do.

Printed per kind: both times in ms, loop / batched (the speed-up, higher is better) and the
batched time as a multiple of a reference measured in the same run: one 3x3 depthwise
convolution over the same batch. Also ``RandomDegradation(p=1)`` (all kinds, severities 1-5)
on the batch against the same object called on each image in turn, with the same seeds.

    python benchmarks/bench_degradations.py [--repeats 5] [--batch 8] [--size 128]
        [--severities 3 5] [--threads N] [--device auto|cpu|cuda]
        [--out benchmarks/results/degradations.json] [--quick]

Times are the median of ``--repeats`` runs after one warm-up; torch keeps its default thread
count unless ``--threads`` is given (on a busy 2-core machine, 2 threads can stall for tens of
ms waiting for a descheduled worker: ``--threads 1`` is steadier there). On CUDA every run is
bracketed by ``torch.cuda.synchronize()``. Random kinds draw different noise in the two variants
(one generator, drawn in a different order), so only the deterministic kinds are checked for
identical output before timing. ``--out`` writes the rows as JSON (benchmarks/results/ is
gitignored).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import torch

from timing import run_times

from quarf_hf.degradations import CORRUPTIONS, STOCHASTIC, RandomDegradation, degrade


def median_time(fn, repeats: int, sync=None, setup=None) -> float:
    """Median wall time in ms of ``fn()`` over ``repeats`` runs (see ``timing.run_times``)."""
    return statistics.median(run_times(fn, repeats, sync, setup)) * 1000


def make_images(batch: int, size: int, device: str) -> torch.Tensor:
    """Seeded images in [0, 1] with smooth gradients, texture and hard edges (every kind has
    something to change; the cost of these kinds does not depend on the content)."""
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 1, size)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    images = []
    for _ in range(batch):
        c0, c1 = torch.rand(3, 1, 1, generator=g), torch.rand(3, 1, 1, generator=g)
        image = 0.15 + 0.25 * (c0 * xx + c1 * yy)
        freq = 8 + 16 * torch.rand(2, generator=g)
        image = image + 0.12 * torch.sin(freq[0] * math.pi * xx) * torch.cos(freq[1] * math.pi * yy)
        y0, x0 = torch.randint(0, size // 2, (2,), generator=g).tolist()
        image[:, y0 : y0 + size // 4, x0 : x0 + size // 4] = torch.rand(3, 1, 1, generator=g)
        images.append(image.clamp(0, 1))
    return torch.stack(images).to(device)


def check_deterministic(images: torch.Tensor, severities) -> float:
    """Largest |batched - looped| over the deterministic kinds (should be ~0)."""
    worst = 0.0
    for name in CORRUPTIONS:
        if name in STOCHASTIC:
            continue
        for severity in severities:
            batched = degrade(images, name, severity)
            looped = torch.cat([degrade(images[i : i + 1], name, severity) for i in range(images.shape[0])])
            worst = max(worst, float((batched - looped).abs().max()))
    return worst


def bench_kinds(images, severities, repeats, sync, reference_ms) -> list[dict]:
    generator = torch.Generator(device=images.device).manual_seed(0)
    singles = [images[i : i + 1] for i in range(images.shape[0])]
    rows = []
    for name in CORRUPTIONS:
        for severity in severities:
            batched_ms = median_time(lambda: degrade(images, name, severity, generator), repeats, sync)
            loop_ms = median_time(lambda: [degrade(one, name, severity, generator) for one in singles], repeats, sync)
            rows.append(dict(kind=name, severity=severity, batched_ms=batched_ms, loop_ms=loop_ms,
                             speedup=loop_ms / batched_ms, batched_per_reference=batched_ms / reference_ms))
    return rows


def bench_random(images, repeats, sync, reference_ms) -> dict:
    """RandomDegradation(p=1) on the batch vs per image; run i of both uses seed i, so both see
    the same seeds (not the same plan: per image, each call draws its own kind and severity)."""
    augment = RandomDegradation(p=1.0)
    device = images.device
    singles = [images[i : i + 1] for i in range(images.shape[0])]
    generator = torch.Generator(device=device)
    groups = []

    def reseed(i):
        generator.manual_seed(1000 + i)

    def reseed_and_count(i):
        reseed(i)
        if i >= 0:
            plan = augment.plan(images.shape[0], torch.Generator(device=device).manual_seed(1000 + i), device)
            groups.append(len(set(plan)))

    batched_ms = median_time(lambda: augment(images, generator), repeats, sync, setup=reseed_and_count)
    loop_ms = median_time(lambda: [augment(one, generator) for one in singles], repeats, sync, setup=reseed)
    return dict(kind="RandomDegradation(p=1)", severity="1-5", batched_ms=batched_ms, loop_ms=loop_ms,
                speedup=loop_ms / batched_ms, batched_per_reference=batched_ms / reference_ms,
                mean_groups=statistics.mean(groups))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--severities", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON (e.g. benchmarks/results/degradations.json)")
    parser.add_argument("--quick", action="store_true", help="batch 2 x 32x32, severity 3, 2 repeats (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.size, args.severities, args.repeats = 2, 32, [3], 2
    if args.repeats < 1 or args.batch < 2 or args.size < 16 or any(not 1 <= s <= 5 for s in args.severities):
        parser.error(f"expected --repeats >= 1, --batch >= 2, --size >= 16, --severities in 1..5, found "
                     f"{args.repeats}, {args.batch}, {args.size}, {args.severities}")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"expected --threads >= 1, found {args.threads}")
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    sync = torch.cuda.synchronize if device == "cuda" else None

    images = make_images(args.batch, args.size, device)
    shape = f"{args.batch}x3x{args.size}x{args.size}"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, batch {shape}, "
          f"median of {args.repeats} after one warm-up")
    worst = check_deterministic(images, args.severities)
    print(f"deterministic kinds, batched vs per-image output: largest difference {worst:.1e}")

    weight = torch.randn(3, 1, 3, 3, device=device)
    reference_ms = median_time(lambda: torch.nn.functional.conv2d(images, weight, padding=1, groups=3),
                               max(args.repeats, 20), sync)
    rows = bench_kinds(images, args.severities, args.repeats, sync, reference_ms)
    random_row = bench_random(images, args.repeats, sync, reference_ms)

    header = f"| {'kind':<29} | {'sev':>3} | {'batched ms':>10} | {'loop ms':>8} | {'loop / batched':>14} | {'batched / ref':>13} |"
    print("\n" + header)
    print(f"|{'-' * 31}|{'-' * 4}:|{'-' * 11}:|{'-' * 9}:|{'-' * 15}:|{'-' * 14}:|")
    print(f"| {'reference: 3x3 depthwise conv':<29} | {'':>3} | {reference_ms:>10.3f} | {'':>8} | {'':>14} | {'1.0x':>13} |")
    for row in rows + [random_row]:
        print(f"| {row['kind']:<29} | {row['severity']:>3} | {row['batched_ms']:>10.2f} | {row['loop_ms']:>8.2f} "
              f"| {row['speedup']:>13.2f}x | {row['batched_per_reference']:>12.1f}x |")

    print(f"\nRandomDegradation(p=1): on average {random_row['mean_groups']:.1f} distinct (kind, severity) groups "
          f"in a batch of {args.batch}, i.e. that many batched degrade calls")
    for severity in args.severities:
        speedups = [row["speedup"] for row in rows if row["severity"] == severity]
        print(f"severity {severity}: median speed-up over {len(speedups)} kinds {statistics.median(speedups):.2f}x "
              f"(min {min(speedups):.2f}x, max {max(speedups):.2f}x)")
    overall = statistics.median(row["speedup"] for row in rows)
    print(f"median speed-up (loop / batched) over kinds and severities: {overall:.2f}x; "
          f"RandomDegradation(p=1): {random_row['speedup']:.2f}x")

    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(dict(
            torch=torch.__version__, threads=torch.get_num_threads(), device=device, shape=shape,
            repeats=args.repeats, reference_ms=reference_ms, rows=rows + [random_row],
            median_speedup=overall, max_abs_diff_deterministic=worst), indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
