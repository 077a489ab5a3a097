"""``insert_quarf``: put a QuARF block after any named submodule of any torch model.

The plug-and-play form of QuARF. Two forward hooks do the work:

* a pre-hook on the model reads its pixel input (the first positional argument, or a keyword
  such as ``pixel_values``/``sample``), un-normalises it to [0, 1] and runs the frozen quality
  extractor once per forward;
* a hook on the chosen submodule passes that submodule's output (B, C, H, W) through the block.

The block is registered on the model as ``quarf_<name>`` so that it trains, moves between
devices and is saved with the model's state dict. With ``residual=True`` (the default) the
block starts as the identity: the model's outputs are unchanged until it is trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .models.quarf import QuARF

PIXEL_KEYWORDS = ("pixel_values", "sample", "images", "x", "input")


@dataclass
class QuarfInsertion:
    """What ``insert_quarf`` added: the block, the quality extractor and the hook handles."""

    block: QuARF
    quality_extractor: nn.Module
    attribute: str
    handles: list = field(default_factory=list)

    def remove(self, model: nn.Module) -> None:
        """Detach the hooks and the block: the model is as it was."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        delattr(model, self.attribute)
        delattr(model, self.attribute + "_quality")


def _find_channels(module: nn.Module, name: str) -> int:
    for attribute in ("out_channels", "num_features", "hidden_size"):
        value = getattr(module, attribute, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"channels: could not infer the output channels of {name!r} ({type(module).__name__}); pass channels=")


def _pixel_input(args, kwargs, pixel_argument):
    if pixel_argument is not None:
        if pixel_argument in kwargs:
            return kwargs[pixel_argument]
        if args:
            return args[0]
        raise ValueError(f"pixel_argument: the model was called without {pixel_argument!r}")
    for key in PIXEL_KEYWORDS:
        if isinstance(kwargs.get(key), torch.Tensor):
            return kwargs[key]
    if args and isinstance(args[0], torch.Tensor):
        return args[0]
    raise ValueError("insert_quarf: could not find the model's pixel input; pass pixel_argument=")


def insert_quarf(
    model: nn.Module,
    after: str,
    quality="brisque",
    *,
    channels: int | None = None,
    pixel_mean=0.0,
    pixel_std=1.0,
    pixel_argument: str | None = None,
    **block_kwargs,
) -> QuarfInsertion:
    """Insert a QuARF block after ``model.get_submodule(after)``.

    Args:
        after: dotted name of a submodule whose output is a (B, C, H, W) feature map (or a tuple
            whose first item is), e.g. ``"conv_in"`` in a diffusers UNet.
        quality: the quality extractor: ``"brisque"``, ``"contrique"``, a folder or Hub id of a
            converted CONTRIQUE, a spec dict, or a module with ``feature_dim``.
        channels: the submodule's output channels, when they cannot be read off it.
        pixel_mean, pixel_std: how the model's pixel input was normalised
            (``pixels_01 = input * std + mean``): 0/1 for [0, 1] input, 0.5/0.5 for [-1, 1]
            (diffusers), the image processor's mean/std for transformers vision models.
        pixel_argument: the keyword carrying the pixels, when not the first argument.
        block_kwargs: QuARF settings; ``residual`` defaults to True (identity at insertion).
    """
    from .models.quality_spec import resolve_quality

    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, found {type(model).__name__}")
    try:
        target = model.get_submodule(after)
    except AttributeError as err:
        raise ValueError(f"after: {after!r} is not a submodule of {type(model).__name__}") from err
    attribute = "quarf_" + after.replace(".", "_")
    if hasattr(model, attribute):
        raise ValueError(f"after: a QuARF block is already inserted after {after!r}")
    in_channels = channels if channels is not None else _find_channels(target, after)

    extractor, _ = resolve_quality(quality)
    block_kwargs.setdefault("residual", True)
    block_kwargs.setdefault("quality_dim", extractor.feature_dim)
    block = QuARF(in_channels, **block_kwargs)
    reference = next(model.parameters(), None)
    if reference is not None:
        block.to(device=reference.device, dtype=reference.dtype)
        extractor.to(device=reference.device)
    model.add_module(attribute, block)
    # The extractor is frozen; keep it out of the model's parameters but on its device.
    object.__setattr__(model, attribute + "_quality", extractor)

    mean = torch.as_tensor(pixel_mean, dtype=torch.float32).reshape(1, -1, 1, 1)
    std = torch.as_tensor(pixel_std, dtype=torch.float32).reshape(1, -1, 1, 1)
    state: dict = {}

    def compute_quality(_module, args, kwargs):
        pixels = _pixel_input(args, kwargs, pixel_argument)
        with torch.no_grad():
            pixels01 = (pixels.float() * std.to(pixels.device) + mean.to(pixels.device)).clamp(0, 1)
            state["quality"] = extractor(pixels01).float()

    def apply_block(_module, _args, output):
        features = output[0] if isinstance(output, tuple) else output
        quality_features = state.get("quality")
        if quality_features is None:
            raise RuntimeError(f"insert_quarf: {after!r} ran outside a forward of the model it was inserted into")
        if not isinstance(features, torch.Tensor) or features.ndim != 4:
            raise ValueError(f"after: {after!r} must output a (B, C, H, W) tensor, found {getattr(features, 'shape', type(features))}")
        mixed = block(features, quality_features.to(features.dtype))
        return (mixed, *output[1:]) if isinstance(output, tuple) else mixed

    insertion = QuarfInsertion(block=block, quality_extractor=extractor, attribute=attribute)
    insertion.handles.append(model.register_forward_pre_hook(compute_quality, with_kwargs=True))
    insertion.handles.append(target.register_forward_hook(apply_block))
    return insertion


__all__ = ["insert_quarf", "QuarfInsertion"]
