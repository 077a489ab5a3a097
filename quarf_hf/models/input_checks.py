"""The one check of pixel input: a (B, C, H, W) tensor, and the one rule for its values.

Every model, quality extractor, corruption and image reader of the package checks its images
here, so that the same mistake gets the same one-line error (argument, what was expected, what
was found) wherever it is made.

**The pixel rule** (for pixels documented as RGB in [0, 1]: CONTRIQUE, the quality extractors,
the restoration model and its pipeline, ``extract_quality``, :func:`image_utils.image_to_tensor`):

* integer pixels are 0-255 and divided by 255, whatever their width (``uint8``, ``int8`` ...
  ``int64``); values outside 0..255 are refused. The one exception is ``uint16``, the dtype of a
  16-bit image (as PIL and numpy hand over a 16-bit PNG): 0-65535, divided by 65535;
* float pixels must lie in [0, 1] up to rounding (:data:`ROUNDING`, half an 8-bit step): values
  within it are clamped, values further out refused, with a hint when they look like 0-255;
* NaN and +-inf are refused, naming which were found; ``bool`` and complex tensors are refused
  (no silent cast).

:func:`to_unit_range` applies the rule and returns float pixels in [0, 1];
:func:`check_pixel_range` is its float half for callers that take floats only (BRISQUE,
``degrade``). Shipped to the Hub with the models: imports only torch.
"""

from __future__ import annotations

import math

import torch

from .checks import InputError, InputTypeError

# Half an 8-bit step: how far outside [0, 1] a float pixel may be (rounding) and still be accepted.
ROUNDING = 0.5 / 255
_LOOKS_8_BIT = "; they look like 0-255 values: divide by 255"


def check_pixel_values(
    pixel_values,
    *,
    name: str = "pixel_values",
    channels: tuple[int, ...] | None = (3,),
    min_size: int = 0,
    min_batch: int = 0,
    floating: bool = True,
    values: str = "in [0, 1]",
    size_reason: str | None = None,
) -> None:
    """Checks the structure (and, with ``floating``, the dtype) of a batch of images; no pass over the data.

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
            Whether to require a floating-point dtype (`bool`, integer and complex tensors are
            refused). Inputs that follow the pixel rule pass `False` and call :func:`to_unit_range`.
        values (`str`, *optional*, defaults to `"in [0, 1]"`):
            What the values should be, said in the dtype error message.
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
        raise InputTypeError(f"{name}: expected a torch.Tensor {layout}, found {type(pixel_values).__name__}")
    shape = tuple(pixel_values.shape)
    if pixel_values.ndim != 4:
        raise InputError(f"{name}: expected a 4-D tensor {layout} with 4 dimensions (4 dims), found shape {shape}")
    if channels is not None and shape[1] not in channels:
        raise InputError(f"{name}: expected {wanted} channels (dim 1 of {layout}), found shape {shape}")
    if floating and not pixel_values.is_floating_point():
        raise InputTypeError(f"{name}: expected a floating-point tensor with values {values}, found dtype {pixel_values.dtype}")
    if shape[0] < min_batch:
        raise InputError(f"{name}: expected B >= {min_batch} images, found shape {shape}")
    if min(shape[2:]) < min_size:
        if size_reason:
            raise InputError(
                f"{name}: images must be at least {min_size}x{min_size} pixels {size_reason}, "
                f"found {shape[2:]} (shape {shape})"
            )
        raise InputError(
            f"{name}: expected images of at least {min_size}x{min_size} pixels (H, W >= {min_size}), found shape {shape}"
        )


def value_checks(module) -> bool:
    """Whether a forward of ``module`` should run its checks of values, which wait for the device (a host sync).

    Always in inference (the module in eval mode, or autograd off); in a training forward, only the
    first one of the module (the data loader's items were checked when loaded, and a sync per step
    would stall an accelerator); never while ``torch.compile`` or ``torch.export`` (and so ONNX export)
    traces the module, where a check of values would be a graph break or a data-dependent guard.
    """
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return False
    if not (module.training and torch.is_grad_enabled()):
        return True
    if module.__dict__.get("_checked_a_training_batch"):
        return False
    module.__dict__["_checked_a_training_batch"] = True  # not a buffer or parameter: never saved
    return True


def _min_max(pixel_values: torch.Tensor) -> tuple[float, float]:
    """(min, max) in one pass and one sync; NaN if any value is NaN."""
    # Reduce in memory order (a channels-last batch is not copied first).
    in_memory_order = pixel_values.permute(sorted(range(pixel_values.ndim), key=lambda dim: -pixel_values.stride(dim)))
    low, high = torch.stack(torch.aminmax(in_memory_order)).tolist()
    return low, high


def _non_finite(pixel_values: torch.Tensor) -> str:
    """Which non-finite values ``pixel_values`` holds: "NaN", "+inf", "-inf", joined by "and"."""
    kinds = [kind for kind, found in (("NaN", torch.isnan(pixel_values)), ("+inf", pixel_values == math.inf),
                                      ("-inf", pixel_values == -math.inf)) if bool(found.any())]
    return " and ".join(kinds)


def check_finite(pixel_values: torch.Tensor, *, name: str = "pixel_values", expected: str = "finite values") -> None:
    """Refuses NaN and +-inf, naming which were found (for inputs with no documented range).

    Args:
        pixel_values (`torch.Tensor`): a floating-point tensor.
        name (`str`, *optional*, defaults to `"pixel_values"`): the argument's name.
        expected (`str`, *optional*, defaults to `"finite values"`): what the message says was expected.
    """
    if pixel_values.numel() == 0:
        return
    low, high = _min_max(pixel_values)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InputError(f"{name}: expected {expected}, found {_non_finite(pixel_values)}")


def _check_unit_floats(pixel_values: torch.Tensor, name: str, tolerance: float, hint: str) -> tuple[float, float]:
    low, high = _min_max(pixel_values)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InputError(f"{name}: expected finite values in [0, 1], found {_non_finite(pixel_values)}")
    if low < -tolerance or high > 1 + tolerance:
        if low >= -tolerance and high <= 255 + 0.5:
            hint = _LOOKS_8_BIT
        raise InputError(f"{name}: expected values in [0, 1], found min {low:.4g}, max {high:.4g}{hint}")
    return low, high


def check_pixel_range(pixel_values: torch.Tensor, *, name: str = "pixel_values", tolerance: float = ROUNDING,
                      hint: str = "") -> None:
    """Checks that every float value is finite and in [0, 1] (within ``tolerance``): one pass, one sync.

    The float half of the pixel rule (see the module doc); :func:`to_unit_range` applies all of it.

    Args:
        pixel_values (`torch.Tensor`): a floating-point tensor that passed :func:`check_pixel_values`.
        name (`str`, *optional*, defaults to `"pixel_values"`): the argument's name.
        tolerance (`float`, *optional*, defaults to `ROUNDING`): how far outside [0, 1] is still accepted.
        hint (`str`, *optional*): appended to the out-of-range message (a likely cause); values that
            look like 0-255 get the hint to divide by 255 instead.
    """
    if pixel_values.numel() == 0:
        return
    _check_unit_floats(pixel_values, name, tolerance, hint)


def to_unit_range(pixel_values, *, name: str = "pixel_values", check_values: bool = True) -> torch.Tensor:
    """``pixel_values`` as floats in [0, 1] under the pixel rule (see the module doc).

    Args:
        pixel_values (`torch.Tensor`): pixels of any shape and real dtype.
        name (`str`, *optional*, defaults to `"pixel_values"`): the argument's name, as errors call it.
        check_values (`bool`, *optional*, defaults to `True`): `False` takes float pixels as they are, without
            the pass over them that waits for the device (see :func:`value_checks`).

    Returns:
        `torch.Tensor`: the same shape; integers as float32 / 255 (``uint16`` / 65535), floats as
        they are (clamped to [0, 1] when they were outside by no more than rounding).

    Raises `TypeError` for a non-tensor, `bool` or complex tensor and `ValueError` for values outside
    the rule (NaN, inf, floats outside [0, 1], integers outside 0-255).

    Example:

    ```python
    >>> to_unit_range(torch.tensor([0, 51, 255], dtype=torch.uint8))
    tensor([0.0000, 0.2000, 1.0000])
    ```
    """
    if not isinstance(pixel_values, torch.Tensor):
        raise InputTypeError(f"{name}: expected a torch.Tensor, found {type(pixel_values).__name__}")
    if pixel_values.dtype == torch.bool:
        raise InputTypeError(f"{name}: expected RGB values in [0, 1] (floats) or 0-255 (integers), found dtype torch.bool")
    if pixel_values.is_complex():
        raise InputTypeError(f"{name}: expected real RGB values, found dtype {pixel_values.dtype}")
    if pixel_values.dtype == torch.uint16:  # a 16-bit image
        return pixel_values.to(torch.int32).float() / 65535.0
    if not pixel_values.is_floating_point():
        if pixel_values.numel():
            low, high = (int(v) for v in torch.stack(torch.aminmax(pixel_values.to(torch.int64))).tolist())
            if low < 0 or high > 255:
                raise InputError(f"{name}: expected integer pixels in 0-255, found values from {low} to {high}")
        return pixel_values.float() / 255.0
    if pixel_values.numel() == 0 or not check_values:
        return pixel_values
    low, high = _check_unit_floats(pixel_values, name, ROUNDING, "")
    return pixel_values.clamp(0, 1) if low < 0 or high > 1 else pixel_values


__all__ = ["value_checks", "check_pixel_values", "check_pixel_range", "check_finite", "to_unit_range", "ROUNDING"]
