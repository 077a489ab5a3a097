"""Speed of the quality extractors at 512x512.

* BRISQUE: ``BrisqueFeatures`` on a batch of 16 images in one call, against the baseline
  measured in the same run: OpenCV's ``cv2.quality.QualityBRISQUE_computeFeatures`` in a loop
  over the same 16 images (same 8-bit pixels). On CUDA, when available, also the GPU call.
* CONTRIQUE: ``ContriqueModel`` (random weights, eval, no grad, batch 4) images per second,
  and its throughput relative to BRISQUE's; skipped when ``quarf_hf.models.modeling_contrique`` is
  not importable.

    python benchmarks/bench_quality.py [--repeats 5] [--batch 16] [--size 512]

Times are the best of ``--repeats`` runs after one warm-up; torch and OpenCV keep their
default thread counts. Inputs are the photos in ../shared/data/natural-images (resized and
cropped to size x size, several crops per photo) or, without them, generated images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from timing import run_times

from quarf_hf.models.brisque import BrisqueFeatures

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "natural-images"


def best_time(fn, repeats: int, sync=None) -> float:
    """Best wall time in seconds of ``fn()`` over ``repeats`` runs, after one warm-up."""
    return min(run_times(fn, repeats, sync))


def load_images(count: int, size: int) -> tuple[list[np.ndarray], str]:
    """``count`` RGB uint8 (size, size, 3) images and a word on where they come from."""
    paths = sorted(PHOTOS.glob("*.png")) if PHOTOS.is_dir() else []
    if paths:
        images = []
        for i in range(count):
            photo = Image.open(paths[i % len(paths)]).convert("RGB")
            short = size + 64 * (i // len(paths))  # a different crop on each pass over the photos
            scale = short / min(photo.size)
            photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.BICUBIC)
            left, top = (photo.width - size) // 2, (photo.height - size) // 2
            images.append(np.array(photo.crop((left, top, left + size, top + size))))
        return images, f"{len(paths)} photos, resized and cropped"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] / size
    images = []
    for _ in range(count):
        smooth = 255 * (0.3 + 0.4 * np.sin(6 * xx + rng.uniform(0, 6)) * np.cos(4 * yy))
        noisy = smooth[..., None] * rng.uniform(0.6, 1.0, 3) + rng.normal(0, rng.uniform(2, 20), (size, size, 3))
        images.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return images, "generated images (photos not found)"


def bench_brisque(images: list[np.ndarray], repeats: int) -> list[tuple[str, float, str]]:
    import cv2

    bgr = [np.ascontiguousarray(image[..., ::-1]) for image in images]
    pixel_values = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    brisque = BrisqueFeatures()

    def opencv_loop():
        return np.concatenate([cv2.quality.QualityBRISQUE_computeFeatures(image) for image in bgr])

    def torch_cpu():
        return brisque(pixel_values)

    # Check before timing that both compute the same thing.
    reference, ours = opencv_loop().astype(np.float64), torch_cpu().double().numpy()
    median_relative = np.median(np.abs(ours - reference) / np.abs(reference))
    identical = np.mean(ours.astype(np.float32) == reference.astype(np.float32))

    with torch.no_grad():
        opencv_time = best_time(opencv_loop, repeats)
        cpu_time = best_time(torch_cpu, repeats)
        rows = [
            ("BRISQUE, OpenCV per-image loop", opencv_time, "1.00 (baseline)"),
            ("BRISQUE, torch CPU, one batched call", cpu_time, f"{opencv_time / cpu_time:.2f}"),
        ]
        if torch.cuda.is_available():
            on_gpu = pixel_values.cuda()
            gpu_time = best_time(lambda: brisque(on_gpu), repeats, sync=torch.cuda.synchronize)
            rows.append(("BRISQUE, torch CUDA, one batched call", gpu_time, f"{opencv_time / gpu_time:.2f}"))
    print(
        f"torch vs OpenCV features on these images: median relative difference {median_relative:.1e}, "
        f"{identical:.0%} of the values bit-identical"
    )
    return rows


def bench_contrique(size: int, repeats: int, batch: int = 4) -> tuple[float | None, str]:
    """Images per second of CONTRIQUE, or None and the reason it was skipped."""
    try:
        from quarf_hf.models.modeling_contrique import ContriqueConfig, ContriqueModel
    except ImportError as error:
        return None, f"skipped: modeling_contrique not available ({error})"
    model = ContriqueModel(ContriqueConfig()).eval()
    pixel_values = torch.rand(batch, 3, size, size)
    with torch.no_grad():
        features = model(pixel_values=pixel_values).quality_features
        seconds = best_time(lambda: model(pixel_values=pixel_values), repeats)
    return batch / seconds, f"random weights, eval, no grad, batch {batch}, features {tuple(features.shape)}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16, help="images for BRISQUE")
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.batch < 1 or args.size < 32:
        parser.error(f"expected --repeats >= 1, --batch >= 1, --size >= 32, found {args.repeats}, {args.batch}, {args.size}")

    images, source = load_images(args.batch, args.size)
    print(f"inputs: {args.batch} x {args.size}x{args.size}, {source}; torch threads {torch.get_num_threads()}")
    rows = bench_brisque(images, args.repeats)

    print(f"\n| {'extractor, backend':<40} | {'ms / batch':>10} | {'images/s':>9} | {'speed-up vs OpenCV':>18} |")
    print(f"|{'-' * 42}|{'-' * 12}|{'-' * 11}|{'-' * 20}|")
    for name, seconds, ratio in rows:
        print(f"| {name:<40} | {1000 * seconds:>10.1f} | {args.batch / seconds:>9.1f} | {ratio:>18} |")

    contrique_rate, note = bench_contrique(args.size, max(1, args.repeats // 2))
    brisque_rate = args.batch / rows[1][1]
    if contrique_rate is None:
        print(f"\nCONTRIQUE: {note}")
    else:
        print(
            f"\nCONTRIQUE, torch CPU: {contrique_rate:.2f} images/s at {args.size}x{args.size} ({note}); "
            f"{brisque_rate / contrique_rate:.1f}x fewer than BRISQUE torch CPU"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
