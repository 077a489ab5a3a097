"""Reading the Space's input image: an upload (any PIL mode and bit depth) or a built-in photo
by name (:mod:`quarf_hf.data.photos`), as RGB float in [0, 1], downscaled to the page's size cap.
Both go through :func:`quarf_hf.models.image_utils.image_to_tensor`."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from ..models.checks import InputError
from ..models.image_utils import MAX_PIXELS, image_to_tensor

# Longest side, in pixels, the page works at; larger uploads are downscaled (and the page says so).
MAX_SIDE = 1024


def load_upload(path: str | Path) -> torch.Tensor:
    """An uploaded image file as a (1, 3, H, W) float32 tensor in [0, 1].

    Pixels as every entry point of quarf-hf reads them
    (:func:`quarf_hf.models.image_utils.image_to_tensor`: EXIF orientation applied, 16-bit at full
    depth, transparency composited on white); in addition huge files are refused before decoding,
    animated formats give their first frame and errors name the file without its temporary folder.

    Raises:
        ValueError: the file is not an image PIL can read, or is larger than ``MAX_PIXELS``.
    """
    name = Path(path).name
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                too_large = f"image: expected at most {MAX_PIXELS:,} pixels, found {width}x{height} in {name!r}"
                raise OverflowError(too_large)
            image.seek(0)
            pixels = image_to_tensor(image, "image")
    except UnidentifiedImageError:
        raise InputError(f"image: expected an image file (PNG, JPEG, WebP, ...), {name!r} is not an image PIL can read") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt image data
        reason = str(err).replace(str(path), name)
        raise InputError(f"image: expected an image file (PNG, JPEG, WebP, ...), cannot read {name!r} ({reason})") from None
    except OverflowError as err:  # raised above, before decoding
        raise InputError(str(err)) from None
    except Image.DecompressionBombError:
        raise InputError(f"image: expected at most {MAX_PIXELS:,} pixels, {name!r} is larger") from None
    return pixels.unsqueeze(0).contiguous()


def load_photo_input(name) -> torch.Tensor:
    """A built-in photo, by name only (never a path), as a (1, 3, H, W) float32 tensor in [0, 1].

    Raises:
        InputError: ``name`` is not one of :func:`quarf_hf.data.photos.photo_names`.
    """
    from quarf_hf.data.photos import load_photo

    return load_photo(name, "photo").unsqueeze(0).contiguous()


def load_input(upload, photo) -> torch.Tensor:
    """The image a request works on: the upload when there is one, else the built-in photo ``photo``.

    Raises:
        InputError: neither is given, the upload is not a readable image, or the photo is unknown.
    """
    if upload is not None:
        return load_upload(upload)
    if photo:
        return load_photo_input(photo)
    raise InputError("image: upload an image or pick a built-in photo first")


def fit_to_cap(image: torch.Tensor, min_side: int, max_side: int = MAX_SIDE) -> tuple[torch.Tensor, str | None]:
    """Downscale ``image`` (1, 3, H, W) so that its longer side is at most ``max_side``.

    Returns the image and a notice for the page (``None`` when nothing changed).

    Raises:
        ValueError: the image (after downscaling) is smaller than ``min_side`` on a side, which
            the models cannot take (a 1x1 image, or a 10000x10 strip).
    """
    height, width = image.shape[-2:]
    scale = min(1.0, max_side / max(height, width))
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    if min(new_height, new_width) < min_side:
        after = f", {new_width}x{new_height} after downscaling to the {max_side}-pixel cap" if scale < 1 else ""
        raise InputError(
            f"image: expected at least {min_side}x{min_side} pixels on each side, found {width}x{height}{after}"
        )
    if scale == 1.0:
        return image, None
    resized = torch.nn.functional.interpolate(image, size=(new_height, new_width), mode="bilinear",
                                              antialias=True, align_corners=False).clamp(0, 1)
    notice = (f"The image is {width}x{height} pixels; it was downscaled to {new_width}x{new_height} "
              f"(this page works on at most {max_side} pixels on the longer side).")
    return resized, notice


__all__ = ["load_upload", "load_photo_input", "load_input", "fit_to_cap", "MAX_SIDE"]
