"""Quality conditioning: the one path from a model's pixels to its quality vector, and from there into a block.

Every QuARF model (QuARF-SegFormer, the restoration model, an adapter inside someone else's
network) conditions on image quality the same way, through the three pieces here:

* :func:`quality_vector`: pixels as the model receives them -> the frozen extractor's features:
  un-normalise with the model's pixel mean/std, clamp to [0, 1], upscale images under the
  extractor's ``min_size`` (bicubic, so any image size works), move and cast to the extractor's
  device and dtype, run it without gradients, return float32. It is the only code in the package
  that runs a quality extractor inside a model's forward.
* :func:`build_block`: the module that uses the vector, picked by the ``conditioning`` setting of
  the model configs (:data:`CONDITIONING_MODES`).
* :func:`apply_block`: runs that module on a (B, C, H, W) map or on tokens (B, N, C) with their
  (H, W), SegFormer's layout, with the vector in the block's dtype.

Adding a way of using the vector (e.g. ``"film"``: a per-channel scale and shift predicted from
it, instead of routing over experts) is one entry in :data:`CONDITIONING_MODES`: a builder
``(in_channels, out_channels, config) -> module`` whose module is called as
``module(feature_map, quality, return_routing=True) -> (output map, routing weights or None)``.
The configs' ``conditioning`` value then selects it, and the three models need no change.

Shipped to the Hub with the models: imports only torch and flat siblings.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .checks import InputError, check_choice
from .quality import quality_feature_dim
from .quarf import QuARF, QuarfConfig


def _routed_block(in_channels: int, out_channels: int | None, config) -> nn.Module:
    """QuARF: the vector routes a mixture of dilated-convolution experts (the paper's block)."""
    return QuARF(in_channels, out_channels=out_channels, config=config)


# conditioning setting -> builder of the module that uses the quality vector (see the module doc).
CONDITIONING_MODES = {"route": _routed_block}
DEFAULT_CONDITIONING = "route"


def check_conditioning(value) -> str:
    """``value`` if it is a known conditioning mode, else a ValueError naming ``conditioning``."""
    return check_choice("conditioning", value, CONDITIONING_MODES)


def block_settings(settings: dict | None, quality: dict, name: str = "quarf") -> QuarfConfig:
    """A model config's block settings, checked, for the quality extractor ``quality`` (a spec dict).

    ``quality_dim`` defaults to the extractor's feature width (and must equal it), ``residual`` to
    `True` (the block starts as the identity); ``name`` is where the settings sit in the config.
    """
    feature_dim = quality_feature_dim(quality)
    settings = {"quality_dim": feature_dim, "residual": True, **(settings or {})}
    block = QuarfConfig.from_dict(settings)  # validates every block setting
    if block.quality_dim != feature_dim:
        raise InputError(
            f"{name}.quality_dim: expected the quality extractor's feature width {feature_dim} "
            f"({quality['type']}), found {block.quality_dim}"
        )
    return block


def build_block(conditioning: str, in_channels: int, config, *, out_channels: int | None = None) -> nn.Module:
    """The module that conditions a feature map of ``in_channels`` on the quality vector.

    Args:
        conditioning (`str`): a key of :data:`CONDITIONING_MODES` (``"route"``: a QuARF block).
        in_channels (`int`): channels of the feature map it transforms.
        config (`QuarfConfig` or `dict`): the block's settings.
        out_channels (`int`, *optional*): its output channels (``in_channels`` by default).
    """
    return CONDITIONING_MODES[check_conditioning(conditioning)](in_channels, out_channels, config)


def upscale_to_min_size(pixels: torch.Tensor, min_size: int) -> torch.Tensor:
    """``pixels`` itself, or, when its shorter side is under ``min_size``, a bicubic upscale (clamped to
    [0, 1]) whose shorter side is exactly ``min_size``, aspect ratio kept. Only the quality estimate
    comes from the upscaled copy; a model always runs at its input's own size."""
    height, width = pixels.shape[-2:]
    if min(height, width) >= min_size:
        return pixels
    scale = min_size / min(height, width)
    size = (max(min_size, round(height * scale)), max(min_size, round(width * scale)))
    return nn.functional.interpolate(pixels, size=size, mode="bicubic", align_corners=False).clamp(0, 1)


def quality_vector(
    extractor: nn.Module,
    pixel_values: torch.Tensor,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
) -> torch.Tensor:
    """The frozen ``extractor``'s quality features of a model's pixel input, float32 (B, feature_dim), no gradient.

    Args:
        extractor (`nn.Module`): a frozen quality extractor (``feature_dim``; ``min_size`` when it has one).
        pixel_values (`torch.Tensor`): (B, C, H, W) as the model receives them.
        mean, std (`float` or `list[float]`, *optional*): how they were normalised
            (``pixels_01 = pixel_values * std + mean``); `None` for pixels already in [0, 1].
    """
    with torch.no_grad():
        pixels = pixel_values.float()
        if mean is not None or std is not None:
            # From the config on each call (a few numbers): buffers made at meta-device init would be empty.
            std = torch.tensor(1.0 if std is None else std, device=pixels.device).view(1, -1, 1, 1)
            mean = torch.tensor(0.0 if mean is None else mean, device=pixels.device).view(1, -1, 1, 1)
            pixels = pixels * std + mean
        pixels = upscale_to_min_size(pixels.clamp(0, 1), getattr(extractor, "min_size", 1))
        # The extractor's device (parameters, else buffers) and its parameters' dtype (a half-precision CONTRIQUE).
        parameter = next(extractor.parameters(), None)
        reference = parameter if parameter is not None else next(extractor.buffers(), None)
        if reference is not None:
            pixels = pixels.to(device=reference.device, dtype=parameter.dtype if parameter is not None else pixels.dtype)
        return extractor(pixels).float()


def apply_block(block: nn.Module, features: torch.Tensor, quality: torch.Tensor, size: tuple[int, int] | None = None):
    """Runs a conditioning block on a feature map or on tokens; returns (output in the input's layout, routing).

    Args:
        block (`nn.Module`): made by :func:`build_block`.
        features (`torch.Tensor`): a (B, C, H, W) map, or tokens (B, H*W, C) when ``size`` is given.
        quality (`torch.Tensor`): (B, feature_dim) quality vector; cast to the block's dtype here.
        size (`tuple[int, int]`, *optional*): (H, W) of the tokens.
    """
    reference = next(block.parameters(), None)
    quality = quality.to(reference.dtype if reference is not None else features.dtype)
    if size is None:
        return block(features, quality, return_routing=True)
    height, width = size
    batch, _, channels = features.shape
    feature_map = features.transpose(1, 2).reshape(batch, channels, height, width)
    out, routing = block(feature_map, quality, return_routing=True)
    return out.flatten(2).transpose(1, 2), routing


__all__ = [
    "CONDITIONING_MODES",
    "DEFAULT_CONDITIONING",
    "apply_block",
    "block_settings",
    "build_block",
    "check_conditioning",
    "quality_vector",
    "upscale_to_min_size",
]
