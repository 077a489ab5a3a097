"""``quarf-hf predict``: run a segmentation or restoration model on image files and save what it sees.

For each IMAGE (any PIL mode, converted to RGB) the command optionally degrades it with
:func:`quarf_hf.degradations.degrade` (``--corruption`` / ``--severity`` / ``--seed``; the
degraded image is saved as ``<stem>_input.png``), runs the model at the image's own size and
writes, into ``--out``:

- segmentation (QuARF-SegFormer or a plain SegFormer): ``<stem>_segmentation.png``, the
  predicted classes in a fixed palette blended over the (possibly degraded) image, and
  ``<stem>_mask.png``, the class ids (8-bit grey PNG; 16-bit when the model has more than 256
  classes). Pixels are normalised as :func:`~quarf_hf.evaluation.model_pixel_normalisation`
  says, logits are upsampled bilinearly to the image size and arg-maxed.
- restoration (QuARF restoration): ``<stem>_restored.png``.

and ``predictions.json``: per image the input path, the degradation, the class histogram
(segmentation) or the PSNR of the output against the model's input (restoration), and, for
QuARF models, the mean routing weight of each expert (also printed, labelled with the expert's
receptive field). Every file is written under a temporary name and then renamed into place.

Image ``i`` (0-based, in the order given) is degraded on the CPU with a generator seeded from
``(seed, corruption, severity, i)`` exactly as ``quarf-hf evaluate`` seeds its images, so the
degraded input does not depend on the device.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# Reused from ``quarf-hf evaluate`` so both commands load models and pick devices alike.
from quarf_hf.atomic import atomic_path, write_text_atomic
from quarf_hf.evaluation.loading import config_task, load_model, load_model_config, resolve_device
from quarf_hf.evaluation.metrics import psnr_per_image

BLEND_ALPHA = 0.5  # weight of the class colour in <stem>_segmentation.png


def palette(num_classes: int) -> np.ndarray:
    """A fixed (num_classes, 3) uint8 palette: PASCAL VOC's bit-interleaving colour map.

    Class ``c`` always gets the same colour whatever ``num_classes`` is (0 is black, 1 dark red,
    2 dark green, ...), so masks of different models compare by eye.
    """
    colours = np.zeros((max(int(num_classes), 0), 3), dtype=np.uint8)
    for index in range(len(colours)):
        value, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        colours[index] = (r, g, b)
    return colours


def _check_images(paths: list[str]) -> list[Path]:
    """Every IMAGE exists and is a readable image; output names (the stems) do not collide."""
    checked, stems = [], {}
    for text in paths:
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"IMAGE: no such file {text!r}")
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as err:  # noqa: BLE001 - PIL raises many kinds for unreadable files
            raise ValueError(f"IMAGE: cannot read {text!r} as an image ({err})") from None
        if path.stem in stems:
            raise ValueError(
                f"IMAGE: {stems[path.stem]!r} and {text!r} share the name {path.stem!r}, so their outputs would collide"
            )
        stems[path.stem] = text
        checked.append(path)
    if not checked:
        raise ValueError("IMAGE: expected at least one image")
    return checked


def load_rgb(path) -> torch.Tensor:
    """An image file (any PIL mode) as a (1, 3, H, W) float32 tensor in [0, 1]."""
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> (H, W, 3) uint8, rounded."""
    image = image.detach().float().cpu().reshape(-1, *image.shape[-2:])
    return (image.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _save_png(array: np.ndarray, path: Path) -> None:
    image = Image.fromarray(array)
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")


def _save_mask(mask: np.ndarray, path: Path, num_labels: int) -> None:
    if num_labels <= 256:
        _save_png(mask.astype(np.uint8), path)
    else:  # more classes than 8 bits hold
        _save_png(mask.astype(np.uint16), path)


def _experts(model) -> list[dict] | None:
    quarf = getattr(model.config, "quarf", None)
    if not isinstance(quarf, dict) or "experts" not in quarf:
        return None
    from quarf_hf.models.quarf import receptive_field

    return [
        {"kernel_size": int(kernel), "dilation": int(dilation), "receptive_field": receptive_field(int(kernel), int(dilation))}
        for kernel, dilation in quarf["experts"]
    ]


def _routing(output, experts: list[dict] | None) -> list[dict] | None:
    """Mean routing weight per expert over the groups (and pixels, for per-pixel routers)."""
    weights = getattr(output, "routing_weights", None)
    if weights is None:
        return None
    per_expert = weights.detach().double().reshape(weights.shape[0], -1, weights.shape[-1]).mean(1)[0].cpu().tolist()
    if experts is None or len(experts) != len(per_expert):
        experts = [{} for _ in per_expert]
    return [{**expert, "weight": weight} for expert, weight in zip(experts, per_expert)]


def _routing_line(routing: list[dict]) -> str:
    parts = []
    for index, entry in enumerate(routing):
        label = f"RF {entry['receptive_field']}" if "receptive_field" in entry else f"expert {index}"
        parts.append(f"{label}: {entry['weight']:.3f}")
    return "routing (mean weight per expert): " + ", ".join(parts)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two [0, 1] images; capped at 100 dB when they are equal."""
    return float(psnr_per_image(a.reshape(1, -1), b.reshape(1, -1)))


def _label_name(config, class_id: int) -> str:
    id2label = getattr(config, "id2label", None) or {}
    return str(id2label.get(class_id, id2label.get(str(class_id), class_id)))


def run(args) -> int:
    from quarf_hf.degradations import degrade
    from quarf_hf.degradations.registry import check_degradation
    from quarf_hf.evaluation import model_pixel_normalisation
    from quarf_hf.evaluation.runner import degradation_seed

    # Everything the user typed is checked before the model is loaded or anything is written.
    paths = _check_images(args.images)
    corruption, severity = check_degradation(args.corruption, args.severity, arguments=("--corruption", "--severity"))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out: {args.out!r} exists and is not a folder")
    device = resolve_device(args.device)
    config = load_model_config(args.model, args.trust_remote_code)
    task = config_task(config)

    model = load_model(args.model, config, args.trust_remote_code).to(device).eval()
    mean, std = model_pixel_normalisation(model)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    experts = _experts(model)
    num_labels = int(getattr(model.config, "num_labels", 0) or 0)
    colours = palette(num_labels) if task == "segmentation" else None
    out.mkdir(parents=True, exist_ok=True)

    records = []
    for index, path in enumerate(paths):
        stem = path.stem
        original = load_rgb(path)
        image = original
        record: dict = {"image": str(path), "size": [int(original.shape[-1]), int(original.shape[-2])], "degradation": None}
        written = []
        if corruption is not None:
            generator = torch.Generator().manual_seed(degradation_seed(args.seed, corruption, severity, index))
            image = degrade(original, corruption, severity, generator=generator)
            record["degradation"] = {"corruption": corruption, "severity": severity, "seed": args.seed,
                                     "psnr_vs_original": _psnr(image, original)}
            _save_png(to_uint8(image), out / f"{stem}_input.png")
            written.append(f"{stem}_input.png")

        with torch.no_grad():
            pixels = image.to(device)
            output = model(pixel_values=(pixels - mean_t) / std_t)

        if task == "segmentation":
            logits = F.interpolate(output.logits.float(), size=image.shape[-2:], mode="bilinear", align_corners=False)
            mask = logits.argmax(1)[0].cpu().numpy()
            counts = np.bincount(mask.ravel(), minlength=num_labels)
            record["classes"] = [
                {"id": int(c), "label": _label_name(model.config, int(c)), "pixels": int(counts[c]),
                 "fraction": float(counts[c]) / mask.size}
                for c in np.flatnonzero(counts)
            ]
            base = to_uint8(image).astype(np.float32)
            blended = (1.0 - BLEND_ALPHA) * base + BLEND_ALPHA * colours[mask].astype(np.float32)
            _save_png(np.clip(np.rint(blended), 0, 255).astype(np.uint8), out / f"{stem}_segmentation.png")
            _save_mask(mask, out / f"{stem}_mask.png", num_labels)
            written += [f"{stem}_segmentation.png", f"{stem}_mask.png"]
            summary = ", ".join(f"{c['label']} {100 * c['fraction']:.1f}%" for c in record["classes"][:8])
        else:
            restored = output.reconstruction.float().cpu()
            record["psnr_vs_input"] = _psnr(restored, image)
            if corruption is not None:
                record["psnr_vs_original"] = _psnr(restored, original)
            _save_png(to_uint8(restored), out / f"{stem}_restored.png")
            written.append(f"{stem}_restored.png")
            summary = f"PSNR vs input {record['psnr_vs_input']:.2f} dB"
            if corruption is not None:
                summary += f", vs original {record['psnr_vs_original']:.2f} dB"

        routing = _routing(output, experts)
        if routing is not None:
            record["routing"] = routing
        record["outputs"] = written
        records.append(record)
        label = f"{path}" + (f" ({corruption}, severity {severity})" if corruption else "")
        print(f"{label}: {summary}")
        if routing is not None:
            print("  " + _routing_line(routing))

    result = {"model": args.model, "task": task, "device": str(device), "images": records}
    if experts is not None:
        result["experts"] = experts
    text = json.dumps(result, indent=2) + "\n"

    write_text_atomic(out / "predictions.json", text)
    print(f"Wrote {sum(len(r['outputs']) for r in records)} images and predictions.json to {out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="run a model on image files (optionally degraded) and save masks / restored images",
        description=(
            "Run a segmentation (QuARF-SegFormer, SegFormer) or restoration (QuARF) model on image files, "
            "optionally degraded first, and write colour-coded segmentations and class-id masks or restored "
            "images, plus predictions.json with the routing of QuARF models."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="a local model folder or a Hub repo id")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files (any mode; read as RGB)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the output images and predictions.json")
    parser.add_argument("--corruption", default=None, metavar="NAME", help="degrade each image with this corruption first")
    parser.add_argument("--severity", type=int, default=None, metavar="N", help="severity 1..5 of --corruption (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the degradation (default: 0)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code from the Hub")
    parser.set_defaults(func=run)


__all__ = ["register", "run", "palette", "load_rgb"]
