"""Turning a ``source`` (object, saved folder, imagefolder, images/masks folder, Hub id) into one
``datasets.Dataset`` split, so the item code only ever sees one kind of table."""

from __future__ import annotations

import os
from pathlib import Path

from ..models.checks import InputError, InputTypeError, looks_like_hub_id

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MASK_EXTENSIONS = (".png",)
METADATA_FILES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")


def _pick_split(splits: dict, split: str, where: str):
    if split not in splits:
        raise InputError(f"split: {split!r} not found in {where}; available splits: {sorted(splits)}")
    return splits[split]


def _has_metadata(folder: Path) -> bool:
    # imagefolder puts metadata files next to the images, at the root or in split folders
    return any((folder / name).is_file() for name in METADATA_FILES) or any(
        (sub / name).is_file() for sub in folder.iterdir() if sub.is_dir() for name in METADATA_FILES
    )


def _files_by_stem(folder: Path, extensions: tuple[str, ...], argument: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in extensions:
            if path.stem in found:
                raise InputError(
                    f"{argument}: two files share the stem {path.stem!r} in {folder}: "
                    f"{found[path.stem].name} and {path.name}; expected one per stem"
                )
            found[path.stem] = path
    return found


def _pairs_dataset(root: Path, split: str):
    """The ``images/`` + ``masks/`` layout, flat or with split subfolders, as a two-column table."""
    import datasets

    images_dir, masks_dir = root / "images", root / "masks"
    if not masks_dir.is_dir():
        raise FileNotFoundError(f"source: {root} has images/ but no masks/ folder; expected images/ and masks/")
    split_dirs = sorted(p.name for p in images_dir.iterdir() if p.is_dir())
    if split_dirs:
        # split subfolders: images/<split>/*, masks/<split>/*
        images_dir = _pick_split({name: images_dir / name for name in split_dirs}, split, f"{root / 'images'}")
        masks_dir = masks_dir / split
        if not masks_dir.is_dir():
            raise FileNotFoundError(f"source: {root} has images/{split}/ but no masks/{split}/")
    elif split != "train":
        # a flat folder is one split; calling it "train" keeps the default working everywhere
        raise InputError(
            f"split: {split!r} not found in {root}: it has no split subfolders under images/; "
            f"available splits: ['train']"
        )
    images = _files_by_stem(images_dir, IMAGE_EXTENSIONS, "source")
    masks = _files_by_stem(masks_dir, MASK_EXTENSIONS, "source")
    missing = [stem for stem in images if stem not in masks]
    if missing:
        raise FileNotFoundError(
            f"source: {len(missing)} of {len(images)} images in {images_dir} have no mask (<stem>.png) in "
            f"{masks_dir}; first missing: {missing[:5]}"
        )
    features = datasets.Features({"image": datasets.Image(), "mask": datasets.Image()})
    return datasets.Dataset.from_dict(
        {"image": [str(images[s]) for s in images], "mask": [str(masks[s]) for s in images]}, features=features
    )


def resolve_source(source, split: str) -> tuple[object, str, bool]:
    """Returns ``(dataset, description, is_pairs_layout)`` for one split of ``source``."""
    import datasets

    if isinstance(source, datasets.DatasetDict):
        return _pick_split(source, split, "the DatasetDict"), f"DatasetDict[{split!r}]", False
    if isinstance(source, datasets.Dataset):
        # already a single split: ``split`` has nothing to choose from
        return source, "the Dataset", False
    if not isinstance(source, (str, os.PathLike)):
        raise InputTypeError(
            f"source: expected a datasets.Dataset/DatasetDict, a folder path or a Hub dataset id, "
            f"found {type(source).__name__}"
        )
    text = os.fspath(source)
    root = Path(text).expanduser()
    if root.is_dir():
        if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
            loaded = datasets.load_from_disk(str(root))
            if isinstance(loaded, datasets.DatasetDict):
                return _pick_split(loaded, split, str(root)), f"{root} [{split}]", False
            return loaded, str(root), False
        if (root / "images").is_dir():
            return _pairs_dataset(root, split), f"{root} [{split}]", True
        if _has_metadata(root):
            loaded = datasets.load_dataset("imagefolder", data_dir=str(root))
            return _pick_split(loaded, split, str(root)), f"{root} [{split}]", False
        raise FileNotFoundError(
            f"source: {root} is a folder but not a known layout; expected a save_to_disk folder "
            f"(dataset_dict.json or state.json), images/ + masks/ subfolders, or an imagefolder with "
            f"{' / '.join(METADATA_FILES)}; found {sorted(p.name for p in root.iterdir())[:10]}"
        )
    if root.exists():
        raise FileNotFoundError(f"source: expected a folder, found a file: {root}")
    if not looks_like_hub_id(text):
        raise FileNotFoundError(f"source: folder not found: {root.resolve()}")
    try:
        loaded = datasets.load_dataset(text)
    except Exception as error:  # offline, unknown id, gated...: one clear message
        raise FileNotFoundError(
            f"source: {text!r} is not a local folder ({root.resolve()} does not exist) and could not be "
            f"loaded as a Hub dataset id ({type(error).__name__}: {error})"
        ) from error
    return _pick_split(loaded, split, f"Hub dataset {text!r}"), f"{text} [{split}]", False
