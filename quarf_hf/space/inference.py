"""What the page computes, without the page: degrade, segment, compare with the clean image's
prediction, read the routing and the quality features, restore (QuARF next to the plain model,
one severity or the sweep over severities).

Every function runs under ``torch.inference_mode`` and is deterministic: the degradation of a
request is seeded from (corruption, severity) as ``quarf-hf evaluate`` seeds image 0, so equal
requests give equal answers, however many run at once. Degradations use the size rule of the
demo's restoration configs (:data:`REFERENCE_SIZE`: the tables' pixel values apply to the
image's pixels, as they did to the photos the models were trained and evaluated on).
"""

from __future__ import annotations

import html

import numpy as np
import torch
import torch.nn.functional as F

from ..models.checks import check_choice, check_int
from ..models.image_utils import to_uint8
from .models import LoadedModel

BLEND_ALPHA = 0.5   # weight of the class colour in the overlay
SEED = 0
# `reference_size` of every degradation here: configs/restoration/*.yaml's (null: no size scaling).
REFERENCE_SIZE = None
SEVERITIES = tuple(range(6))  # the sweep: 0 (clean) to 5


def degraded_image(image: torch.Tensor, corruption: str, severity: int) -> torch.Tensor:
    """``image`` (1, 3, H, W) in [0, 1] degraded by ``corruption`` at ``severity``; severity 0 is the image."""
    from quarf_hf.degradations import CORRUPTIONS, degrade
    from quarf_hf.evaluation.runner import degradation_seed

    check_choice("corruption", corruption, CORRUPTIONS)
    if isinstance(severity, float) and severity.is_integer():  # a Gradio slider gives floats
        severity = int(severity)
    check_int("severity", severity, 0, 5, expected="an integer from 0 (clean) to 5")
    if severity == 0:
        return image.clone()
    generator = torch.Generator().manual_seed(degradation_seed(SEED, corruption, severity, 0))
    return degrade(image.cpu(), corruption, severity, generator=generator,
                   reference_size=REFERENCE_SIZE).float().clamp(0, 1)


def per_group(routing: torch.Tensor) -> torch.Tensor:
    """Routing weights as (B, groups, experts); a per-pixel router's (B, groups, ..., experts) is
    averaged over the pixels."""
    routing = routing.detach().float().cpu()
    if routing.ndim > 3:
        routing = routing.reshape(routing.shape[0], routing.shape[1], -1, routing.shape[-1]).mean(2)
    return routing


@torch.inference_mode()
def segment(model: LoadedModel, images: torch.Tensor) -> dict:
    """Class ids at the images' size, routing (B, groups, experts) and quality features (B, D) or None."""
    pixels = (images.to(model.device, torch.float32) - model.mean) / model.std
    output = model.model(pixel_values=pixels)
    logits = F.interpolate(output.logits.float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
    routing = getattr(output, "routing_weights", None)
    quality = getattr(output, "quality_features", None)
    return {
        "masks": logits.argmax(1).cpu(),
        "routing": None if routing is None else per_group(routing),
        "quality": None if quality is None else quality.detach().float().cpu(),
    }


@torch.inference_mode()
def restore(model: LoadedModel, images: torch.Tensor) -> dict:
    """Reconstructions (B, 3, H, W) in [0, 1], routing (B, groups, experts) and quality features, or None."""
    output = model.model(pixel_values=images.to(model.device, torch.float32))
    routing = getattr(output, "routing_weights", None)
    return {
        "reconstruction": output.reconstruction.float().clamp(0, 1).cpu(),
        "routing": None if routing is None else per_group(routing),
        "quality": None if output.quality_features is None else output.quality_features.float().cpu(),
    }


def mean_iou(prediction: torch.Tensor, reference: torch.Tensor, num_labels: int) -> float:
    """mIoU of ``prediction`` against ``reference`` (here: the clean image's prediction)."""
    from quarf_hf.evaluation import SegmentationMeter

    meter = SegmentationMeter(num_labels, ignore_index=None)
    meter.update(prediction, reference)
    return meter.compute()["mIoU"]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB, data range 1) of ``a`` against ``b``, one number over all their pixels (at most 100 dB)."""
    from quarf_hf.evaluation.metrics import psnr_per_image

    return float(psnr_per_image(a.reshape(1, -1), b.reshape(1, -1)))


def compare_restorations(models: list[LoadedModel], image: torch.Tensor, corruption: str, severity) -> dict:
    """Degrade ``image`` (1, 3, H, W), restore it with each model, score everything against ``image``.

    Returns:
        ``{"degraded": (1, 3, H, W), "restored": {role: (1, 3, H, W)}, "psnr": {"degraded": dB,
        role: dB}, "routing": {role: (groups, experts)}}`` (``routing`` only for models that route).
    """
    degraded = degraded_image(image, corruption, severity)
    result = {"degraded": degraded, "restored": {}, "psnr": {"degraded": psnr(degraded, image)}, "routing": {}}
    for model in models:
        output = restore(model, degraded)
        result["restored"][model.role] = output["reconstruction"]
        result["psnr"][model.role] = psnr(output["reconstruction"], image)
        if output["routing"] is not None:
            result["routing"][model.role] = output["routing"][0]
    return result


def restoration_sweep(models: list[LoadedModel], image: torch.Tensor, corruption: str,
                      severities=SEVERITIES) -> dict:
    """Every severity of ``corruption`` restored by each model.

    Returns:
        ``{"severities": [...], "psnr": {"degraded" | role: [dB per severity]},
        "routing": {role: (severities, groups, experts)}}`` (``routing`` only for models that route).
    """
    severities = [int(s) for s in severities]
    degraded = [degraded_image(image, corruption, s) for s in severities]
    result = {"severities": severities, "psnr": {"degraded": [psnr(d, image) for d in degraded]}, "routing": {}}
    for model in models:
        scores, routing = [], []
        for start in range(0, len(degraded), 2):  # two at a time: bounded memory on large images
            output = restore(model, torch.cat(degraded[start:start + 2]))
            scores += [psnr(r[None], image) for r in output["reconstruction"]]
            if output["routing"] is not None:
                routing.append(output["routing"])
        result["psnr"][model.role] = scores
        if routing:
            result["routing"][model.role] = torch.cat(routing)
    return result


def num_labels(model: LoadedModel) -> int:
    return int(getattr(model.model.config, "num_labels", 0) or len(model.id2label) or 1)


def colours(count: int) -> np.ndarray:
    from quarf_hf.prediction import palette

    return palette(max(count, 1))


def overlay(image: torch.Tensor, mask: torch.Tensor, count: int) -> np.ndarray:
    """Class colours blended over the image, (H, W, 3) uint8, the image's size."""
    base = to_uint8(image).astype(np.float32)
    blended = (1.0 - BLEND_ALPHA) * base + BLEND_ALPHA * colours(count)[mask.numpy()].astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def legend_html(model_masks: dict[str, tuple[LoadedModel, torch.Tensor]]) -> str:
    """A legend of the classes on screen: colour swatch, class name, share of pixels per model."""
    rows, seen = [], {}
    for title, (model, mask) in model_masks.items():
        counts = np.bincount(mask.reshape(-1).numpy(), minlength=num_labels(model))
        for class_id in np.flatnonzero(counts):
            entry = seen.setdefault(int(class_id), {"name": model.id2label.get(int(class_id), str(class_id)), "share": {}})
            entry["share"][title] = counts[class_id] / mask.numel()
    count = max((num_labels(m) for m, _ in model_masks.values()), default=1)
    palette = colours(count)
    titles = list(model_masks)
    for class_id in sorted(seen):
        r, g, b = (int(v) for v in palette[class_id])
        shares = "".join(f"<td>{100 * seen[class_id]['share'].get(t, 0.0):.1f}%</td>" for t in titles)
        rows.append(
            f'<tr><td><span class="quarf-swatch" style="display:inline-block;width:1em;height:1em;'
            f'border:1px solid #888;background:rgb({r},{g},{b})"></span></td>'
            f"<td>{html.escape(seen[class_id]['name'])}</td>{shares}</tr>"
        )
    header = "".join(f"<th>{html.escape(t)}</th>" for t in titles)
    return (f'<table class="quarf-legend"><tr><th></th><th>class</th>{header}</tr>{"".join(rows)}</table>'
            if rows else "")


def expert_labels(model: LoadedModel, count: int) -> list[str]:
    if model.experts and len(model.experts) == count:
        return [f"RF {rf} ({k}x{k}, dilation {d})" for k, d, rf in model.experts]
    return [f"expert {e}" for e in range(count)]


def quality_summary(model: LoadedModel, features: torch.Tensor, clean_features: torch.Tensor) -> str:
    """One line: what the router sees (the extractor's feature vector) and how far it moved from clean."""
    width = features.shape[-1]  # the extractor's own width, not a number written here
    name = {"brisque": f"BRISQUE ({width} standardised features)", "contrique": f"CONTRIQUE ({width} features)"}.get(
        model.quality or "", f"{model.quality or 'quality'} features")
    norm, clean_norm = float(features.norm()), float(clean_features.norm())
    shift = float((features - clean_features).norm())
    return (f"**What the router sees**: {name}: norm {norm:.2f} (clean image: {clean_norm:.2f}); "
            f"distance from the clean image's features {shift:.2f}.")


__all__ = ["degraded_image", "segment", "restore", "compare_restorations", "restoration_sweep", "mean_iou", "psnr",
           "overlay", "legend_html", "expert_labels", "quality_summary", "REFERENCE_SIZE", "SEVERITIES"]
