"""What a model expects in ``pixel_values``: its input normalisation."""

from __future__ import annotations

from ..models.configuration_quarf_segformer import IMAGENET_MEAN as _IMAGENET_MEAN
from ..models.configuration_quarf_segformer import IMAGENET_STD as _IMAGENET_STD
from ..models.image_utils import processor_normalisation
from ..tasks import task_of

IMAGENET_MEAN = list(_IMAGENET_MEAN)
IMAGENET_STD = list(_IMAGENET_STD)


def model_pixel_normalisation(model, source: str | None = None) -> tuple[list[float], list[float]]:
    """(mean, std) such that the model's ``pixel_values`` are ``(pixels_in_[0,1] - mean) / std``.

    A task whose models take [0, 1] pixels as they are (``raw_pixels``: QuARF restoration): mean 0,
    std 1. A config with ``image_mean`` / ``image_std`` (QuARF-SegFormer): those. Anything else (a
    plain SegFormer): the saved image processor's normalisation when ``source`` (default: the
    folder or Hub id the model was loaded from) has a ``preprocessor_config.json`` (read by
    :func:`quarf_hf.models.image_utils.processor_normalisation`, the reader ``from_segformer``
    uses too: ``do_normalize=False`` means mean 0, std 1), else ImageNet's.
    """
    config = getattr(model, "config", None)
    if task_of(model).raw_pixels:
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


__all__ = ["model_pixel_normalisation", "IMAGENET_MEAN", "IMAGENET_STD"]
