"""Quality-extractor *specs*: the small dicts that QuARF model configs store.

A QuARF model keeps its frozen quality extractor inside (weights in its own state dict), and
the extractor's architecture in its config as a spec dict, so ``from_pretrained`` rebuilds it
without any network access:

* ``{"type": "brisque"}``: 36 BRISQUE features, no weights;
* ``{"type": "contrique", "config": {...}}``: a CONTRIQUE ResNet (ResNet-50 by default) with that
  ``ContriqueConfig``;
* ``{"type": "contrique", "config": {...}, "source": "folder-or-hub-id"}``: the same, named by a
  saved ContriqueModel (a converted CONTRIQUE, or an encoder from ``quarf-hf train-quality``).
  A model built directly from such a config loads the source's weights; ``from_pretrained`` (which
  builds on the meta device) takes them from its own checkpoint and never reads the source.
  A folder path or Hub id given as the spec is turned into this form (only its config.json is read).
* either with ``"max_side": N``: quality computed on a copy downscaled to longer side N (speed).
* ``{"type": "constant", "dim": 36}``: a vector of ones whatever the image (the *static mixture*
  control: the same block and router parameters, but the router can only learn one fixed mixture).

Shipped to the Hub with the models: imports only torch, transformers and flat siblings.
"""

from __future__ import annotations

import os

from torch import nn

from .brisque import MIN_SIZE as BRISQUE_MIN_SIZE

CONTRIQUE_MIN_SIZE = 64
QUALITY_TYPES = ("brisque", "contrique", "constant")


def _source_spec(source) -> dict:
    """A folder or Hub id of a saved ContriqueModel -> its spec dict (reads config.json only)."""
    from .configuration_contrique import ContriqueConfig

    text = os.fspath(source)
    if not os.path.isdir(text) and (os.path.isabs(text) or text.startswith(".") or text.count("/") > 1):
        raise ValueError(f"quality: no such folder {text!r} (expected 'brisque', 'contrique', a spec dict, or a "
                         f"folder/Hub id of a ContriqueModel)")
    try:
        config, _ = ContriqueConfig.get_config_dict(text)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"quality: expected 'brisque', 'contrique', a spec dict, or a folder/Hub id of a ContriqueModel; "
            f"could not read the config of {os.fspath(source)!r}: {' '.join(str(err).split())[:300]}"
        ) from err
    if config.get("model_type") != "contrique":
        raise ValueError(f"quality: {os.fspath(source)!r} holds a {config.get('model_type')!r} model, expected a "
                         f"ContriqueModel (model_type 'contrique')")
    return {"type": "contrique", "config": config, "source": os.fspath(source)}


def normalize_quality_spec(spec) -> dict:
    """``"brisque"`` / ``"contrique"`` / ``"constant"`` / a ContriqueModel folder or Hub id / a spec dict -> a
    complete spec dict.

    No weights are loaded; a folder or Hub id has its config.json read.
    """
    if isinstance(spec, str) and spec in QUALITY_TYPES:
        spec = {"type": spec}
    elif isinstance(spec, (str, os.PathLike)):
        spec = _source_spec(spec)
    if not isinstance(spec, dict) or spec.get("type") not in QUALITY_TYPES:
        raise ValueError(
            f"quality: expected 'brisque', 'contrique', 'constant' or a spec dict with one of these types, found {spec!r}"
        )
    spec = dict(spec)
    if spec["type"] == "constant":
        # As wide as BRISQUE by default: the static control then has exactly BRISQUE-QuARF's parameters.
        dim = spec.get("dim", 36)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"quality.dim: expected a positive integer, found {dim!r}")
        unknown = sorted(set(spec) - {"type", "dim"})
        if unknown:
            raise ValueError(f"quality: unknown keys {unknown} for type 'constant'; expected 'dim'")
        return {"type": "constant", "dim": dim}
    if spec["type"] == "contrique":
        from .configuration_contrique import ARCHITECTURE_KEYS, ContriqueConfig

        config = spec.get("config") or {}
        # Only the architecture: a config.json read from a folder carries much else (auto_map, dtype, ...).
        spec["config"] = ContriqueConfig(**{k: v for k, v in config.items() if k in ARCHITECTURE_KEYS}).architecture_dict()
        if "source" in spec and not isinstance(spec["source"], str):
            raise ValueError(f"quality.source: expected a folder path or Hub id (a string), found {spec['source']!r}")
    return spec


def quality_feature_dim(spec) -> int:
    spec = normalize_quality_spec(spec)
    if spec["type"] == "brisque":
        return 36
    if spec["type"] == "constant":
        return spec["dim"]
    from .configuration_contrique import ContriqueConfig

    return ContriqueConfig(**{k: v for k, v in spec["config"].items() if k != "model_type"}).feature_dim


def quality_min_size(spec) -> int:
    kind = normalize_quality_spec(spec)["type"]
    return {"brisque": BRISQUE_MIN_SIZE, "constant": 1}.get(kind, CONTRIQUE_MIN_SIZE)


def build_quality_extractor_from_spec(spec) -> nn.Module:
    """A frozen extractor with the spec's architecture (CONTRIQUE weights: the ``source``'s, else random
    until loaded; never read on the meta device, where ``from_pretrained`` builds models)."""
    from .quality import build_quality_extractor

    return build_quality_extractor(normalize_quality_spec(spec))


def resolve_quality(quality):
    """Any way of naming an extractor -> (frozen module, spec dict).

    ``quality``: ``"brisque"``, ``"contrique"`` (random weights), a folder or Hub id of a converted
    CONTRIQUE, a spec dict, or an extractor module (with ``feature_dim``).
    """
    from .quality import build_quality_extractor, quality_spec_to_config

    module = build_quality_extractor(quality)  # modules come back frozen (a bare ContriqueModel wrapped)
    return module, normalize_quality_spec(quality_spec_to_config(module))


__all__ = [
    "normalize_quality_spec",
    "quality_feature_dim",
    "quality_min_size",
    "build_quality_extractor_from_spec",
    "resolve_quality",
]
