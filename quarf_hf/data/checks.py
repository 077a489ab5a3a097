"""Reading every item of a dataset before any work: a damaged image or a mask of the wrong size is
found up front (and named), not in the middle of an evaluation or after a training step."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.checks import InputError
from ..tasks import get_task
from .shapes import QuarfShapes


class CheckedSubset(torch.utils.data.Subset):
    """The readable items of a dataset; its other attributes (``num_labels``, ``id2label``, ...) pass through."""

    def __getattr__(self, name):
        if name in ("dataset", "indices"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def item_name(dataset, index: int) -> str:
    """The image file behind item ``index`` where the dataset keeps one, else ``item <index>``."""
    table = getattr(dataset, "table", None)
    column = getattr(dataset, "image_column", None)
    if table is not None and column is not None:
        try:
            cell = table[index][column]
        except Exception:  # noqa: BLE001 - the name is only for the message
            cell = None
        if isinstance(cell, dict) and cell.get("path"):
            return str(cell["path"])
    return f"item {index}"


def check_items(dataset, argument: str = "dataset", *, skip_bad: bool = False, same_size: bool = False,
                task: str = "segmentation"):
    """Reads every item of ``dataset`` once; returns ``(dataset, skipped)``.

    An item is bad when reading it raises (unreadable or damaged image or mask, a mask whose size
    differs from its image's, a class id out of range), when its labels do not have the task's
    shape (its ``label_dims`` in :mod:`quarf_hf.tasks`: (H, W) class ids for segmentation, (3, H, W)
    images for restoration), or, with
    ``same_size`` (training batches are stacked), when its image size differs from the first
    good item's. Without ``skip_bad`` the first bad item raises a one-line ``ValueError`` naming
    ``argument`` and the item's file; with it the good items are returned as a
    :class:`CheckedSubset` and ``skipped`` lists ``(name, reason)`` for each bad one.
    """
    want = get_task(task).label_dims
    if isinstance(dataset, QuarfShapes):  # generated, never unreadable
        return dataset, []
    good, skipped, shape = [], [], None
    for index in range(len(dataset)):
        name = item_name(dataset, index)
        try:
            item = dataset[index]
            pixels = torch.as_tensor(item["pixel_values"])
            labels = torch.as_tensor(item["labels"])
            if labels.ndim != want:
                raise InputError(f"labels of shape {tuple(labels.shape)}, expected {want} dimensions")
            if same_size and shape is not None and tuple(pixels.shape) != shape:
                raise InputError(f"image of shape {tuple(pixels.shape)}, but the first is {shape}; "
                                 f"give the dataset spec a 'size' to resize every image")
        except Exception as err:  # noqa: BLE001 - every read error is the item's, named below
            reason = " ".join(str(err).split()) or type(err).__name__
            if not skip_bad:
                where = name if name in reason or Path(name).name in reason else f"{name}"
                raise InputError(f"{argument}: {where} cannot be used ({type(err).__name__}: {reason}); "
                                 f"fix or remove it, or pass --skip-bad to leave such items out") from None
            skipped.append((name, reason))
            continue
        if shape is None:
            shape = tuple(pixels.shape)
        good.append(index)
    if not good:
        raise InputError(f"{argument}: none of its {len(dataset)} items can be used; first: {skipped[0][0]} ({skipped[0][1]})")
    return (dataset if not skipped else CheckedSubset(dataset, good)), skipped


def skipped_lines(skipped) -> list[str]:
    """One line per skipped item, for the command's report."""
    return [f"skipped {name}: {reason}" for name, reason in skipped]
