"""Quality-extractor *specs*: the small dicts that QuARF model configs store.

A QuARF model keeps its frozen quality extractor inside (weights in its own state dict), and
the extractor's architecture in its config as a spec dict, so ``from_pretrained`` rebuilds it
without any network access:

* ``{"type": "brisque"}``: 36 BRISQUE features, no weights;
* ``{"type": "contrique", "config": {...}}``: a CONTRIQUE ResNet-50 with that ``ContriqueConfig``;
* ``{"type": "constant", "dim": 36}``: a vector of ones whatever the image (the *static mixture*
  control: the same block and router parameters, but the router can only learn one fixed mixture).

Shipped to the Hub with the models: imports only torch, transformers and flat siblings.
"""

from __future__ import annotations

from torch import nn

from .brisque import MIN_SIZE as BRISQUE_MIN_SIZE

CONTRIQUE_MIN_SIZE = 64
QUALITY_TYPES = ("brisque", "contrique", "constant")


def normalize_quality_spec(spec) -> dict:
    """``"brisque"`` / ``"contrique"`` / ``"constant"`` / a spec dict -> a complete spec dict (no weights loaded)."""
    if isinstance(spec, str) and spec in QUALITY_TYPES:
        spec = {"type": spec}
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
        from .configuration_contrique import ContriqueConfig

        config = spec.get("config") or {}
        spec["config"] = ContriqueConfig(**{k: v for k, v in config.items() if k != "model_type"}).architecture_dict()
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
    """A frozen extractor with the spec's architecture (CONTRIQUE weights random until loaded)."""
    from .quality import build_quality_extractor

    return build_quality_extractor(normalize_quality_spec(spec))


def resolve_quality(quality):
    """Any way of naming an extractor -> (frozen module, spec dict).

    ``quality``: ``"brisque"``, ``"contrique"`` (random weights), a folder or Hub id of a converted
    CONTRIQUE, a spec dict, or an extractor module (with ``feature_dim``).
    """
    from .quality import build_quality_extractor, quality_spec_to_config

    module = quality if isinstance(quality, nn.Module) else build_quality_extractor(quality)
    return module, normalize_quality_spec(quality_spec_to_config(module))


__all__ = [
    "normalize_quality_spec",
    "quality_feature_dim",
    "quality_min_size",
    "build_quality_extractor_from_spec",
    "resolve_quality",
]
