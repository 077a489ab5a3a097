"""The QuARF restoration model against the same UNet without QuARF: parameters, latency, peak memory.

    python benchmarks/bench_restoration.py [--variant small|base] [--size 256] [--batch 4] [--repeats 5]

"Without QuARF" is the same network with the block and the quality extractor removed (identical
diffusers blocks). Latency: eval forward, best of N. Peak memory: on CUDA
``max_memory_allocated``; on the CPU the peak resident-set growth during one forward pass,
sampled every millisecond (psutil), in a fresh subprocess per variant so the two runs do not
share an allocator.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
from timing import peak_rss_growth

from quarf_hf import QuarfRestorationConfig, QuarfRestorationModel
from quarf_hf.hub.build import load_hub_config


class WithoutQuarf(torch.nn.Module):
    """The same UNet, its QuARF block and quality extractor taken out."""

    def __init__(self, model: QuarfRestorationModel):
        super().__init__()
        self.model = model
        model.quarf = None
        model.quality_extractor = None

    def forward(self, pixel_values):
        return pixel_values + self.model.predict_residual(self.model.conv_in(pixel_values))


def build(variant: str, with_quarf: bool):
    data = load_hub_config(f"quarf-restoration-{variant}")
    torch.manual_seed(0)
    model = QuarfRestorationModel(QuarfRestorationConfig(**data["unet"], quarf=data.get("quarf"), quality="brisque")).eval()
    return model if with_quarf else WithoutQuarf(model).eval()


def measure(variant: str, with_quarf: bool, size: int, batch: int, repeats: int, device: str) -> dict:
    model = build(variant, with_quarf).to(device)
    images = torch.rand(batch, 3, size, size, device=device)
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        model(images)
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(images)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    return {"params": params, "ms": min(times) * 1000, "peak_bytes": peak}


def cpu_peak_of_one_forward(variant, with_quarf, size, batch) -> float:
    """Peak RSS growth (bytes) over one eval forward, sampled by a thread (run in a fresh process)."""
    model = build(variant, with_quarf)
    images = torch.rand(batch, 3, size, size)
    with torch.no_grad():
        return peak_rss_growth(lambda: model(images))


def cpu_peak_in_subprocess(variant, with_quarf, size, batch) -> float:
    code = (
        "import sys; sys.path.insert(0, 'benchmarks');"
        "from bench_restoration import cpu_peak_of_one_forward;"
        f"print(cpu_peak_of_one_forward({variant!r}, {with_quarf}, {size}, {batch}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="small", choices=["small", "base"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = {}
    for with_quarf in (False, True):
        row = measure(args.variant, with_quarf, args.size, args.batch, args.repeats, device)
        if device == "cpu":
            row["peak_bytes"] = cpu_peak_in_subprocess(args.variant, with_quarf, args.size, args.batch)
        rows["quarf" if with_quarf else "plain"] = row
    plain, quarf = rows["plain"], rows["quarf"]
    print(f"quarf-restoration-{args.variant}, batch {args.batch} x {args.size}x{args.size}, {device}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'':<22} {'params':>10} {'latency ms':>11} {'peak MiB':>9}")
    for name, row in (("UNet without QuARF", plain), ("QuARF restoration", quarf)):
        print(f"{name:<22} {row['params']:>10,} {row['ms']:>11.1f} {row['peak_bytes'] / 2**20:>9.1f}")
    print(f"{'ratio QuARF / plain':<22} {quarf['params'] / plain['params']:>10.3f} {quarf['ms'] / plain['ms']:>11.2f} "
          f"{quarf['peak_bytes'] / plain['peak_bytes']:>9.2f}")
    print(json.dumps({k: {kk: vv for kk, vv in v.items()} for k, v in rows.items()}))


if __name__ == "__main__":
    main()
