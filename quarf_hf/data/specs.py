"""Dataset specs as written in training YAML configs -> dataset objects."""

from __future__ import annotations

from pathlib import Path

from ..models.checks import InputError, short_repr
from .crops import PhotoCrops, image_files
from .photos import check_split, get_photo, photo_names, photo_path
from .segmentation import load_segmentation_dataset
from .shapes import QuarfShapes

DEFAULT_SHAPES_SAMPLES = 256  # what the bare string "quarf-shapes" gives
DEFAULT_CROP_SIZE = 128  # photo crops (photos, images) without a crop_size
_SHAPES_KEYS = ("num_samples", "size", "seed", "task", "num_classes", "degradations", "severities")
_LOADER_KEYS = ("split", "image_column", "mask_column", "label_map", "ignore_index", "num_labels", "id2label", "size")
_CROP_KEYS = ("crop_size", "crops", "num_samples", "seed", "cache")
_ALLOWED = {
    "quarf-shapes": _SHAPES_KEYS,
    "folder": ("path",) + tuple(k for k in _LOADER_KEYS if k not in ("image_column", "mask_column")),
    "datasets": ("source",) + _LOADER_KEYS,
    "photos": ("split", "photos") + _CROP_KEYS,
    "images": ("path",) + _CROP_KEYS,
}


def _tuples(options: dict) -> dict:
    # YAML has no tuples: sizes and ranges arrive as lists
    return {k: tuple(v) if k in ("size", "severities", "crop_size") and isinstance(v, list) else v
            for k, v in options.items()}


def _crop_options(options: dict, crops: str) -> dict:
    return {"crop_size": options.get("crop_size", DEFAULT_CROP_SIZE), "crops": options.get("crops", crops),
            "num_samples": options.get("num_samples"), "seed": options.get("seed", 0), "cache": options.get("cache", True)}


def _photos(options: dict) -> PhotoCrops:
    """``{type: photos}``: the built-in photos of a ``split`` (default ``train``), or those named in
    ``photos``; random crops for the train split, a grid of crops otherwise, unless ``crops`` says."""
    if "photos" in options:
        if "split" in options:
            raise InputError("photos spec: give either split or photos (a list of names), not both")
        names = options["photos"]
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, (list, tuple)) or not names:
            raise InputError(f"photos: expected a non-empty list of built-in photo names, found {short_repr(options['photos'])}")
        for name in names:
            get_photo(name)
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise InputError(f"photos: {twice} listed more than once; expected each photo once")
        crops, description = "grid", f"built-in photos {list(names)}"
    else:
        split = check_split(options.get("split", "train"))
        names = photo_names(split)
        crops, description = ("random" if split == "train" else "grid"), f"built-in photos [{split}]"
    crop_options = _crop_options(options, crops)
    return PhotoCrops([(name, photo_path(name)) for name in names], description=description, argument="photos",
                      **crop_options)


def load_dataset_spec(spec):
    """``"quarf-shapes"`` or a dict with ``type`` in ``quarf-shapes`` / ``folder`` / ``datasets``
    (segmentation) or ``photos`` / ``images`` (clean photo crops for restoration; see
    :class:`~quarf_hf.data.crops.PhotoCrops`).

    ``{type: photos, split: train | development | test}`` or ``{type: photos, photos: [names]}``: the
    built-in photographs (:mod:`quarf_hf.data.photos`). ``{type: images, path: FOLDER}``: the images
    directly in a folder, grid crops unless ``crops: random``. Both take ``crop_size`` (default 128),
    ``crops`` (``random`` | ``grid``), ``num_samples`` (random crops only), ``seed`` and ``cache``.
    """
    if isinstance(spec, str):
        if spec != "quarf-shapes":
            raise InputError(f"spec: unknown dataset {spec!r}; a string spec must be 'quarf-shapes', else use a dict with type in {sorted(_ALLOWED)}")
        spec = {"type": "quarf-shapes"}
    if not isinstance(spec, dict):
        raise InputError(f"spec: expected 'quarf-shapes' or a dict with a 'type', found {type(spec).__name__}")
    options = dict(spec)
    kind = options.pop("type", None)
    if kind not in _ALLOWED:
        raise InputError(f"type: unknown dataset type {kind!r}; allowed: {sorted(_ALLOWED)}")
    unknown = sorted(set(options) - set(_ALLOWED[kind]))
    if unknown:
        raise InputError(f"{kind} spec: unknown keys {unknown}; allowed: ['type'] + {list(_ALLOWED[kind])}")
    options = _tuples(options)
    if kind == "photos":
        return _photos(options)
    if kind == "images":
        if "path" not in options:
            raise InputError("images spec: missing key 'path'")
        files = image_files(options["path"], "path")
        return PhotoCrops([(path.name, path) for path in files], description=str(Path(options["path"]).expanduser()),
                          argument="path", **_crop_options(options, "grid"))
    if kind == "quarf-shapes":
        return QuarfShapes(**{"num_samples": DEFAULT_SHAPES_SAMPLES, **options})
    if kind == "folder":
        if "path" not in options:
            raise InputError("folder spec: missing key 'path'")
        path = Path(options.pop("path")).expanduser()
        if not path.is_dir():
            # a folder spec never falls back to the Hub
            raise FileNotFoundError(f"path: folder not found: {path.resolve()}")
        return load_segmentation_dataset(path, **options)
    if "source" not in options:
        raise InputError("datasets spec: missing key 'source'")
    return load_segmentation_dataset(options.pop("source"), **options)
