"""``insert_quarf``: put QuARF blocks after named submodules of any torch model.

The plug-and-play form of QuARF. It makes a :class:`~quarf_hf.QuarfAdapter` (the blocks, the
frozen quality extractor and where they attach) and attaches it; the adapter does the work with
forward hooks (see :mod:`quarf_hf.models.modeling_quarf_adapter`), saves and shares what was
trained (``adapter.save_pretrained`` / ``push_to_hub``) and takes it out again (``unload()``).

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
from .models.modeling_quarf_adapter import QuarfAdapter


def insert_quarf(model: nn.Module, after=None, quality="brisque", *, adapter=None, **settings) -> QuarfAdapter:
    """Insert QuARF blocks after ``model.get_submodule(name)`` for each name in ``after``, or
    attach a trained adapter; returns the (attached) :class:`~quarf_hf.QuarfAdapter`.

    ``insert_quarf(model, after, quality, **settings)`` is ``QuarfAdapter.for_model(model, after, quality,
    **settings).attach(model)``: every setting is :meth:`~quarf_hf.QuarfAdapter.for_model`'s.

    Args:
        model: any ``torch.nn.Module`` taking pixels (a transformers or diffusers model, a timm
            backbone, an ``nn.Sequential``...).
        after: dotted name, regular expression, or list of names and name suffixes (as peft's
            ``target_modules``) of submodules whose output is a (B, C, H, W) feature map (or a tuple
            whose first item is; or SegFormer's ``(tokens, H, W)``), e.g. ``"conv_in"`` in a diffusers
            UNet. Also (B, H, W, C) maps (SAM's patch embedding), (B, N, C) tokens with leading
            class/register tokens (ViT, DINOv2) and ``(tokens, (H, W))`` (Swin).
        quality: the quality extractor: ``"brisque"``, ``"contrique"``, a folder or Hub id of a
            converted CONTRIQUE, a spec dict, or a module with ``feature_dim``.
        adapter: instead of ``after``: a trained adapter to attach, as a :class:`QuarfAdapter`,
            a saved folder or a Hub id.
        settings: ``for_model``'s keywords: ``channels`` (where they cannot be read off the modules),
            ``pixel_mean`` / ``pixel_std`` (how the model's pixel input was normalised:
            ``pixels_01 = input * std + mean``; 0.5/0.5 for diffusers' [-1, 1]), ``pixel_argument``,
            ``base_model``, ``layout`` / ``prefix_tokens`` / ``grid`` (how the modules' outputs carry
            their features, when it cannot be read off them), ``entry`` (the submodule that takes the
            pixels, e.g. ``"vision_encoder"`` of a ``SamModel``), and QuARF settings for every block
            (``residual`` defaults to True: identity at insertion).

    Example:

    ```python
    >>> import torch
    >>> from quarf_hf import insert_quarf
    >>> cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 3, 1))
    >>> adapter = insert_quarf(cnn, after="0", quality="brisque")
    >>> adapter.save_pretrained("my-adapter")                 # the blocks and extractor only
    >>> cnn = adapter.unload()                                # the original network
    >>> adapter = insert_quarf(cnn, adapter="my-adapter")     # trained blocks back in
    ```
    """
    if adapter is not None:
        given = [name for name, value in {"after": after, **settings}.items() if value is not None]
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
    return QuarfAdapter.for_model(model, after, quality, **settings).attach(model)


__all__ = ["insert_quarf"]
