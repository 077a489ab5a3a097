"""A PNG grid of every corruption kind x severity (the ``quarf-hf degradations`` command), and
the PSNR table used to check and report the severity calibration."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..atomic import atomic_path
from ..models.checks import InputError, InputTypeError, check_int
from ..models.image_utils import image_to_tensor
from .registry import (
    SEVERITIES, check_corruptions, check_images, check_reference_size, check_severity, check_values, degrade,
)

LABEL_WIDTH = 130  # left column with the kind names
HEADER_HEIGHT = 20  # top row with "clean", "1" .. "5"


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image of two (B, 3, H, W) batches in [0, 1]; capped at 100 dB when equal."""
    from ..evaluation.metrics import psnr_per_image

    return psnr_per_image(a, b)


def psnr_table(images: torch.Tensor, seed: int = 0, names=None, severities=SEVERITIES, *,
               reference_size: int | None = None) -> dict[str, list[float]]:
    """Mean PSNR (dB) to ``images`` for each kind and severity: ``{name: [psnr at s for s in
    severities]}``. Each call uses a generator seeded with ``seed`` (reproducible);
    ``reference_size`` is :func:`degrade`'s (the size rule)."""
    check_reference_size(reference_size)
    check_images(images)
    check_values(images)
    names = check_corruptions(names, "names", allow_empty=True)
    for s in severities:
        check_severity(s)
    table = {}
    for name in names:
        row = []
        for s in severities:
            g = torch.Generator(device=images.device.type).manual_seed(seed)
            row.append(float(psnr(degrade(images, name, s, g, reference_size=reference_size), images).mean()))
        table[name] = row
    return table


def load_resized(path, size: int | None = None) -> torch.Tensor:
    """An image file as a (1, 3, H, W) float tensor in [0, 1], short side resized to ``size``.

    Read by :func:`quarf_hf.models.image_utils.load_image`, as every entry point of quarf-hf
    reads images (EXIF orientation applied, 16-bit PNGs at full depth, transparency composited on white)."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"image: expected a path, found {type(path).__name__}")
    return _to_tensor(path, size)


def _resize_short_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> (3, h, w) with the short side ``size``, PIL's bicubic.

    Pixels that are exact 8-bit values (an opaque 8-bit file) are resized as an 8-bit RGB image
    (the severity calibration is computed on images resized this way); any other image (16-bit, composited transparency) per channel in float ("F" mode), keeping its depth."""
    h, w = image.shape[-2:]
    scale = size / min(w, h)
    new_size = (max(1, round(w * scale)), max(1, round(h * scale)))
    levels = image * 255.0
    if torch.equal(levels, levels.round()):
        rgb = Image.fromarray(levels.round().to(torch.uint8).permute(1, 2, 0).numpy()).resize(new_size, Image.BICUBIC)
        return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
    channels = [np.asarray(Image.fromarray(c.numpy()).resize(new_size, Image.BICUBIC)) for c in image]
    return torch.from_numpy(np.stack(channels)).clamp_(0, 1)


def _to_tensor(image, size: int | None) -> torch.Tensor:
    if isinstance(image, (str, os.PathLike, Image.Image)):
        t = image_to_tensor(image, "image")
        if size is not None:
            t = _resize_short_side(t, size)
        return t[None].contiguous()
    if isinstance(image, torch.Tensor):
        t = image[None] if image.ndim == 3 else image
        check_images(t)
        check_values(t)
        if t.shape[0] != 1:
            raise InputError(f"image: expected one image (3, H, W) or (1, 3, H, W), found shape {tuple(image.shape)}")
        t = t.float().cpu()
        if size is not None:
            h, w = t.shape[-2:]
            scale = size / min(h, w)
            t = torch.nn.functional.interpolate(
                t, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="bicubic", align_corners=False, antialias=True
            ).clamp(0, 1)
        return t
    raise InputTypeError(f"image: expected a path, a PIL image or a tensor, found {type(image).__name__}")


def _to_pil(t: torch.Tensor) -> Image.Image:
    arr = (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr)


def make_gallery(image, out_path, names=None, severities=SEVERITIES, seed: int = 0, size: int | None = None,
                 *, reference_size: int | None = None) -> Path:
    """Write a PNG grid: one row per kind (labelled), columns clean then each severity.

    ``image``: a path, PIL image or (3, H, W) / (1, 3, H, W) tensor in [0, 1]; ``size`` resizes
    its short side; ``reference_size`` is :func:`degrade`'s (the size rule, applied to the
    image as shown, after ``size``). The PNG is (LABEL_WIDTH + (1 + len(severities)) * W) x
    (HEADER_HEIGHT + len(names) * H) pixels, written atomically (temporary file, then rename).
    """
    names = check_corruptions(names, "names")
    severities = list(severities)
    for s in severities:
        check_severity(s)
    check_reference_size(reference_size)
    if size is not None:
        check_int("size", size, 8, expected="an integer >= 8 (the short side in pixels)")
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".png":
        raise InputError(f"out_path: expected a .png path, found {str(out_path)!r}")
    clean = _to_tensor(image, size)
    rows = []
    for name in names:
        row = [clean[0]]
        for s in severities:
            g = torch.Generator().manual_seed(seed)
            row.append(degrade(clean, name, s, g, reference_size=reference_size)[0])
        rows.append(row)
    grid = labelled_grid(rows, names, ["clean"] + [f"severity {s}" for s in severities])
    with atomic_path(out_path) as temporary:
        grid.save(temporary, format="PNG")
    return out_path


def labelled_grid(rows, row_labels, column_titles, captions=None) -> Image.Image:
    """A white RGB image of tiles: a header of ``column_titles``, then one labelled row per entry of
    ``rows`` (each a list of (3, H, W) tensors in [0, 1], all of one size).

    ``captions`` (optional, same shape as ``rows``): a short text drawn on each tile's lower-left
    corner (on a black box; None for none). The image is (LABEL_WIDTH + columns * W) x
    (HEADER_HEIGHT + len(rows) * H) pixels.
    """
    if not rows or len(rows) != len(row_labels) or any(len(row) != len(column_titles) for row in rows):
        raise InputError(f"rows: expected {len(row_labels)} rows of {len(column_titles)} tiles, "
                         f"found {[len(row) for row in rows]}")
    h, w = rows[0][0].shape[-2:]
    grid = Image.new("RGB", (LABEL_WIDTH + len(column_titles) * w, HEADER_HEIGHT + len(rows) * h), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for col, title in enumerate(column_titles):
        draw.text((LABEL_WIDTH + col * w + 4, 4), title, fill="black", font=font)
    for row, (tiles, label) in enumerate(zip(rows, row_labels)):
        top = HEADER_HEIGHT + row * h
        draw.text((4, top + h // 2 - 6), label, fill="black", font=font)
        for col, tile in enumerate(tiles):
            if tuple(tile.shape[-2:]) != (h, w):
                raise InputError(f"rows: every tile must be {h}x{w}, found {tuple(tile.shape[-2:])} in row {row}")
            grid.paste(_to_pil(tile.detach().float().cpu()), (LABEL_WIDTH + col * w, top))
            caption = captions[row][col] if captions else None
            if caption:
                left, bottom = LABEL_WIDTH + col * w + 2, top + h - 2
                box = draw.textbbox((left, bottom), caption, font=font, anchor="lb")
                draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill="black")
                draw.text((left, bottom), caption, fill="white", font=font, anchor="lb")
    return grid
