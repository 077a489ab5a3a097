"""Prediction on single images, the library behind ``quarf-hf predict``, in three steps:

- :func:`setup_prediction`: the model on its device, its task, pixel normalisation and experts;
- :func:`predict_image`: one [0, 1] image (optionally degraded first) through the model, its
  output images written into a folder, and a JSON-ready record of what was seen;
- :func:`finish_prediction`: ``predictions.json`` with every record.

Image ``i`` (0-based) is degraded on the CPU with a generator seeded from
``(seed, corruption, severity, i)`` exactly as :func:`~quarf_hf.evaluation.evaluate_model` seeds
its images, so the degraded input does not depend on the device. Every file is written under a
temporary name and then renamed into place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .atomic import atomic_path, write_text_atomic
from .evaluation.metrics import psnr_per_image
from .evaluation.routing import expert_fields, routing_per_image
from .models.image_utils import to_uint8
from .tasks import TaskSpec, task_of

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


def _save_png(array: np.ndarray, path: Path) -> None:
    image = Image.fromarray(array)
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")


def _save_mask(mask: np.ndarray, path: Path, num_labels: int) -> None:
    if num_labels <= 256:
        _save_png(mask.astype(np.uint8), path)
    else:  # more classes than 8 bits hold
        _save_png(mask.astype(np.uint16), path)


def _routing(output, experts: list[dict] | None) -> list[dict] | None:
    """Mean routing weight per expert over the groups (and pixels, for per-pixel routers)."""
    weights = getattr(output, "routing_weights", None)
    if weights is None:
        return None
    per_expert = routing_per_image(weights)[0].tolist()
    if experts is None or len(experts) != len(per_expert):
        experts = [{} for _ in per_expert]
    return [{**expert, "weight": weight} for expert, weight in zip(experts, per_expert)]


def routing_line(routing: list[dict]) -> str:
    """``routing (mean weight per expert): RF 3: 0.250, ...`` for a record's ``routing``."""
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


@dataclass
class Prediction:
    """What :func:`predict_image` needs of a loaded model, made once by :func:`setup_prediction`."""

    model: torch.nn.Module
    task: TaskSpec
    device: torch.device
    mean: torch.Tensor
    std: torch.Tensor
    experts: list[dict] | None
    num_labels: int
    colours: np.ndarray | None


def setup_prediction(model, device) -> Prediction:
    """Moves ``model`` to ``device`` in eval mode and reads its task (:func:`~quarf_hf.tasks.task_of`),
    normalisation, experts and classes."""
    from .evaluation import model_pixel_normalisation

    device = torch.device(device)
    model = model.to(device).eval()
    task = task_of(model)
    mean, std = model_pixel_normalisation(model)
    num_labels = int(getattr(model.config, "num_labels", 0) or 0)
    return Prediction(
        model=model, task=task, device=device,
        mean=torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1),
        std=torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1),
        experts=expert_fields(model), num_labels=num_labels,
        colours=palette(num_labels) if task.classes else None,
    )


def predict_image(state: Prediction, original: torch.Tensor, out: Path, stem: str, *, index: int = 0,
                  corruption: str | None = None, severity: int | None = None, seed: int = 0,
                  source: str | None = None) -> tuple[dict, str]:
    """Runs one (1, 3, H, W) [0, 1] image, degraded first when ``corruption`` is given, and writes
    its output images as ``out/<stem>_*.png``. Returns the JSON-ready record and a one-line summary.

    ``index``: the image's position in the run (seeds its degradation); ``source``: the image's
    path, as the record names it.
    """
    from .degradations import degrade
    from .evaluation.runner import degradation_seed

    image = original
    record: dict = {"image": source, "size": [int(original.shape[-1]), int(original.shape[-2])], "degradation": None}
    written = []
    if corruption is not None:
        generator = torch.Generator().manual_seed(degradation_seed(seed, corruption, severity, index))
        image = degrade(original, corruption, severity, generator=generator)
        record["degradation"] = {"corruption": corruption, "severity": severity, "seed": seed,
                                 "psnr_vs_original": _psnr(image, original)}
        _save_png(to_uint8(image), out / f"{stem}_input.png")
        written.append(f"{stem}_input.png")

    with torch.no_grad():
        pixels = image.to(state.device)
        output = state.model(pixel_values=(pixels - state.mean) / state.std)

    prediction = getattr(output, state.task.output).float()
    if state.task.classes:
        logits = F.interpolate(prediction, size=image.shape[-2:], mode="bilinear", align_corners=False)
        mask = logits.argmax(1)[0].cpu().numpy()
        counts = np.bincount(mask.ravel(), minlength=state.num_labels)
        record["classes"] = [
            {"id": int(c), "label": _label_name(state.model.config, int(c)), "pixels": int(counts[c]),
             "fraction": float(counts[c]) / mask.size}
            for c in np.flatnonzero(counts)
        ]
        base = to_uint8(image).astype(np.float32)
        blended = (1.0 - BLEND_ALPHA) * base + BLEND_ALPHA * state.colours[mask].astype(np.float32)
        _save_png(np.clip(np.rint(blended), 0, 255).astype(np.uint8), out / f"{stem}_segmentation.png")
        _save_mask(mask, out / f"{stem}_mask.png", state.num_labels)
        written += [f"{stem}_segmentation.png", f"{stem}_mask.png"]
        summary = ", ".join(f"{c['label']} {100 * c['fraction']:.1f}%" for c in record["classes"][:8])
    else:
        restored = prediction.cpu()
        record["psnr_vs_input"] = _psnr(restored, image)
        if corruption is not None:
            record["psnr_vs_original"] = _psnr(restored, original)
        _save_png(to_uint8(restored), out / f"{stem}_restored.png")
        written.append(f"{stem}_restored.png")
        summary = f"PSNR vs input {record['psnr_vs_input']:.2f} dB"
        if corruption is not None:
            summary += f", vs original {record['psnr_vs_original']:.2f} dB"

    routing = _routing(output, state.experts)
    if routing is not None:
        record["routing"] = routing
    record["outputs"] = written
    return record, summary


def finish_prediction(state: Prediction, records: list[dict], out: Path, model_name: str) -> Path:
    """Writes ``out/predictions.json`` (the model, task, device, every record and the experts)."""
    result = {"model": model_name, "task": state.task.name, "device": str(state.device), "images": records}
    if state.experts is not None:
        result["experts"] = state.experts
    path = Path(out) / "predictions.json"
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    return path


__all__ = ["Prediction", "setup_prediction", "predict_image", "finish_prediction", "palette", "routing_line"]
