"""What a model expects in ``pixel_values``: its task and its input normalisation."""

from __future__ import annotations

from ..models.configuration_quarf_segformer import IMAGENET_MEAN as _IMAGENET_MEAN
from ..models.configuration_quarf_segformer import IMAGENET_STD as _IMAGENET_STD
from ..models.image_utils import processor_normalisation

IMAGENET_MEAN = list(_IMAGENET_MEAN)
IMAGENET_STD = list(_IMAGENET_STD)
RESTORATION_MODEL_TYPES = ("quarf_restoration",)


def model_task(model) -> str:
    """"restoration" for QuARF restoration models, "segmentation" for every other model."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return "restoration" if model_type in RESTORATION_MODEL_TYPES else "segmentation"


def model_pixel_normalisation(model, source: str | None = None) -> tuple[list[float], list[float]]:
    """(mean, std) such that the model's ``pixel_values`` are ``(pixels_in_[0,1] - mean) / std``.

    QuARF restoration: mean 0, std 1 (it takes [0, 1] pixels). A config with ``image_mean`` /
    ``image_std`` (QuARF-SegFormer): those. Anything else (a plain SegFormer): the saved image
    processor's normalisation when ``source`` (default: the folder or Hub id the model was
    loaded from) has a ``preprocessor_config.json`` (read by
    :func:`quarf_hf.models.image_utils.processor_normalisation`, the reader ``from_segformer``
    uses too: ``do_normalize=False`` means mean 0, std 1), else ImageNet's.
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
        found = processor_normalisation(str(source))
        if found is not None:
            return found
    return list(IMAGENET_MEAN), list(IMAGENET_STD)


__all__ = ["model_task", "model_pixel_normalisation", "IMAGENET_MEAN", "IMAGENET_STD"]
