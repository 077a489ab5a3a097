"""Clean crops of photographs, the targets of restoration: the built-in photos (``{type: photos}``)
and a user's folder (``{type: images, path: ...}``) through the same class and the same reader
(:func:`quarf_hf.models.image_utils.image_to_tensor`).

Items are ``{"pixel_values": crop, "labels": crop}``: (3, h, w) float32 RGB in [0, 1], the same
clean pixels twice (two tensors); the training loop degrades ``pixel_values`` on the device.
"""

from __future__ import annotations

import math
from pathlib import Path

import PIL.Image
import torch

from ..models.checks import InputError, check_choice, check_int, short_repr
from ..models.image_utils import image_to_tensor
from .segmentation import parse_size
from .shapes import _seed
from .sources import IMAGE_EXTENSIONS

CROPS = ("random", "grid")


def image_files(folder, argument: str = "path") -> list[Path]:
    """The image files directly in ``folder`` (by extension, sorted by name); none is an error."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{argument}: folder not found: {folder.resolve()}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise InputError(f"{argument}: no images in {folder.resolve()}; expected files ending in "
                         f"{', '.join(IMAGE_EXTENSIONS)}")
    return files


def grid_offsets(length: int, crop: int) -> list[int]:
    """Where the evaluation crops start along one side: ``ceil(length / crop)`` crops, evenly spread
    from 0 to ``length - crop``, so together they cover the whole side with the least overlap."""
    count = math.ceil(length / crop)
    if count == 1:
        return [0]
    return [round(i * (length - crop) / (count - 1)) for i in range(count)]


def _header_size(path: Path, name: str) -> tuple[int, int]:
    """(H, W) from the file's header, without decoding the pixels (the checks before any work)."""
    try:
        with PIL.Image.open(path) as image:
            width, height = image.size
    except OSError as err:  # PIL.UnidentifiedImageError and unreadable files
        raise InputError(f"{name}: cannot read {str(path)!r} as an image ({err})") from None
    return height, width


class PhotoCrops(torch.utils.data.Dataset):
    """Crops of a list of photographs, read with :func:`~quarf_hf.models.image_utils.image_to_tensor`.

    Args:
        photos: ``(name, path)`` pairs, one per photograph.
        crop_size: an int (square crops) or an ``(h, w)`` pair; at most every photo's size.
        crops: ``"random"`` (training): item ``i`` is a crop of photo ``i % len(photos)`` at a random
            place, flipped left-right with probability 1/2 and rotated by a random multiple of 90
            degrees (of 180 when the crop is not square), all drawn from a generator seeded by
            ``(seed, epoch, i)``: the same item for the same seed, epoch and index.
            ``"grid"`` (evaluation): a fixed grid of crops over each photo (:func:`grid_offsets`
            on each side), photo by photo in order, never flipped or rotated.
        num_samples: items of a ``"random"`` dataset (default: as many as the grid has).
        seed: the random crops' seed.
        description: what the messages and ``repr`` call the dataset.
        argument: the setting the messages name for the photos (``photos``, ``path``).
        cache: keep each photo's pixels in memory after the first read (3 * H * W * 4 bytes each).

    Every check happens here, before any pixels are read: the files' sizes come from their headers.
    """

    def __init__(self, photos, crop_size=128, *, crops: str = "grid", num_samples: int | None = None, seed: int = 0,
                 description: str = "photos", argument: str = "photos", cache: bool = True):
        self.photos = [(str(name), Path(path)) for name, path in photos]
        if not self.photos:
            raise InputError(f"{argument}: no photos to crop")
        self.crop_size = parse_size(crop_size, "crop_size")
        check_choice("crops", crops, CROPS)
        check_int("seed", seed, minimum=None)
        if not isinstance(cache, bool):
            raise InputError(f"cache: expected true or false, found {short_repr(cache)}")
        self.crops, self.seed, self.description, self.argument, self.cache = crops, seed, description, argument, cache
        self.epoch = 0
        self.sizes = [_header_size(path, argument) for _, path in self.photos]
        ch, cw = self.crop_size
        small = [(name, size) for (name, _), size in zip(self.photos, self.sizes) if size[0] < ch or size[1] < cw]
        if small:
            name, (h, w) = small[0]
            raise InputError(
                f"crop_size: {ch}x{cw} (HxW) is larger than {len(small)} of the {len(self.photos)} photos, first "
                f"{name!r} ({h}x{w}); expected at most {min(s[0] for s in self.sizes)}x{min(s[1] for s in self.sizes)}"
            )
        self.grid = [(index, top, left) for index, (h, w) in enumerate(self.sizes)
                     for top in grid_offsets(h, ch) for left in grid_offsets(w, cw)]
        if num_samples is not None:
            if crops != "random":
                raise InputError(f"num_samples: only for crops: random (grid crops are fixed: {len(self.grid)} here), "
                                 f"found {short_repr(num_samples)}")
            check_int("num_samples", num_samples)
        self.num_samples = len(self.grid) if num_samples is None else num_samples
        self._pixels: dict[int, torch.Tensor] = {}

    @property
    def names(self) -> list[str]:
        """The photos' names, in order."""
        return [name for name, _ in self.photos]

    def set_epoch(self, epoch: int) -> None:
        """Draws other random crops from here on (``crops="random"``; the grid does not change)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.grid) if self.crops == "grid" else self.num_samples

    def photo(self, index: int) -> torch.Tensor:
        """Photo ``index`` whole, (3, H, W) float32 in [0, 1]."""
        if index in self._pixels:
            return self._pixels[index]
        name, path = self.photos[index]
        pixels = image_to_tensor(path, f"{self.argument} {name!r}")
        if self.cache:
            self._pixels[index] = pixels
        return pixels

    def placement(self, index: int) -> dict:
        """Where item ``index`` comes from: ``{"photo", "top", "left", "flip", "rotations"}`` (the window
        ``top``/``left`` is cut before the flip and ``rotations`` quarter turns)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index: {index} out of range for {len(self)} samples")
        index %= len(self)
        if self.crops == "grid":
            photo, top, left = self.grid[index]
            return {"photo": photo, "top": top, "left": left, "flip": False, "rotations": 0}
        generator = torch.Generator().manual_seed(_seed(_seed(self.seed, self.epoch), index))
        photo = index % len(self.photos)
        ch, cw = self.crop_size
        if ch == cw:
            rotations = int(torch.randint(4, (1,), generator=generator))
        else:  # a quarter turn would change the crop's shape
            rotations = 2 * int(torch.randint(2, (1,), generator=generator))
        flip = bool(torch.randint(2, (1,), generator=generator))
        h, w = self.sizes[photo]
        wh, ww = (cw, ch) if rotations % 2 else (ch, cw)
        top = int(torch.randint(h - wh + 1, (1,), generator=generator))
        left = int(torch.randint(w - ww + 1, (1,), generator=generator))
        return {"photo": photo, "top": top, "left": left, "flip": flip, "rotations": rotations}

    def __getitem__(self, index: int) -> dict:
        where = self.placement(index)
        ch, cw = self.crop_size
        wh, ww = (cw, ch) if where["rotations"] % 2 else (ch, cw)
        crop = self.photo(where["photo"])[:, where["top"]:where["top"] + wh, where["left"]:where["left"] + ww]
        if where["flip"]:
            crop = crop.flip(-1)
        crop = torch.rot90(crop, where["rotations"], dims=(1, 2))
        # copies: a crop may be a view of the cached photo, which callers must not be able to change
        return {"pixel_values": crop.clone(memory_format=torch.contiguous_format),
                "labels": crop.clone(memory_format=torch.contiguous_format)}

    def __repr__(self) -> str:
        return (f"PhotoCrops({self.description}, {len(self.photos)} photos, {len(self)} {self.crops} crops of "
                f"{self.crop_size[0]}x{self.crop_size[1]}, seed={self.seed})")
