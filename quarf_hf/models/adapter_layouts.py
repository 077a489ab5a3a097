"""How a module's output carries its features, and running a block on them in that layout
(:func:`apply_to_output`): a (B, C, H, W) or (B, H, W, C) map, or (B, N, C) tokens after class/register
tokens, alone or first in a tuple.

Shipped to the Hub with every adapter (see :mod:`.modeling_quarf_adapter`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .checks import InputError
from .conditioning import apply_block


def _found(features, rest: tuple) -> str:
    """'found <shape>' of a module's output, for errors only (string building is not traced)."""
    shape = str(tuple(features.shape)) if isinstance(features, torch.Tensor) else type(features).__name__
    return f"found {shape}" + (f" with {len(rest)} more outputs" if rest else "")


def _int_pair(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (int, torch.SymInt)) for v in value)


def apply_to_output(block: nn.Module, output, quality: torch.Tensor, channels: int | None = None,
                    layout: str = "auto", prefix_tokens: int | None = None, grid=None):
    """Runs ``block`` on a module's output, in the output's own layout; returns (output, routing).

    The features are the output, or the first item of a tuple (the rest passes through), in one of
    these layouts (``"auto"`` reads it off the shape and the block's ``channels``):

    * ``"channels_first"``: a (B, C, H, W) map (a 4-D output whose dim 1 is C, when detected);
    * ``"channels_last"``: a (B, H, W, C) map, as SAM's patch embedding returns;
    * ``"tokens"``: (B, N, C), the grid given by the tuple (``(tokens, (H, W))`` as Swin's patch
      embeddings, ``(tokens, H, W)`` as SegFormer's), by ``grid``, or square after
      ``prefix_tokens`` leading class/register tokens (0 or 1 when None, as ViT's and DINOv2's
      embeddings), which pass through unchanged.
    """
    features, rest = (output[0], output[1:]) if isinstance(output, tuple) else (output, ())
    size = tuple(rest[0]) if rest and _int_pair(rest[0]) else (
        (rest[0], rest[1]) if len(rest) >= 2 and all(isinstance(v, (int, torch.SymInt)) for v in rest[:2]) else None)
    if layout == "auto":
        if isinstance(features, torch.Tensor) and features.ndim == 4:
            layout = "channels_first" if channels in (None, features.shape[1]) else (
                "channels_last" if features.shape[-1] == channels else None)
        elif isinstance(features, torch.Tensor) and features.ndim == 3 and channels in (None, features.shape[-1]):
            layout = "tokens"
        else:
            layout = None
        if layout is None:
            raise InputError(
                f"layout: expected the output as a (B, {channels}, H, W) or (B, H, W, {channels}) map or "
                f"(B, N, {channels}) tokens (or a tuple starting with one), {_found(features, rest)}; pass layout= or channels="
            )
    expected_ndim = 3 if layout == "tokens" else 4
    if not isinstance(features, torch.Tensor) or features.ndim != expected_ndim:
        raise InputError(f"layout: {layout!r} expects a {expected_ndim}-D tensor (or a tuple starting with one), "
                         f"{_found(features, rest)}")
    if layout == "channels_first":
        mixed, routing = apply_block(block, features, quality)
    elif layout == "channels_last":
        mixed, routing = apply_block(block, features.permute(0, 3, 1, 2), quality)
        mixed = mixed.permute(0, 2, 3, 1)
    else:
        prefix, (height, width) = token_grid(features, rest, prefix_tokens, grid or size)
        mixed, routing = apply_block(block, features[:, prefix:], quality, (height, width))
        if prefix:
            mixed = torch.cat([features[:, :prefix], mixed], dim=1)
    return ((mixed, *rest) if isinstance(output, tuple) else mixed), routing


def token_grid(features: torch.Tensor, rest: tuple, prefix_tokens: int | None, grid):
    """(leading tokens, (H, W)) of tokens (B, N, C): ``grid`` if given, else the square left after
    ``prefix_tokens`` (0 or 1 when None) leading tokens."""
    count = features.shape[1]
    if grid is not None:
        height, width = grid
        prefix = count - height * width if prefix_tokens is None else prefix_tokens
        if prefix < 0 or count - prefix != height * width:
            raise InputError(f"grid: {height}x{width} tokens after {prefix} leading ones do not fit {count} tokens, "
                             f"{_found(features, rest)}")
        return prefix, (height, width)
    for prefix in ((0, 1) if prefix_tokens is None else (prefix_tokens,)):
        side = math.isqrt(max(count - prefix, 0))
        if side > 0 and side * side == count - prefix:
            return prefix, (side, side)
    tried = "0 or 1" if prefix_tokens is None else str(prefix_tokens)
    raise InputError(f"grid: {count} tokens are no square grid after {tried} leading tokens, {_found(features, rest)}; "
                     f"pass grid=(height, width) or prefix_tokens=")
