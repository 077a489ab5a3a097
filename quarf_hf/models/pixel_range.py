"""The one rule for pixels documented as RGB in [0, 1] (CONTRIQUE, the quality extractors, the
restoration model and its pipeline, ``extract_quality``).

* integer images (uint8, int8 ... int64, every width alike) are taken as 0-255 and divided by
  255; values outside 0..255 are refused;
* float images must lie in [0, 1] up to rounding (``ROUNDING``: half an 8-bit step); values
  within it are clamped, values further out refused, with a hint when they look like 0-255;
* NaN and +-inf are refused; bool and complex tensors are refused (no silent cast).

Shipped to the Hub with the models: imports only torch.
"""

from __future__ import annotations

import torch

ROUNDING = 0.5 / 255


def check_float_dtype(pixels, name: str = "pixel_values", hint: str = "") -> None:
    """Refuses bool, integer and complex tensors for inputs that must be (normalised) floats."""
    if not isinstance(pixels, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, found {type(pixels).__name__}")
    if pixels.dtype == torch.bool or pixels.is_complex() or not pixels.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, found {pixels.dtype}{hint}")


def to_unit_range(pixels: torch.Tensor, name: str = "pixel_values") -> torch.Tensor:
    """``pixels`` as floats in [0, 1] under the module's rule; a one-line error names ``name`` otherwise."""
    if not isinstance(pixels, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, found {type(pixels).__name__}")
    if pixels.dtype == torch.bool:
        raise TypeError(f"{name}: expected RGB values in [0, 1] (floats) or 0-255 (integers), found a bool tensor")
    if pixels.is_complex():
        raise TypeError(f"{name}: expected real RGB values, found a complex tensor ({pixels.dtype})")
    if pixels.numel() == 0:
        return pixels.float() if not pixels.is_floating_point() else pixels
    if not pixels.is_floating_point():
        low, high = int(pixels.min()), int(pixels.max())
        if low < 0 or high > 255:
            raise ValueError(f"{name}: integer pixels are read as 0-255, found values from {low} to {high}")
        return pixels.float() / 255.0
    finite = torch.isfinite(pixels)
    if not bool(finite.all()):
        kinds = [k for k, bad in (("NaN", torch.isnan(pixels).any()), ("+inf", (pixels == float("inf")).any()),
                                  ("-inf", (pixels == float("-inf")).any())) if bool(bad)]
        raise ValueError(f"{name}: expected finite values in [0, 1], found {' and '.join(kinds)}")
    low, high = float(pixels.min()), float(pixels.max())
    if low < -ROUNDING or high > 1 + ROUNDING:
        hint = ("; they look like 0-255 values: divide by 255" if high > 1 + ROUNDING and low >= -ROUNDING and high <= 255.5
                else "")
        raise ValueError(f"{name}: expected float values in [0, 1], found values from {low:.4g} to {high:.4g}{hint}")
    if low < 0 or high > 1:
        pixels = pixels.clamp(0, 1)
    return pixels


__all__ = ["to_unit_range", "check_float_dtype", "ROUNDING"]
