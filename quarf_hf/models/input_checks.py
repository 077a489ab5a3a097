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
:func:`check_pixel_range` is the one check of float pixel values (its one hint and its slack:
:data:`ROUNDING`, or :data:`PIXEL_SLACK` for a network's input un-normalised with its mean and std).

**The value-check rule**: a check that passes over the values waits for the device (a host sync),
so every such check in the package (pixels, quality features, labels) runs only where
:func:`value_checks` says: in inference, on a module's first training forward, never while
``torch.compile`` / ``torch.export`` trace, and never inside ``with no_value_checks():`` or with
``QUARF_VALUE_CHECKS=0`` in the environment (the off switch). Structural checks (type, shape,
dtype) always run. Shipped to the Hub with the models: imports only the standard library and torch.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import os

import torch

from .checks import InputError, InputTypeError

ROUNDING = 0.5 / 255
"""How far outside [0, 1] pixels documented as [0, 1] may lie (half an 8-bit step: rounding) and still be accepted."""

PIXEL_SLACK = 4.0
"""How far outside [0, 1] a network's pixel input, un-normalised with its mean and std, may lie (noisy diffusion
samples reach a few units) before it is taken for a mistake such as 0-255 values given unnormalised."""


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


VALUE_CHECKS_ENV = "QUARF_VALUE_CHECKS"
"""The environment variable that switches value checks off for the whole process: ``0``, ``false``, ``off`` or ``no``."""

# Set by `no_value_checks()` in the calling thread / context.
_switched_off = contextvars.ContextVar("quarf_value_checks_off", default=False)
# The module whose forward is in progress (see `value_checks_per_call`), and its decision once made.
_current_call = contextvars.ContextVar("quarf_value_checks_call", default=None)


def value_checks(module: torch.nn.Module | None = None) -> bool:
    """Whether to check values now: the one rule for every check that passes over a tensor's values and waits
    for the device to read the result back (a host sync): NaN, inf, pixel range, label ids.

    * Never while ``torch.compile`` or ``torch.export`` (and so the ONNX exporter) traces, where a check of
      values would be a graph break or a data-dependent guard; never when switched off
      (:func:`no_value_checks`, or :data:`VALUE_CHECKS_ENV` ``=0`` in the environment).
    * For ``module`` (a forward of it is running): in inference (eval mode, or autograd off) always; in
      training only in its first forward that asks (the data loader's items were checked when loaded, and a
      sync per step would stall an accelerator).
    * Without ``module``: the decision of the module whose forward is in progress in this thread (a method
      decorated with :func:`value_checks_per_call`), made once per call when first asked; outside such a
      forward (functions called on their own: image readers, ``quality_vector``, ``degrade``) always.

    Example:

    ```python
    >>> value_checks()
    True
    >>> with no_value_checks():
    ...     value_checks()
    False
    ```
    """
    if torch.compiler.is_compiling() or torch.compiler.is_exporting() or _is_switched_off():
        return False
    if module is None:
        call = _current_call.get()
        if call is None:
            return True
        if call[1] is None:  # a training forward: the first question decides
            call[1] = _first_training_forward(call[0])
        return call[1]
    return not _in_training(module) or _first_training_forward(module)


def _is_switched_off() -> bool:
    return _switched_off.get() or os.environ.get(VALUE_CHECKS_ENV, "").strip().lower() in ("0", "false", "off", "no")


def _in_training(module: torch.nn.Module) -> bool:
    return module.training and torch.is_grad_enabled()


def _first_training_forward(module: torch.nn.Module) -> bool:
    if module.__dict__.get("_checked_a_training_batch"):
        return False
    module.__dict__["_checked_a_training_batch"] = True  # not a buffer or parameter: never saved
    return True


@contextlib.contextmanager
def no_value_checks():
    """Switches every value check off in the calling thread for the ``with`` block (the off switch of
    :func:`value_checks`; :data:`VALUE_CHECKS_ENV` ``=0`` does it for the whole process). Structural checks
    (types, shapes, dtypes) still run: they need no pass over the data."""
    token = _switched_off.set(True)
    try:
        yield
    finally:
        _switched_off.reset(token)


def value_checks_per_call(method):
    """Decorates a module's ``forward`` (or another method run per call) so that :func:`value_checks` without
    a module, asked anywhere inside it (the functions it calls included), answers for that module, decided
    once per call. While compiling or exporting it adds nothing to the traced code."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return method(self, *args, **kwargs)
        # Inference decides now (autograd may be off only inside); a training forward when first asked.
        token = _current_call.set([self, None if _in_training(self) else True])
        try:
            return method(self, *args, **kwargs)
        finally:
            _current_call.reset(token)

    return wrapper


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


def check_pixel_range(pixel_values: torch.Tensor, *, name: str = "pixel_values", slack: float = ROUNDING,
                      normalised: bool = False) -> tuple[float, float]:
    """The one check of pixel values: every value finite and in [0, 1], within ``slack``; one pass, one host sync.

    Callers ask :func:`value_checks` first; :func:`to_unit_range` (the whole pixel rule) calls this.

    Args:
        pixel_values (`torch.Tensor`): a floating-point tensor that passed :func:`check_pixel_values`.
        name (`str`, *optional*, defaults to `"pixel_values"`): the argument's name.
        slack (`float`, *optional*, defaults to `ROUNDING`): how far outside [0, 1] is still accepted
            (:data:`PIXEL_SLACK` for a network's input un-normalised by the caller).
        normalised (`bool`, *optional*, defaults to `False`): the values are a network's normalised input,
            un-normalised by the caller with the network's mean and std; the messages say so.

    Returns:
        `tuple[float, float]`: the smallest and largest value ((0.0, 1.0) for an empty tensor).

    Raises `ValueError` naming NaN / inf, or the values' range with a hint when it has a likely cause.
    """
    if pixel_values.numel() == 0:
        return 0.0, 1.0
    low, high = _min_max(pixel_values)
    expected = "pixel values normalised with the model's image processor (its mean and std)" if normalised else "values in [0, 1]"
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InputError(f"{name}: expected finite {expected}, found {_non_finite(pixel_values)}")
    if low < -slack or high > 1 + slack:
        found = (f"values that un-normalise to min {low:.4g}, max {high:.4g}, far outside [0, 1]" if normalised
                 else f"min {low:.4g}, max {high:.4g}")
        raise InputError(f"{name}: expected {expected}, found {found}{_range_hint(low, high, slack, normalised)}")
    return low, high


def _range_hint(low: float, high: float, slack: float, normalised: bool) -> str:
    """The likely cause of pixels outside [0, 1]: 0-255 values, or (un-normalised pixels expected) normalised ones."""
    if low >= -slack and high <= 255 + 0.5:
        return "; they look like 0-255 values: " + ("use the model's image processor, or divide by 255 first"
                                                    if normalised else "divide by 255")
    if not normalised and low < -slack:
        return "; negative values: normalised pixels? un-normalise them to [0, 1] first"
    return ""


def to_unit_range(pixel_values, *, name: str = "pixel_values") -> torch.Tensor:
    """``pixel_values`` as floats in [0, 1] under the pixel rule (see the module doc).

    Args:
        pixel_values (`torch.Tensor`): pixels of any shape and real dtype.
        name (`str`, *optional*, defaults to `"pixel_values"`): the argument's name, as errors call it.

    Returns:
        `torch.Tensor`: the same shape; integers as float32 / 255 (``uint16`` / 65535), floats as
        they are (clamped to [0, 1] when they were outside by no more than rounding). Where
        :func:`value_checks` says no, the values are not looked at (no pass over them, no clamp).

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
        if pixel_values.numel() and value_checks():
            low, high = (int(v) for v in torch.stack(torch.aminmax(pixel_values.to(torch.int64))).tolist())
            if low < 0 or high > 255:
                raise InputError(f"{name}: expected integer pixels in 0-255, found values from {low} to {high}")
        return pixel_values.float() / 255.0
    if pixel_values.numel() == 0 or not value_checks():
        return pixel_values
    low, high = check_pixel_range(pixel_values, name=name)
    return pixel_values.clamp(0, 1) if low < 0 or high > 1 else pixel_values


__all__ = [
    "value_checks",
    "value_checks_per_call",
    "no_value_checks",
    "VALUE_CHECKS_ENV",
    "check_pixel_values",
    "check_pixel_range",
    "check_finite",
    "to_unit_range",
    "ROUNDING",
    "PIXEL_SLACK",
]
