"""The one check of pixel input: a (B, C, H, W) float tensor, optionally with values in [0, 1].

Every model, quality extractor and corruption of the package checks its images here, so that
the same mistake gets the same one-line error (argument, what was expected, what was found)
wherever it is made. Shipped to the Hub with the models: imports only torch.
"""

from __future__ import annotations

import math

import torch


def check_pixel_values(
    pixel_values,
    *,
    name: str = "pixel_values",
    channels: tuple[int, ...] | None = (3,),
    min_size: int = 0,
    min_batch: int = 0,
    floating: bool = True,
    size_reason: str | None = None,
) -> None:
    """Checks the structure of a batch of images (no pass over the data).

    Args:
        pixel_values (`torch.Tensor`):
            The batch, expected to be `(batch, channels, height, width)`.
        name (`str`, *optional*, defaults to `"pixel_values"`):
            The argument's name, as the error messages call it.
        channels (`tuple[int, ...]`, *optional*, defaults to `(3,)`):
            The allowed numbers of channels; `None` accepts any.
        min_size (`int`, *optional*, defaults to 0):
            The smallest height and width accepted.
        min_batch (`int`, *optional*, defaults to 0):
            The smallest batch size accepted.
        floating (`bool`, *optional*, defaults to `True`):
            Whether to require a floating-point dtype (values in [0, 1]).
        size_reason (`str`, *optional*):
            Why images must be at least `min_size` pixels, said in the error message.

    Raises `TypeError` for a wrong type or dtype and `ValueError` for a wrong shape.

    Example:

    ```python
    >>> check_pixel_values(torch.rand(2, 3, 32, 32), min_size=14)
    ```
    """
    wanted = "channels" if channels is None else " or ".join(str(c) for c in channels)
    layout = f"(batch, {wanted}, height, width)"
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor {layout}, found {type(pixel_values).__name__}")
    shape = tuple(pixel_values.shape)
    if pixel_values.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D tensor {layout} with 4 dimensions (4 dims), found shape {shape}")
    if channels is not None and shape[1] not in channels:
        raise ValueError(f"{name}: expected {wanted} channels (dim 1 of {layout}), found shape {shape}")
    if floating and not pixel_values.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor with values in [0, 1], found dtype {pixel_values.dtype}")
    if shape[0] < min_batch:
        raise ValueError(f"{name}: expected B >= {min_batch} images, found shape {shape}")
    if min(shape[2:]) < min_size:
        if size_reason:
            raise ValueError(
                f"{name}: images must be at least {min_size}x{min_size} pixels {size_reason}, "
                f"found {shape[2:]} (shape {shape})"
            )
        raise ValueError(
            f"{name}: expected images of at least {min_size}x{min_size} pixels (H, W >= {min_size}), found shape {shape}"
        )


def check_pixel_range(pixel_values: torch.Tensor, *, name: str = "pixel_values", tolerance: float = 1e-3,
                      hint: str = "") -> None:
    """Checks that every value is finite and in [0, 1] (within ``tolerance``): one pass, one sync.

    Args:
        pixel_values (`torch.Tensor`): a tensor that passed :func:`check_pixel_values`.
        name (`str`, *optional*, defaults to `"pixel_values"`): the argument's name.
        tolerance (`float`, *optional*, defaults to 1e-3): how far outside [0, 1] is still accepted.
        hint (`str`, *optional*): appended to the out-of-range message (a likely cause).
    """
    if pixel_values.numel() == 0:
        return
    # Reduce in memory order (a channels-last batch is not copied first).
    in_memory_order = pixel_values.permute(sorted(range(pixel_values.ndim), key=lambda dim: -pixel_values.stride(dim)))
    low, high = torch.stack(torch.aminmax(in_memory_order)).tolist()
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name}: expected finite values in [0, 1], found NaN or inf (min {low}, max {high})")
    if low < -tolerance or high > 1 + tolerance:
        raise ValueError(f"{name}: expected values in [0, 1], found min {low:.4g}, max {high:.4g}{hint}")


__all__ = ["check_pixel_values", "check_pixel_range"]
