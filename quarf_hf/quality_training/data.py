"""Training images for a quality encoder: square tiles from scenes, datasets or a folder of photos.

A source is one of:

* ``"quarf-shapes"`` or any :func:`quarf_hf.data.load_dataset_spec` dict (quarf-shapes, a
  segmentation folder, a ``datasets`` source): its ``pixel_values`` are used, labels ignored;
* ``{"type": "images", "path": FOLDER}``: every photo in a folder. Options: ``files`` (names to
  keep), ``resize_short_side`` (scale each photo first so its short side has this many pixels),
  ``repeats`` (tiles cut from each photo), ``optional`` (skip, with a warning, a folder that
  does not exist).

Each item is an ``image_size`` x ``image_size`` tile at a position drawn from ``(seed, index)``,
so an item is the same in every epoch and in a resumed run. Sizes are checked when the data is
built, before any training: a too-small image is a ``ValueError`` naming it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..data.sources import IMAGE_EXTENSIONS
from ..models.checks import InputError, check_int
from ..training.seeds import mixed_seed

IMAGES_KEYS = ("type", "path", "files", "resize_short_side", "repeats", "optional")


class PhotoFolder(torch.utils.data.Dataset):
    """The photos of a folder as float (3, H, W) tensors in [0, 1], optionally rescaled."""

    def __init__(self, path, files=None, resize_short_side: int | None = None):
        from PIL import Image

        self.root = Path(path).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"path: photo folder not found: {self.root.resolve()}")
        found = sorted(p for p in self.root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if files is not None:
            names = {p.name for p in found}
            missing = [f for f in files if f not in names]
            if missing:
                raise FileNotFoundError(f"files: {missing} not found in {self.root}")
            found = [p for p in found if p.name in set(files)]
        if not found:
            raise InputError(f"path: {self.root} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        if resize_short_side is not None:
            check_int("resize_short_side", resize_short_side)
        self.paths, self.resize_short_side = found, resize_short_side
        self.sizes = []  # (H, W) after rescaling, read from the headers only
        for p in found:
            with Image.open(p) as image:
                width, height = image.size
            if resize_short_side:
                scale = resize_short_side / min(height, width)
                height, width = max(1, round(height * scale)), max(1, round(width * scale))
            self.sizes.append((height, width))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        from ..models.image_utils import load_image

        # The package's one loader: 16-bit photos at full depth, transparency composited on white.
        pixels = load_image(self.paths[index], "path")
        height, width = self.sizes[index]
        if tuple(pixels.shape[-2:]) != (height, width):
            pixels = torch.nn.functional.interpolate(pixels[None], size=(height, width), mode="bicubic",
                                                     antialias=True, align_corners=False)[0].clamp(0, 1)
        return {"pixel_values": pixels.contiguous()}

    def describe(self, index) -> str:
        return str(self.paths[index])


def _source(spec, index: int):
    """(dataset, repeats, known sizes or None, description) for one spec; None when optional and absent."""
    from ..data import load_dataset_spec

    if isinstance(spec, dict) and spec.get("type") == "images":
        unknown = sorted(set(spec) - set(IMAGES_KEYS))
        if unknown:
            raise InputError(f"data.train[{index}]: unknown keys {unknown}; allowed: {list(IMAGES_KEYS)}")
        if "path" not in spec:
            raise InputError(f"data.train[{index}]: an images spec needs a 'path'")
        if spec.get("optional") and not Path(spec["path"]).expanduser().is_dir():
            warnings.warn(f"data.train[{index}]: optional photo folder {spec['path']!r} not found, skipped", stacklevel=3)
            return None
        repeats = spec.get("repeats", 1)
        check_int(f"data.train[{index}].repeats", repeats)
        dataset = PhotoFolder(spec["path"], files=spec.get("files"), resize_short_side=spec.get("resize_short_side"))
        return dataset, repeats, dataset.sizes, f"photos in {spec['path']}"
    dataset = load_dataset_spec(spec)
    sizes = [tuple(dataset.size)] * len(dataset) if hasattr(dataset, "seed") and hasattr(dataset, "size") else None
    return dataset, 1, sizes, repr(dataset) if hasattr(dataset, "seed") else str(spec)


class QualityImages(torch.utils.data.Dataset):
    """Square tiles from one or more sources: ``{"pixel_values": (3, S, S)}`` in [0, 1], ``S = image_size``."""

    def __init__(self, specs, image_size: int, seed: int = 0, argument: str = "data.train"):
        specs = specs if isinstance(specs, list) else [specs]
        if not specs:
            raise InputError(f"{argument}: expected at least one dataset spec, found an empty list")
        self.image_size, self.seed, self.argument = image_size, seed, argument
        self.items: list[tuple[object, int]] = []  # (dataset, index in it)
        self.groups: list[int] = []  # one id per underlying image: its tiles share it
        self.descriptions = []
        for number, spec in enumerate(specs):
            source = _source(spec, number)
            if source is None:
                continue
            dataset, repeats, sizes, description = source
            if sizes is None:  # no cheap way to read every size: check the first item now, the rest when loaded
                sizes = [tuple(dataset[0]["pixel_values"].shape[-2:])]
            for item, size in enumerate(sizes):
                if min(size) < image_size:
                    where = dataset.describe(item) if hasattr(dataset, "describe") else f"{description} item {item}"
                    raise InputError(f"image_size: {where} is {size[0]}x{size[1]} pixels, smaller than the "
                                     f"{image_size}x{image_size} tiles; lower image_size or use larger images")
            first = len(set(self.groups))
            self.items += [(dataset, i) for i in range(len(dataset)) for _ in range(repeats)]
            self.groups += [first + i for i in range(len(dataset)) for _ in range(repeats)]
            self.descriptions.append(f"{description} ({len(dataset)} x {repeats})")
        if not self.items:
            raise InputError(f"{argument}: no images found (every source was optional and absent)")

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        dataset, inner = self.items[index]
        pixels = dataset[inner]["pixel_values"].float()
        height, width = pixels.shape[-2:]
        size = self.image_size
        if min(height, width) < size:
            raise InputError(f"image_size: {self.argument} item {index} is {height}x{width} pixels, smaller than "
                             f"the {size}x{size} tiles")
        generator = torch.Generator().manual_seed(mixed_seed(self.seed, index))
        top = int(torch.randint(height - size + 1, (1,), generator=generator))
        left = int(torch.randint(width - size + 1, (1,), generator=generator))
        return {"pixel_values": pixels[:, top:top + size, left:left + size].clamp(0, 1).contiguous(), "index": index}
