"""Dataset specs as written in training YAML configs -> dataset objects."""

from __future__ import annotations

from pathlib import Path

from .segmentation import load_segmentation_dataset
from .shapes import QuarfShapes

DEFAULT_SHAPES_SAMPLES = 256  # what the bare string "quarf-shapes" gives
_SHAPES_KEYS = ("num_samples", "size", "seed", "task", "num_classes", "degradations", "severities")
_LOADER_KEYS = ("split", "image_column", "mask_column", "label_map", "ignore_index", "num_labels", "id2label", "size")
_ALLOWED = {
    "quarf-shapes": _SHAPES_KEYS,
    "folder": ("path",) + tuple(k for k in _LOADER_KEYS if k not in ("image_column", "mask_column")),
    "datasets": ("source",) + _LOADER_KEYS,
}


def _tuples(options: dict) -> dict:
    # YAML has no tuples: sizes and ranges arrive as lists
    return {k: tuple(v) if k in ("size", "severities") and isinstance(v, list) else v for k, v in options.items()}


def load_dataset_spec(spec):
    """``"quarf-shapes"`` or a dict with ``type`` in ``quarf-shapes`` / ``folder`` / ``datasets``."""
    if isinstance(spec, str):
        if spec != "quarf-shapes":
            raise ValueError(f"spec: unknown dataset {spec!r}; a string spec must be 'quarf-shapes', else use a dict with type in {sorted(_ALLOWED)}")
        spec = {"type": "quarf-shapes"}
    if not isinstance(spec, dict):
        raise ValueError(f"spec: expected 'quarf-shapes' or a dict with a 'type', found {type(spec).__name__}")
    options = dict(spec)
    kind = options.pop("type", None)
    if kind not in _ALLOWED:
        raise ValueError(f"type: unknown dataset type {kind!r}; allowed: {sorted(_ALLOWED)}")
    unknown = sorted(set(options) - set(_ALLOWED[kind]))
    if unknown:
        raise ValueError(f"{kind} spec: unknown keys {unknown}; allowed: ['type'] + {list(_ALLOWED[kind])}")
    options = _tuples(options)
    if kind == "quarf-shapes":
        return QuarfShapes(**{"num_samples": DEFAULT_SHAPES_SAMPLES, **options})
    if kind == "folder":
        if "path" not in options:
            raise ValueError("folder spec: missing key 'path'")
        path = Path(options.pop("path")).expanduser()
        if not path.is_dir():
            # a folder spec never falls back to the Hub
            raise FileNotFoundError(f"path: folder not found: {path.resolve()}")
        return load_segmentation_dataset(path, **options)
    if "source" not in options:
        raise ValueError("datasets spec: missing key 'source'")
    return load_segmentation_dataset(options.pop("source"), **options)
