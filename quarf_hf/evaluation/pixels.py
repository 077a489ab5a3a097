"""What a model expects in ``pixel_values``: its task and its input normalisation."""

from __future__ import annotations

import json
import os

from ..hub.ids import looks_like_hub_id

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
RESTORATION_MODEL_TYPES = ("quarf_restoration",)


def model_task(model) -> str:
    """"restoration" for QuARF restoration models, "segmentation" for every other model."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return "restoration" if model_type in RESTORATION_MODEL_TYPES else "segmentation"


def _processor_normalisation(source: str):
    """(mean, std) from a saved image processor's ``preprocessor_config.json``, or None."""
    path = None
    if os.path.isdir(source):
        candidate = os.path.join(source, "preprocessor_config.json")
        path = candidate if os.path.isfile(candidate) else None
    elif looks_like_hub_id(source):
        try:  # a Hub id: the model came from there, so this only reads the cache or one small file
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(source, "preprocessor_config.json")
        except Exception:  # noqa: BLE001 - no processor saved, offline, ...: fall back to ImageNet
            path = None
    if path is None:
        return None
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if data.get("do_normalize", True) is False:
        return [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    if "image_mean" in data and "image_std" in data:
        return [float(v) for v in data["image_mean"]], [float(v) for v in data["image_std"]]
    return None


def model_pixel_normalisation(model, source: str | None = None) -> tuple[list[float], list[float]]:
    """(mean, std) such that the model's ``pixel_values`` are ``(pixels_in_[0,1] - mean) / std``.

    QuARF restoration: mean 0, std 1 (it takes [0, 1] pixels). A config with ``image_mean`` /
    ``image_std`` (QuARF-SegFormer): those. Anything else (a plain SegFormer): the saved image
    processor's normalisation when ``source`` (default: the folder or Hub id the model was
    loaded from) has a ``preprocessor_config.json``, else ImageNet's.
    """
    config = getattr(model, "config", None)
    if model_task(model) == "restoration":
        channels = getattr(config, "num_channels", 3)
        return [0.0] * channels, [1.0] * channels
    mean, std = getattr(config, "image_mean", None), getattr(config, "image_std", None)
    if mean is not None and std is not None:
        return [float(v) for v in mean], [float(v) for v in std]
    source = source or getattr(model, "name_or_path", None) or getattr(config, "_name_or_path", None)
    if source:
        found = _processor_normalisation(str(source))
        if found is not None:
            return found
    return list(IMAGENET_MEAN), list(IMAGENET_STD)


__all__ = ["model_task", "model_pixel_normalisation", "IMAGENET_MEAN", "IMAGENET_STD"]
