"""Semantic-segmentation datasets from local folders, ``datasets`` objects or Hub ids, as torch
datasets of ``{"pixel_values": (3, H, W) float32 in [0, 1], "labels": (H, W) int64}``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from ..models.checks import InputError, check_int, short_repr
from ..models.image_utils import image_to_tensor
from .sources import resolve_source

MASK_COLUMN_CANDIDATES = ("label", "mask", "annotation", "semantic_segmentation", "segmentation")


def parse_size(size, argument: str = "size") -> tuple[int, int] | None:
    """``None``, an int or an ``(H, W)`` pair -> ``(H, W)``."""
    if size is None:
        return None
    expected = "a positive int or an (H, W) pair of positive ints"
    pair = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    if len(pair) != 2:
        raise InputError(f"{argument}: expected {expected}, found {short_repr(size)}")
    height, width = (check_int(argument, value, expected=expected) for value in pair)
    return height, width


def _class_label_names(feature) -> list[str] | None:
    # a ClassLabel anywhere inside the mask column (e.g. List(List(ClassLabel))) names the classes
    import datasets

    while feature is not None:
        if isinstance(feature, datasets.ClassLabel):
            return list(feature.names)
        feature = getattr(feature, "feature", None)
    return None


def _open(value, name: str):
    """A stored cell -> PIL image or numpy array (Image columns are kept undecoded so we know the path)."""
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        if value.get("bytes"):
            return PIL.Image.open(io.BytesIO(value["bytes"]))
        if value.get("path"):
            return PIL.Image.open(value["path"])
        raise InputError(f"{name}: image cell has neither bytes nor path")
    if isinstance(value, PIL.Image.Image):
        return value
    return np.asarray(value)


def _cell_name(value, fallback: str) -> str:
    if isinstance(value, dict) and value.get("path"):
        return Path(value["path"]).name
    return fallback


def _image_tensor(image) -> torch.Tensor:
    """A stored image (PIL of any mode, array) as (3, H, W) float32 in [0, 1], read as every entry
    point of quarf-hf reads images (:func:`quarf_hf.models.image_utils.image_to_tensor`: 16-bit
    at full depth, transparency composited on white)."""
    return image_to_tensor(image, "image_column")


def _mask_array(mask, name: str) -> np.ndarray:
    if isinstance(mask, PIL.Image.Image):
        # "P" gives palette indices (VOC style), "L"/"I" the stored values
        mask = np.asarray(mask.convert("L") if mask.mode in ("LA", "1") else mask)
    mask = np.asarray(mask)
    if mask.ndim == 3:
        if not (mask[..., :1] == mask[..., :3]).all():
            raise InputError(
                f"mask_column: {name} is a colour mask (shape {mask.shape}); expected one class id per pixel "
                f"(a single-channel or palette PNG)"
            )
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise InputError(f"mask_column: expected an (H, W) mask, found shape {mask.shape} in {name}")
    return mask.astype(np.int64)


class SegmentationDataset(torch.utils.data.Dataset):
    """One split of image/mask pairs; decodes, converts and checks each item when it is read.

    ``num_labels`` / ``id2label`` come from, in order: ``id2label`` / ``num_labels`` given,
    ``label_map`` (its largest train id + 1), a ``ClassLabel`` inside the mask column, and last a
    scan of every mask (largest value that is not ``ignore_index``, + 1; names are the ids).
    """

    def __init__(self, table, image_column: str, mask_column: str, *, label_map=None, ignore_index: int = 255,
                 num_labels: int | None = None, id2label: dict | None = None, size=None,
                 description: str = "dataset"):
        import datasets

        self.description = description
        self.image_column, self.mask_column = image_column, mask_column
        self.ignore_index = int(ignore_index)
        self.size = parse_size(size)
        class_names = _class_label_names(table.features.get(mask_column))
        # undecoded Image cells keep the file path, which the error messages name
        for column in (image_column, mask_column):
            if isinstance(table.features[column], datasets.Image):
                table = table.cast_column(column, datasets.Image(decode=False))
        self.table = table

        self.lookup = None
        if label_map is not None:
            if not isinstance(label_map, dict) or not label_map:
                raise InputError(f"label_map: expected a non-empty dict raw value -> train id, found {short_repr(label_map)}")
            raw = np.array([int(k) for k in label_map], dtype=np.int64)
            ids = np.array([int(v) for v in label_map.values()], dtype=np.int64)
            if raw.min() < 0 or ids.min() < 0:
                raise InputError(f"label_map: expected non-negative raw values and train ids, found {short_repr(label_map)}")
            # a lookup table: raw values not in the map (and ignore_index itself) become ignore_index
            self.lookup = np.full(max(int(raw.max()), self.ignore_index) + 1, self.ignore_index, dtype=np.int64)
            self.lookup[raw] = ids

        if id2label is not None:
            id2label = {int(k): str(v) for k, v in id2label.items()}
            if num_labels is not None and int(num_labels) != len(id2label):
                raise InputError(f"num_labels: {num_labels} does not match id2label, which names {len(id2label)} classes")
            num_labels = len(id2label)
        if num_labels is None and self.lookup is not None:
            train_ids = [int(v) for v in label_map.values() if int(v) != self.ignore_index]
            num_labels = max(train_ids) + 1 if train_ids else None
        if num_labels is None and class_names is not None:
            num_labels, id2label = len(class_names), dict(enumerate(class_names))
        if num_labels is None:
            num_labels = self._scan_num_labels()
        check_int("num_labels", num_labels)
        self.num_labels = num_labels
        self.id2label = id2label if id2label is not None else {i: str(i) for i in range(num_labels)}
        if self.lookup is not None:
            bad = sorted({int(v) for v in label_map.values() if int(v) != self.ignore_index and int(v) >= num_labels})
            if bad:
                raise InputError(f"label_map: train ids {bad} are >= num_labels={num_labels} and not ignore_index={self.ignore_index}")

    def _scan_num_labels(self) -> int:
        # no class list anywhere: read every mask once (O(N) decodes at construction)
        largest = -1
        for index in range(len(self.table)):
            values = np.unique(self._raw_mask(index)[0])
            values = values[values != self.ignore_index]
            if values.size:
                largest = max(largest, int(values.max()))
        if largest < 0:
            raise InputError(f"num_labels: could not infer it from {self.description}: every mask is ignore_index={self.ignore_index}")
        return largest + 1

    def _raw_mask(self, index: int) -> tuple[np.ndarray, str]:
        cell = self.table[index][self.mask_column]
        name = _cell_name(cell, f"{self.description} item {index}")
        return _mask_array(_open(cell, name), name), name

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index: {index} out of range for {len(self)} samples")
        index = index % len(self)
        row = self.table[index]
        image_name = _cell_name(row[self.image_column], f"{self.description} item {index}")
        pixels = _image_tensor(_open(row[self.image_column], image_name))
        mask_name = _cell_name(row[self.mask_column], f"{self.description} item {index}")
        mask = _mask_array(_open(row[self.mask_column], mask_name), mask_name)
        if tuple(pixels.shape[1:]) != mask.shape:
            raise InputError(
                f"mask_column: image {image_name} is {tuple(pixels.shape[1:])} (H, W) but its mask {mask_name} "
                f"is {mask.shape}; expected the same size"
            )
        if self.lookup is not None:
            clipped = np.clip(mask, 0, len(self.lookup) - 1)
            mask = np.where((mask >= 0) & (mask < len(self.lookup)), self.lookup[clipped], self.ignore_index)
        else:
            bad = np.unique(mask[((mask >= self.num_labels) | (mask < 0)) & (mask != self.ignore_index)])
            if bad.size:
                raise InputError(
                    f"num_labels: mask {mask_name} holds values {bad[:10].tolist()} outside 0..{self.num_labels - 1} "
                    f"that are not ignore_index={self.ignore_index}; pass a label_map or the right num_labels"
                )
        labels = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64))
        if self.size is not None and tuple(pixels.shape[1:]) != self.size:
            pixels = F.interpolate(pixels[None], size=self.size, mode="bilinear", antialias=True, align_corners=False)[0]
            pixels = pixels.clamp_(0, 1)
            # nearest keeps every label one of the original values
            labels = F.interpolate(labels[None, None].double(), size=self.size, mode="nearest")[0, 0].long()
        return {"pixel_values": pixels.contiguous(), "labels": labels}

    def __repr__(self) -> str:
        return f"SegmentationDataset({self.description}, {len(self)} samples, num_labels={self.num_labels})"


def load_segmentation_dataset(source, split: str = "train", *, image_column: str = "image", mask_column: str | None = None,
                              label_map: dict | None = None, ignore_index: int = 255, num_labels: int | None = None,
                              id2label: dict | None = None, size=None) -> SegmentationDataset:
    """One split of a segmentation dataset as a :class:`SegmentationDataset`.

    ``source``: a ``datasets.Dataset`` (``split`` ignored) or ``DatasetDict``; a ``save_to_disk``
    folder; an imagefolder (``metadata.jsonl``/``.csv`` with ``file_name`` and ``mask_file_name``,
    giving ``image`` and ``mask`` columns); a folder with ``images/`` and ``masks/`` (``<stem>.png``),
    optionally split into ``images/<split>``, ``masks/<split>``; or a Hub dataset id.
    """
    parse_size(size)
    table, description, pairs = resolve_source(source, split)
    if pairs:
        image_column, mask_column = "image", "mask"
    columns = list(table.column_names)
    if image_column not in columns:
        raise InputError(f"image_column: {image_column!r} not found in {description}; columns are {columns}")
    if mask_column is None:
        found = [c for c in MASK_COLUMN_CANDIDATES if c in columns]
        if not found:
            raise InputError(
                f"mask_column: none given and none of {list(MASK_COLUMN_CANDIDATES)} found in {description}; "
                f"columns are {columns}"
            )
        mask_column = found[0]
    elif mask_column not in columns:
        raise InputError(f"mask_column: {mask_column!r} not found in {description}; columns are {columns}")
    if len(table) == 0:
        raise InputError(f"source: {description} has no samples (split {split!r}); expected at least one")
    return SegmentationDataset(table, image_column, mask_column, label_map=label_map, ignore_index=ignore_index,
                               num_labels=num_labels, id2label=id2label, size=size, description=description)
