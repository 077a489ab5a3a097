"""``insert_quarf``: put QuARF blocks after named submodules of any torch model.

The plug-and-play form of QuARF. It makes a :class:`~quarf_hf.QuarfAdapter` (the blocks, the
frozen quality extractor and where they attach) and attaches it; the adapter does the work with
forward hooks (see :mod:`quarf_hf.models.modeling_quarf_adapter`), saves and shares what was
trained (``adapter.save_pretrained`` / ``push_to_hub``) and takes it out again (``detach()``).

A block is registered on the model as ``quarf_<name>`` so that it trains, moves between devices
and is saved with the model's state dict (on an ``nn.Sequential``, which would call it as one
more layer, it is registered on the first non-container module on the way to ``<name>``). With
``residual=True`` (the default) the block starts as the identity: the model's outputs are
unchanged until it is trained.
"""

from __future__ import annotations

import os

from torch import nn

from .models.checks import InputError, InputTypeError
from .models.modeling_quarf_adapter import PIXEL_KEYWORDS, QuarfAdapter


def insert_quarf(
    model: nn.Module,
    after=None,
    quality="brisque",
    *,
    adapter=None,
    channels=None,
    pixel_mean=0.0,
    pixel_std=1.0,
    pixel_argument: str | None = None,
    base_model: str | None = None,
    layout: str = "auto",
    prefix_tokens: int | None = None,
    grid=None,
    entry: str | None = None,
    **block_kwargs,
) -> QuarfAdapter:
    """Insert QuARF blocks after ``model.get_submodule(name)`` for each name in ``after``, or
    attach a trained adapter; returns the (attached) :class:`~quarf_hf.QuarfAdapter`.

    Args:
        model: any ``torch.nn.Module`` taking pixels (a transformers or diffusers model, a timm
            backbone, an ``nn.Sequential``...).
        after: dotted name, regular expression, or list of names and name suffixes (as peft's
            ``target_modules``; see ``QuarfAdapter.for_model``) of submodules whose output is a (B, C, H, W) feature
            map (or a tuple whose first item is; or SegFormer's ``(tokens, H, W)``), e.g.
            ``"conv_in"`` in a diffusers UNet. Also (B, H, W, C) maps (SAM's patch embedding), (B, N, C)
            tokens with leading class/register tokens (ViT, DINOv2) and ``(tokens, (H, W))`` (Swin).
        quality: the quality extractor: ``"brisque"``, ``"contrique"``, a folder or Hub id of a
            converted CONTRIQUE, a spec dict, or a module with ``feature_dim``.
        adapter: instead of ``after``: a trained adapter to attach, as a :class:`QuarfAdapter`,
            a saved folder or a Hub id.
        channels: the submodules' output channels, when they cannot be read off them (an int, or
            a list/dict with one per name).
        pixel_mean, pixel_std: how the model's pixel input was normalised
            (``pixels_01 = input * std + mean``): 0/1 for [0, 1] input, 0.5/0.5 for [-1, 1]
            (diffusers), the image processor's mean/std for transformers vision models.
        pixel_argument: the keyword carrying the pixels, when not the first argument.
        base_model: Hub id or path of the model, recorded in the adapter (read off the model when unset).
        layout, prefix_tokens, grid: how the modules' outputs carry their features, when it cannot be
            read off them (``layout="channels_first"``, ``"channels_last"`` or ``"tokens"``; see
            ``QuarfAdapter.for_model``).
        entry: the submodule that takes the pixels and computes the quality, e.g. ``"vision_encoder"``
            of a ``SamModel`` (so ``model.get_image_embeddings(pixel_values)`` works); the model by default.
        block_kwargs: QuARF settings; ``residual`` defaults to True (identity at insertion).

    Example:

    ```python
    >>> import torch
    >>> from quarf_hf import insert_quarf
    >>> cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 3, 1))
    >>> adapter = insert_quarf(cnn, after="0", quality="brisque")
    >>> adapter.save_pretrained("my-adapter")                 # the blocks and extractor only
    >>> cnn = adapter.detach()                                # the original network
    >>> adapter = insert_quarf(cnn, adapter="my-adapter")     # trained blocks back in
    ```
    """
    if adapter is not None:
        given = [name for name, value in (("after", after), ("channels", channels), ("pixel_argument", pixel_argument),
                                          ("base_model", base_model), ("prefix_tokens", prefix_tokens),
                                          ("grid", grid), ("entry", entry)) if value is not None]
        given += ["layout"] if layout != "auto" else []
        given += sorted(block_kwargs)
        if given:
            raise InputError(f"adapter: the adapter brings its own settings; pass either adapter= or {given}, not both")
        if isinstance(adapter, (str, os.PathLike)):
            if not isinstance(model, nn.Module):
                raise InputTypeError(f"model: expected a torch.nn.Module, found {type(model).__name__}")
            adapter = QuarfAdapter.from_pretrained(adapter)
        if not isinstance(adapter, QuarfAdapter):
            raise InputTypeError(f"adapter: expected a QuarfAdapter, a folder or a Hub id, found {type(adapter).__name__}")
        return adapter.attach(model)
    if after is None:
        raise InputError("after: expected the name of a submodule to insert the block after (or adapter=), found None")
    adapter = QuarfAdapter.for_model(
        model, after, quality, channels=channels, pixel_mean=pixel_mean, pixel_std=pixel_std,
        pixel_argument=pixel_argument, base_model=base_model, layout=layout, prefix_tokens=prefix_tokens,
        grid=grid, entry=entry, **block_kwargs,
    )
    return adapter.attach(model)


__all__ = ["insert_quarf", "QuarfAdapter", "PIXEL_KEYWORDS"]
