"""What QuARF costs end to end: QuARF-SegFormer against the same SegFormer without QuARF.

    python benchmarks/bench_end_to_end.py [--variants b0,b2] [--batches 1,8] [--size 512]
        [--qualities brisque,contrique[,PATH]] [--repeats 5] [--train-batch 2] [--quick]

For each SegFormer variant (``hub_configs/quarf-segformer-*``'s architecture, random weights) and
each quality model, the plain SegFormer and the QuARF-SegFormer share every SegFormer weight;
"QuARF" adds the frozen quality extractor and the block after the first patch embedding.

* inference: eval forward under ``torch.inference_mode``, per batch size; the two models run
  interleaved (plain, QuARF, plain, QuARF, ...) and the median of ``--repeats`` is reported;
* training step: on-device degradation augmentation, forward with labels, backward, AdamW step;
  interleaved the same way;
* peak memory of one inference forward: on CUDA ``max_memory_allocated``; on the CPU the peak
  resident-set growth, sampled every millisecond in a fresh process per model;
* profile: the QuARF model's extra time split into quality extraction, un-normalisation, router,
  block and the token <-> feature-map layout changes, each timed alone at the model's shapes.

Ratios (QuARF / plain) are computed from times measured in the same run. ``PATH`` in
``--qualities`` is a trained quality-encoder (``ContriqueModel``) folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import interleaved_medians, peak_rss_growth  # noqa: E402

from quarf_hf import QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation  # noqa: E402
from quarf_hf.hub.variants import load_hub_config  # noqa: E402


def build_pair(variant: str, quality: str, num_labels: int = 19):
    """(plain SegFormer, QuARF-SegFormer) with identical SegFormer weights, in eval mode."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    data = load_hub_config(f"quarf-segformer-{variant}")
    segformer = {**data["segformer"], "num_labels": num_labels}
    block = {key: value for key, value in data.get("quarf", {}).items() if key not in ("stage", "width")}
    torch.manual_seed(0)
    spec = quality_spec(quality)
    quarf = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(**segformer, quarf=block, quality=spec))
    if spec.get("source"):  # a trained quality encoder: its weights into the extractor
        from quarf_hf import build_quality_extractor

        quarf.segformer.quality_extractor.load_state_dict(build_quality_extractor(spec["source"]).state_dict())
    plain = SegformerForSemanticSegmentation(SegformerConfig(**segformer))
    shared = {k: v for k, v in quarf.state_dict().items() if not k.startswith(("segformer.quarf.", "segformer.quality_extractor."))}
    plain.load_state_dict(shared, strict=True)
    return plain.eval(), quarf.eval()


def quality_spec(quality: str) -> dict:
    """The package's spec of ``--quality`` ('brisque' / 'contrique' / a quality-encoder folder), with an
    optional '@N' suffix of this benchmark: quality computed at longer side N (``max_side``)."""
    from quarf_hf.models.quality import normalize_quality_spec

    name, _, max_side = quality.partition("@")
    spec = normalize_quality_spec(name)
    if max_side:
        spec["max_side"] = int(max_side)
    return spec


def quality_error(size: int, max_side: int, repeats: int) -> list[dict]:
    """How much computing quality on a copy downscaled to ``max_side`` changes the features, and
    what it saves: on the natural photos (centre crops, size x size), for BRISQUE (the router's
    standardised features) and CONTRIQUE (random weights: an architecture check, not a trained
    model's error)."""
    from PIL import Image

    from quarf_hf import build_quality_extractor

    photos = sorted((Path(__file__).resolve().parents[2] / "shared" / "data" / "natural-images").glob("*.png"))
    if not photos:
        raise FileNotFoundError("--quality-error: no photos in ../shared/data/natural-images")
    images = []
    for path in photos:
        image = Image.open(path).convert("RGB")
        scale = size / min(image.size)
        image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.BICUBIC)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        images.append(torch.from_numpy(np.array(image.crop((left, top, left + size, top + size)))).permute(2, 0, 1).float() / 255)
    batch = torch.stack(images)
    rows = []
    for name in ("brisque", "contrique"):
        torch.manual_seed(0)
        full = build_quality_extractor(name)
        small = build_quality_extractor({"type": name, "max_side": max_side})
        small.load_state_dict(full.state_dict())
        with torch.inference_mode():
            exact, approx = full(batch), small(batch)
            times = interleaved_medians({"full": lambda: full(batch), "downscaled": lambda: small(batch)}, repeats)
        relative = ((approx - exact).norm(dim=1) / exact.norm(dim=1)).tolist()
        cosine = torch.nn.functional.cosine_similarity(approx, exact, dim=1).tolist()
        rows.append({"quality": name, "images": len(images), "size": size, "max_side": max_side,
                     "relative_l2_median": statistics.median(relative), "relative_l2_max": max(relative),
                     "cosine_min": min(cosine), "speedup": times["full"] / times["downscaled"]})
    return rows


def inference_times(plain, quarf, batch, size, repeats, device, sync):
    images = torch.randn(batch, 3, size, size, device=device)
    with torch.inference_mode():
        return interleaved_medians({"plain": lambda: plain(pixel_values=images), "quarf": lambda: quarf(pixel_values=images)},
                           repeats, sync)


def training_times(plain, quarf, batch, size, repeats, device, sync):
    from quarf_hf.degradations import RandomDegradation

    augment = RandomDegradation(names=["gaussian_noise", "defocus_blur", "jpeg_compression", "fog"], p=0.5)
    clean = torch.rand(batch, 3, size, size, device=device)
    labels = torch.randint(0, plain.config.num_labels, (batch, size, size), device=device)
    mean = torch.tensor(quarf.config.image_mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(quarf.config.image_std, device=device).view(1, -1, 1, 1)
    steps = {}
    for name, model in (("plain", plain), ("quarf", quarf)):
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        generator = torch.Generator(device=device).manual_seed(0)

        def step(model=model, optimizer=optimizer, generator=generator):
            pixels = (augment(clean, generator=generator) - mean) / std
            loss = model(pixel_values=pixels, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        steps[name] = step
    result = interleaved_medians(steps, repeats, sync)
    plain.eval(), quarf.eval()
    return result


def peak_memory_of_forward(variant, quality, batch, size, which) -> float:
    """Peak memory growth in bytes of one inference forward of ``which`` ('plain' or 'quarf')."""
    plain, quarf = build_pair(variant, quality)
    model = plain if which == "plain" else quarf
    del plain, quarf
    images = torch.randn(batch, 3, size, size)
    if torch.cuda.is_available():
        model, images = model.cuda(), images.cuda()
        with torch.inference_mode():
            model(pixel_values=images)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.inference_mode():
            model(pixel_values=images)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with torch.inference_mode():
        model(pixel_values=images)  # warm-up: allocator caches and one-time buffers
        return peak_rss_growth(lambda: model(pixel_values=images))


def peak_memory_in_subprocess(variant, quality, batch, size, which) -> float:
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r});"
        "from bench_end_to_end import peak_memory_of_forward;"
        f"print(peak_memory_of_forward({variant!r}, {quality!r}, {batch}, {size}, {which!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def profile_extra_time(quarf, batch, size, repeats, device, sync) -> dict:
    """Milliseconds of each piece the QuARF model adds, each timed alone at the model's shapes."""
    encoder = quarf.segformer
    images = torch.randn(batch, 3, size, size, device=device)
    mean = torch.tensor(quarf.config.image_mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(quarf.config.image_std, device=device).view(1, -1, 1, 1)
    with torch.inference_mode():
        pixels01 = (images * std + mean).clamp(0, 1)
        quality = encoder.quality_extractor(pixels01).float()
        tokens, height, width = encoder.stages[quarf.config.quarf_stage].patch_embeddings(images) if quarf.config.quarf_stage == 0 else (None, 0, 0)
        if tokens is None:
            raise ValueError("profile: only quarf_stage 0 is profiled")
        channels = tokens.shape[-1]
        feature_map = tokens.transpose(1, 2).reshape(batch, channels, height, width)
        block = encoder.quarf
        pieces = {
            "un-normalisation": lambda: (images * std + mean).clamp(0, 1),
            "quality extraction": lambda: encoder.quality_extractor(pixels01),
            "router": lambda: block.router(quality),
            "block (incl. router)": lambda: block(feature_map, quality),
            "layout in/out": lambda: block_layout(tokens, batch, channels, height, width),
        }
        times = interleaved_medians(pieces, repeats, sync)
    return {name: seconds * 1000 for name, seconds in times.items()}


def block_layout(tokens, batch, channels, height, width):
    """The token -> feature map -> token round trip around the block (views when strides allow)."""
    feature_map = tokens.transpose(1, 2).reshape(batch, channels, height, width)
    return feature_map.flatten(2).transpose(1, 2).contiguous()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="b0,b2", help="SegFormer variants (default: b0,b2)")
    parser.add_argument("--batches", default="1,8", help="inference batch sizes (default: 1,8)")
    parser.add_argument("--size", type=int, default=512, help="image size (default: 512)")
    parser.add_argument("--qualities", default="brisque,contrique", help="quality models: brisque, contrique, a folder")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per measurement (default: 5)")
    parser.add_argument("--train-batch", type=int, default=2, help="batch of the training step (default: 2)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--quick", action="store_true", help="smoke run: b0, 128x128, batch 1, 2 repeats")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--quality-error", type=int, metavar="MAX_SIDE",
                        help="only measure the feature error and speed-up of quality at longer side MAX_SIDE on the photos")
    args = parser.parse_args(argv)
    if args.quality_error:
        for row in quality_error(args.size, args.quality_error, args.repeats):
            print(f"{row['quality']:<10} {row['images']} photos {row['size']}px -> {row['max_side']}px: feature error "
                  f"(relative L2) median {row['relative_l2_median']:.3f}, max {row['relative_l2_max']:.3f}; "
                  f"cosine >= {row['cosine_min']:.4f}; extraction {row['speedup']:.2f}x faster")
        return 0
    if args.quick:
        args.variants, args.batches, args.size, args.repeats, args.train_batch = "b0", "1", 128, 2, 1
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else None
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    batches = [int(b) for b in args.batches.split(",")]
    qualities = [q.strip() for q in args.qualities.split(",") if q.strip()]
    print(f"QuARF-SegFormer vs SegFormer, {args.size}x{args.size}, {device} "
          f"({torch.cuda.get_device_name() if device == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"median of {args.repeats} interleaved rounds")
    rows = []
    header = f"{'variant':<8}{'quality':<12}{'pass':<16}{'plain ms':>10}{'QuARF ms':>10}{'ratio':>8}"
    print(header)
    for variant in variants:
        for quality in qualities:
            plain, quarf = build_pair(variant, quality)
            plain, quarf = plain.to(device), quarf.to(device)
            measured = []
            for batch in batches:
                times = inference_times(plain, quarf, batch, args.size, args.repeats, device, sync)
                measured.append((f"infer b{batch}", times))
            times = training_times(plain, quarf, args.train_batch, args.size, args.repeats, device, sync)
            measured.append((f"train b{args.train_batch}", times))
            for name, times in measured:
                row = {"variant": variant, "quality": Path(quality).name, "pass": name,
                       "plain_ms": times["plain"] * 1000, "quarf_ms": times["quarf"] * 1000,
                       "ratio": times["quarf"] / times["plain"]}
                rows.append(row)
                print(f"{variant:<8}{row['quality']:<12}{name:<16}{row['plain_ms']:>10.1f}{row['quarf_ms']:>10.1f}"
                      f"{row['ratio']:>8.3f}x")
            if not args.no_memory:
                batch = batches[0]
                memory = {which: peak_memory_in_subprocess(variant, quality, batch, args.size, which)
                          for which in ("plain", "quarf")}
                ratio = memory["quarf"] / max(memory["plain"], 1.0)
                rows.append({"variant": variant, "quality": Path(quality).name, "pass": f"peak memory b{batch}",
                             "plain_mib": memory["plain"] / 2**20, "quarf_mib": memory["quarf"] / 2**20, "ratio": ratio})
                print(f"{variant:<8}{Path(quality).name:<12}{'peak MiB b' + str(batch):<16}{memory['plain'] / 2**20:>10.1f}"
                      f"{memory['quarf'] / 2**20:>10.1f}{ratio:>8.3f}x")
            profile = profile_extra_time(quarf, batches[0], args.size, args.repeats, device, sync)
            plain_ms = next(r["plain_ms"] for r in rows if r["variant"] == variant and r["pass"] == f"infer b{batches[0]}"
                            and r["quality"] == Path(quality).name)
            parts = ", ".join(f"{name} {ms:.1f} ms ({ms / plain_ms:.1%})" for name, ms in profile.items())
            print(f"  profile b{batches[0]} (share of plain): {parts}")
            rows.append({"variant": variant, "quality": Path(quality).name, "pass": f"profile b{batches[0]}", **profile})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
