"""One way to read images into pixels, and one reader of a saved image processor's normalisation.

Every entry point of quarf-hf (quality extraction, the image-to-image pipeline, ``quarf-hf
predict``, the degradation gallery, the segmentation datasets) reads images with
:func:`image_to_tensor`, so a file gives the same pixels whichever way it comes in.

What :func:`image_to_tensor` returns: float32 RGB of shape (3, H, W) in [0, 1]. Sources:

* **8-bit modes** (``1``, ``L``, ``P``, ``RGB``, ``CMYK``, ``YCbCr``, ...): ``value / 255``;
  palette, CMYK and other colour spaces are converted to RGB by PIL first.
* **16-bit and 32-bit integer greyscale** (``I;16``, ``I;16L``, ``I;16B``, ``I;16N``: 16-bit
  PNGs and TIFFs; ``I``: what some Pillow versions give for a 16-bit PNG): ``value / 65535``,
  clipped to [0, 1], then repeated to RGB. (Reading them through ``convert("RGB")`` clips every
  value above 255 and gives an almost white image.)
* **float greyscale** (``F``): floats under the pixel rule below.
* **numpy arrays** (HW, HWC, or CHW when only the first axis can be channels) and **tensors**
  (HW or CHW): the package's one pixel rule (:mod:`input_checks`): ``uint16`` / 65535 (16-bit),
  every other integer dtype as 0-255 (values outside refused), floats in [0, 1] up to rounding
  (further out refused, with a hint when they look like 0-255); NaN, inf, ``bool`` and complex
  refused. 1 channel is grey, 2 grey + alpha, 3 RGB, 4 RGBA.
* **paths**: opened with PIL, then as above.

**The size rule.** An image of more than :data:`MAX_PIXELS` (50 megapixels, the Space's cap) is
refused, a file from its header before any pixel is decoded: no entry point (``quarf-hf predict``,
the pipelines, the datasets, the Space) decodes or runs a model on more. Downscale it first.

**The frame rule.** A multi-frame file (an animated GIF, WebP or PNG, a multi-page TIFF) is read
from its first frame, and a ``UserWarning`` says so and how many frames it has.

**The orientation rule.** A PIL image (a file, too) with an EXIF orientation tag is turned upright
first (``PIL.ImageOps.exif_transpose``), as viewers and transformers' ``load_image`` show it:
phone photos store their pixels sideways plus a tag that says so.

**The alpha rule.** An image with transparency (``RGBA``, ``LA``, ``PA``, a palette or greyscale
with a transparent colour, a 2- or 4-channel array) is composited on white, in float:
``rgb * alpha + (1 - alpha)``, as an image viewer on a white page shows it. Fully transparent
pixels become white whatever colour they store; opaque pixels keep theirs exactly.

:func:`processor_normalisation` reads the ``(mean, std)`` a saved image processor applies,
honouring ``do_normalize=False`` (mean 0, std 1: the pixels are fed as they are).

Shipped to the Hub with the models: imports only torch, numpy, PIL, transformers and its sibling
``input_checks``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from .checks import InputError, InputTypeError
from .input_checks import to_unit_range

MAX_PIXELS = 50_000_000
"""The most pixels (width x height) an image may have (the size rule of the module doc)."""

# PIL modes read as integers with 16 significant bits (see the module doc).
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Modes with an alpha channel that numpy does not hand over as plain RGBA / LA.
_ALPHA_MODES = ("PA", "RGBa", "La")
_ORIENTATION = 0x0112  # the EXIF tag


def upright(image):
    """A PIL image turned as its EXIF orientation tag says (the image itself when it has none)."""
    from PIL import ImageOps

    if image.getexif().get(_ORIENTATION, 1) in (None, 1):
        return image
    return ImageOps.exif_transpose(image)


def check_pixel_count(name: str, width: int, height: int) -> None:
    """The size rule (module doc): at most :data:`MAX_PIXELS` pixels, said with the image's size."""
    if width * height > MAX_PIXELS:
        raise InputError(f"{name}: expected at most {MAX_PIXELS:,} pixels (50 megapixels), found {width}x{height} "
                         f"({width * height:,}); downscale it first")


def _first_frame(image, name: str):
    """``image`` at its first frame; a ``UserWarning`` when it has several (the frame rule)."""
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        warnings.warn(f"{name}: has {frames} frames; reading the first one (frame 0)", UserWarning, stacklevel=4)
        image.seek(0)
    return image


def _pil_to_array(image, name: str) -> np.ndarray:
    """A PIL image -> float32 (H, W, C) in [0, 1], C = 1 (grey), 2 (grey + alpha), 3 or 4 (RGBA)."""
    check_pixel_count(name, *image.size)
    image = upright(_first_frame(image, name))
    mode = image.mode
    if mode in SIXTEEN_BIT_MODES:
        array = np.asarray(image).astype(np.float32) / 65535.0
        return np.clip(array, 0.0, 1.0)[..., None]
    if mode == "F":
        return to_unit_range(torch.from_numpy(np.array(image, dtype=np.float32)), name=name).numpy()[..., None]
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in image.info):
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA"):  # P, CMYK, YCbCr, LAB, HSV, RGBX, ...
        image = image.convert("RGB")
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[..., None] if array.ndim == 2 else array


def _array_to_tensor(array: np.ndarray, name: str) -> torch.Tensor:
    """A numpy array -> a tensor of the same values, for :func:`input_checks.to_unit_range`."""
    if array.dtype == np.uint16:  # a 16-bit image; torch's uint16 has few operations
        return torch.from_numpy(array.astype(np.float32) / 65535.0)
    if array.dtype.kind in "iu":  # every other integer width is 0-255
        return torch.from_numpy(array.astype(np.int64))
    if array.dtype.kind in "bfc":  # bool and complex are refused by the rule, by name
        return torch.from_numpy(np.array(array))  # a copy: read-only arrays make non-writable tensors
    raise InputTypeError(f"{name}: expected integer (0-255), uint16 (16-bit) or float ([0, 1]) pixels, found {array.dtype}")


def open_image(path, name: str = "image"):
    """Opens an image file with PIL, with a clear error for a missing or unreadable file."""
    from PIL import Image

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name}: no such file {str(path)!r}")
    try:
        with warnings.catch_warnings():  # PIL's bomb warning: the size rule below says it in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)  # reads the header only
    except (OSError, Image.DecompressionBombError) as err:  # not an image; PIL's own size guard
        raise InputError(f"{name}: cannot read {str(path)!r} as an image ({err})") from err
    try:
        check_pixel_count(f"{name} {str(path)!r}", *image.size)  # before decoding
        image.load()
    except OSError as err:  # truncated files
        image.close()
        raise InputError(f"{name}: cannot read {str(path)!r} as an image ({err})") from err
    except InputError:
        image.close()
        raise
    return image


def image_to_tensor(image, name: str = "image") -> torch.Tensor:
    """Any image -> float32 RGB (3, H, W) in [0, 1], transparency composited on white.

    Args:
        image (`str`, `os.PathLike`, `PIL.Image.Image`, `np.ndarray` or `torch.Tensor`):
            a file, a PIL image of any mode, an array (HW, HWC or CHW) or a tensor (HW or CHW);
            see the module doc for how each mode and dtype is scaled.
        name (`str`, *optional*, defaults to `"image"`):
            what the error messages call the argument.

    Returns:
        `torch.Tensor`: (3, H, W), float32, in [0, 1], on the CPU (a tensor stays on its device).

    Example:

    ```python
    >>> from PIL import Image
    >>> pixels = image_to_tensor(Image.new("RGBA", (4, 2), (255, 0, 0, 0)))  # fully transparent
    >>> pixels.shape, pixels.min().item()  # white
    (torch.Size([3, 2, 4]), 1.0)
    ```
    """
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        with open_image(image, name) as opened:
            name = f"{name} {str(image)!r}"  # from here on, errors name the file
            array = _pil_to_array(opened, name)
        tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    elif isinstance(image, Image.Image):
        tensor = torch.from_numpy(np.ascontiguousarray(_pil_to_array(image, name))).permute(2, 0, 1)
    elif isinstance(image, np.ndarray):
        array = image
        if array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4) and array.shape[0] in (1, 2, 3, 4):
            array = array.transpose(1, 2, 0)  # CHW -> HWC
        if array.ndim >= 2:
            check_pixel_count(name, array.shape[1], array.shape[0])  # before any copy
        tensor = to_unit_range(_array_to_tensor(np.ascontiguousarray(array), name), name=name).float()
        if tensor.ndim == 3:
            tensor = tensor.permute(2, 0, 1)
    elif isinstance(image, torch.Tensor):
        if image.ndim >= 2:
            check_pixel_count(name, image.shape[-1], image.shape[-2])
        tensor = to_unit_range(image, name=name).float()
    else:
        raise InputTypeError(
            f"{name}: expected a path, a PIL image, a numpy array or a tensor, found {type(image).__name__}"
        )
    if tensor.ndim == 2:
        tensor = tensor[None]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 2, 3, 4):
        raise InputError(
            f"{name}: expected (H, W), (H, W, C) or (C, H, W) with 1 to 4 channels, found {tuple(tensor.shape)}"
        )
    if tensor.numel() == 0:
        raise InputError(f"{name}: the image is empty, shape {tuple(tensor.shape)}")
    if tensor.shape[0] in (2, 4):  # the alpha rule: composite on white
        alpha = tensor[-1:]
        tensor = tensor[:-1] * alpha + (1 - alpha)
    if tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    return tensor.contiguous()


def load_image(path, name: str = "image") -> torch.Tensor:
    """An image file as float32 RGB (3, H, W) in [0, 1]: :func:`image_to_tensor` of a path."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"{name}: expected a path, found {type(path).__name__}")
    return image_to_tensor(path, name)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> (H, W, 3) uint8, rounded: pixels to save or show."""
    image = image.detach().float().cpu().reshape(-1, *image.shape[-2:])
    return (image.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _as_channels(value, channels: int = 3) -> list[float]:
    values = [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)] * channels
    return values


def processor_normalisation(path_or_id, **kwargs) -> tuple[list[float], list[float]] | None:
    """The ``(mean, std)`` that a saved image processor normalises pixels with, or None.

    Reads ``preprocessor_config.json`` (or ``processor_config.json``) of a folder or Hub id the way
    transformers' image processors do. ``do_normalize=False`` gives mean 0 and std 1 (pixels in
    [0, 1] are fed as they are); otherwise its ``image_mean`` / ``image_std`` (a single number is
    repeated over 3 channels). None when there is no saved processor or it names no mean/std:
    the caller picks the fallback (ImageNet's for SegFormer).

    Args:
        path_or_id (`str` or `os.PathLike`): a model folder or Hub repo id.
        kwargs: passed to transformers' ``get_image_processor_dict`` (``revision``, ``token``, ...).

    Example:

    ```python
    >>> from transformers import SegformerImageProcessor
    >>> SegformerImageProcessor(do_normalize=False).save_pretrained("folder")
    >>> processor_normalisation("folder")
    ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    ```
    """
    from transformers.image_processing_base import ImageProcessingMixin

    try:
        data, _ = ImageProcessingMixin.get_image_processor_dict(str(path_or_id), **kwargs)
    except (OSError, ValueError):  # no processor saved, not a folder nor a reachable Hub id
        return None
    if data.get("do_normalize", True) is False:
        return [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    if data.get("image_mean") is None or data.get("image_std") is None:
        return None
    return _as_channels(data["image_mean"]), _as_channels(data["image_std"])


__all__ = ["image_to_tensor", "load_image", "open_image", "processor_normalisation", "to_uint8", "upright",
           "check_pixel_count", "MAX_PIXELS", "SIXTEEN_BIT_MODES"]
