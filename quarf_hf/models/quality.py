"""Frozen image-quality extractors for QuARF: one registry of types, their specs, and a convenience to run them.

Every extractor is a frozen module (no gradients, always in eval mode) with ``feature_dim`` and
``min_size``, mapping pixels (B, 3, H, W) in [0, 1] to quality features (B, feature_dim). A model
config stores its extractor as a small *spec dict*, from which ``from_pretrained`` rebuilds it
without any network access (the weights travel in the model's own state dict).

The types (:data:`QUALITY_TYPES`; each class declares its feature width and smallest input once):

* ``"brisque"`` (:class:`StandardizedBrisque`): the 36 BRISQUE features
  (:class:`~quarf_hf.models.brisque.BrisqueFeatures`), standardised with fixed constants (below)
  so the router sees inputs of unit scale. Spec ``{"type": "brisque"}``; no weights.
* ``"contrique"`` (:class:`ContriqueQuality`): a CONTRIQUE ResNet (ResNet-50 by default) with that
  ``ContriqueConfig``: spec ``{"type": "contrique", "config": {...}}``, optionally with a
  ``"source"``: a folder or Hub id of a saved ContriqueModel (a converted CONTRIQUE from
  ``quarf-hf convert-contrique``, or an encoder trained by ``quarf-hf train-quality``). A model
  built from such a config loads the source's weights; ``from_pretrained`` (which builds on the
  meta device) takes them from its own checkpoint and never reads the source. A folder path or Hub
  id given instead of a spec becomes this form. Without a source the weights are random (a
  warning says so): fine for tests, useless for routing.
* ``"constant"`` (:class:`ConstantQuality`): ones whatever the image, spec
  ``{"type": "constant", "dim": 36}``: the *static mixture* control (the same block and router
  parameters, but the router can only learn one fixed mixture).
* either image type with ``"max_side": N``: quality computed on a copy downscaled to longer side N (speed).
* any ``nn.Module`` with an integer ``feature_dim`` (a bare ``ContriqueModel`` is wrapped in
  :class:`ContriqueQuality`), frozen as it is; a model config can store it only if it is one of
  the types above (:func:`extractor_spec`).

To add a type: a :class:`FrozenQualityExtractor` subclass with ``type_name``, ``min_size``,
``feature_dim`` (or :meth:`~FrozenQualityExtractor.spec_feature_dim`), ``normalize_spec``,
``from_spec`` and ``spec``, listed in :data:`QUALITY_TYPES`. Nothing else in the package dispatches
on the type.

Why a fixed standardisation for BRISQUE: its features mix shape parameters (about 0.2-10),
variances (about 1e-3-1) and signed means (about +-0.05). A linear router on raw values would be
dominated by the shapes. Learned normalisation would drift with the training data; a fixed
affine map keeps the extractor weight-free and identical everywhere. The constants are the
per-feature mean and standard deviation over 528 generated images (procedural gradients, edges
and textures, clean and with Gaussian noise, box blur and JPEG at several strengths), measured
once with this module's BRISQUE. They only need to be of the right scale, not exact.

Shipped to the Hub with the models: imports only torch, transformers and flat siblings (plus
PIL/numpy, through ``image_utils``, inside ``extract_quality``, which models never call).
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from .brisque import FEATURE_DIM as BRISQUE_FEATURE_DIM
from .brisque import MIN_SIZE as BRISQUE_MIN_SIZE
from .brisque import BrisqueFeatures
from .checks import InputError, check_int, looks_like_hub_id, short_repr
from .configuration_contrique import ARCHITECTURE_KEYS, ContriqueConfig

BRISQUE_FEATURE_MEAN = (
    1.72, 0.246, 0.600, -0.0175, 0.133, 0.0919, 0.597, -0.0042, 0.129, 0.0966, 0.611, -0.0242,
    0.133, 0.0969, 0.608, -0.0241, 0.134, 0.0973, 1.72, 0.234, 0.616, -0.0108, 0.108, 0.0720,
    0.609, 0.0063, 0.102, 0.0796, 0.629, -0.0051, 0.0918, 0.0817, 0.618, -0.0049, 0.0938, 0.0837,
)
BRISQUE_FEATURE_STD = (
    0.831, 0.244, 0.247, 0.0510, 0.190, 0.118, 0.248, 0.0584, 0.190, 0.117, 0.206, 0.0336,
    0.186, 0.139, 0.207, 0.0346, 0.185, 0.139, 0.582, 0.177, 0.165, 0.0678, 0.157, 0.0676,
    0.164, 0.0747, 0.157, 0.0681, 0.144, 0.0373, 0.125, 0.110, 0.139, 0.0421, 0.124, 0.110,
)


class FrozenQualityExtractor(nn.Module):
    """Base of the extractors: parameters frozen, eval mode kept even under ``.train()``.

    A subclass is one type of :data:`QUALITY_TYPES` and declares, once: ``type_name`` (the spec's
    ``"type"``), ``min_size`` (the smallest height/width it takes) and ``feature_dim`` (or, when
    the width depends on the spec, :meth:`spec_feature_dim`).

    ``max_side`` (None: off) makes the extractor see a downscaled copy of larger images, longer
    side ``max_side`` (antialiased bilinear, aspect kept): a speed option for large inputs, whose
    effect on the features is measured in ``benchmarks/bench_end_to_end.py --quality-error``.
    """

    type_name: str
    feature_dim: int
    min_size: int
    max_side: int | None = None

    @classmethod
    def normalize_spec(cls, spec: dict) -> dict:
        """The complete spec dict of this type (checked; no weights loaded)."""
        return spec

    @classmethod
    def spec_feature_dim(cls, spec: dict) -> int:
        """The feature width of the extractor a (normalised) spec of this type builds."""
        return cls.feature_dim

    @classmethod
    def from_spec(cls, spec: dict) -> "FrozenQualityExtractor":
        """A new extractor from a spec dict of this type."""
        return cls()

    def spec(self) -> dict:
        """The spec dict that rebuilds this extractor's architecture (its weights travel in state dicts)."""
        return {"type": self.type_name, **self._spec_options()}

    def downscale(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``pixel_values`` resized so that its longer side is at most ``max_side`` (never below ``min_size``)."""
        height, width = pixel_values.shape[-2:]
        if self.max_side is None or max(height, width) <= self.max_side:
            return pixel_values
        scale = self.max_side / max(height, width)
        size = (max(round(height * scale), self.min_size), max(round(width * scale), self.min_size))
        return nn.functional.interpolate(pixel_values, size=size, mode="bilinear", antialias=True, align_corners=False)

    def _spec_options(self) -> dict:
        return {} if self.max_side is None else {"max_side": self.max_side}

    def freeze(self):
        """Frozen, in eval mode and float32 (also when built under another default dtype, as
        ``from_config(config, dtype=torch.bfloat16)`` does)."""
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        super()._apply(lambda tensor: tensor.float() if tensor.is_floating_point() else tensor)
        return self.eval()

    def _apply(self, fn, recurse=True):
        # Device moves only: the extractor stays float32 however its host is cast (``.to(dtype)``,
        # ``.half()``, ``.bfloat16()``), since BRISQUE's statistics and CONTRIQUE's antialiased resize
        # need float32 (the latter has no bf16 kernel on CPU). ``quality_vector`` feeds it float32 pixels.
        def move_only(tensor):
            applied = fn(tensor)
            if tensor.is_floating_point() and applied.dtype != tensor.dtype:
                return tensor.to(device=applied.device)
            return applied

        return super()._apply(move_only, recurse)

    def train(self, mode: bool = True):
        # BatchNorm statistics of a pretrained quality model must never update.
        return super().train(False)


class StandardizedBrisque(FrozenQualityExtractor):
    """BRISQUE features, standardised per feature with fixed constants (see the module doc)."""

    type_name = "brisque"
    feature_dim = BRISQUE_FEATURE_DIM
    min_size = BRISQUE_MIN_SIZE

    def __init__(self):
        super().__init__()
        self.brisque = BrisqueFeatures()
        self.freeze()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        features = self.brisque(self.downscale(pixel_values.float()))
        # A constant image has no texture to fit: OpenCV (and BrisqueFeatures) give NaN there.
        features = torch.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)
        # Constants made per call, not buffers: buffers made at meta-device init would be empty.
        mean = torch.tensor(BRISQUE_FEATURE_MEAN, device=features.device)
        std = torch.tensor(BRISQUE_FEATURE_STD, device=features.device)
        return (features - mean) / std


class ConstantQuality(FrozenQualityExtractor):
    """The same vector of ones for every image: a control for quality routing.

    A QuARF block fed by it has every parameter of a quality-routed block, but its router sees no
    image, so it can only learn one fixed mixture of the experts (per channel group). Comparing
    it with a quality-routed block of the same shape isolates what the quality input adds.
    """

    type_name = "constant"
    min_size = 1
    # As wide as BRISQUE by default: the static control then has exactly BRISQUE-QuARF's parameters.
    default_dim = StandardizedBrisque.feature_dim

    def __init__(self, dim: int = default_dim):
        super().__init__()
        self.feature_dim = int(dim)
        self.freeze()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return pixel_values.new_ones(pixel_values.shape[0], self.feature_dim, dtype=torch.float32)

    @classmethod
    def normalize_spec(cls, spec: dict) -> dict:
        dim = spec.get("dim", cls.default_dim)
        check_int("quality.dim", dim)
        unknown = sorted(set(spec) - {"type", "dim"})
        if unknown:
            raise InputError(f"quality: unknown keys {unknown} for type 'constant'; expected 'dim'")
        return {"type": "constant", "dim": dim}

    @classmethod
    def spec_feature_dim(cls, spec: dict) -> int:
        return spec["dim"]

    @classmethod
    def from_spec(cls, spec: dict) -> "ConstantQuality":
        return cls(cls.normalize_spec(spec)["dim"])

    def spec(self) -> dict:
        return {"type": "constant", "dim": self.feature_dim}


class ContriqueQuality(FrozenQualityExtractor):
    """A frozen :class:`~quarf_hf.models.modeling_contrique.ContriqueModel` returning its features
    (4096 for CONTRIQUE's ResNet-50: twice the last stage's width)."""

    type_name = "contrique"
    min_size = ContriqueConfig.min_image_size

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.feature_dim = model.config.feature_dim
        self.freeze()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=self.downscale(pixel_values)).quality_features

    @classmethod
    def normalize_spec(cls, spec: dict) -> dict:
        config = spec.get("config") or {}
        # Only the architecture: a config.json read from a folder carries much else (auto_map, dtype, ...).
        spec["config"] = ContriqueConfig(**{k: v for k, v in config.items() if k in ARCHITECTURE_KEYS}).architecture_dict()
        if "source" in spec and not isinstance(spec["source"], str):
            raise InputError(f"quality.source: expected a folder path or Hub id (a string), found {short_repr(spec['source'])}")
        return spec

    @classmethod
    def spec_feature_dim(cls, spec: dict) -> int:
        return ContriqueConfig(**{k: v for k, v in spec["config"].items() if k != "model_type"}).feature_dim

    @classmethod
    def from_spec(cls, spec: dict) -> "ContriqueQuality":
        from .modeling_contrique import ContriqueModel

        # A named source brings its weights, except on the meta device (from_pretrained), where the
        # model's own checkpoint fills them: loading a published QuARF model never needs the source.
        on_meta = torch.empty(0).device.type == "meta"
        if spec.get("source") and not on_meta:
            return cls.from_source(spec["source"])
        if not on_meta:
            warnings.warn(
                "quality: 'contrique' without weights is a CONTRIQUE with random weights, not a trained quality "
                "model; convert the official weights with `quarf-hf convert-contrique "
                "CHECKPOINT FOLDER` (or train one with `quarf-hf train-quality`) and pass that folder or its Hub id "
                "as quality",
                UserWarning,
                stacklevel=3,
            )
        config = {k: v for k, v in (spec.get("config") or {}).items() if k != "model_type"}
        return cls(ContriqueModel(ContriqueConfig(**config)))

    @classmethod
    def from_source(cls, source) -> "ContriqueQuality":
        """The extractor of a saved ContriqueModel (folder or Hub id), weights loaded."""
        from .modeling_contrique import ContriqueModel

        check_quality_name(os.fspath(source))
        try:
            model = ContriqueModel.from_pretrained(source)
        except (OSError, ValueError) as err:
            raise InputError(
                f"spec: expected 'brisque', 'contrique', a converted CONTRIQUE folder or Hub id, or a spec dict; "
                f"could not load {str(source)!r}: {' '.join(str(err).split())[:300]}"
            ) from err
        return cls(model)

    @classmethod
    def spec_from_source(cls, source) -> dict:
        """A folder or Hub id of a saved ContriqueModel -> its spec dict (reads config.json only)."""
        text = os.fspath(source)
        check_quality_name(text)
        if not os.path.isdir(text) and not looks_like_hub_id(text):
            raise InputError(f"quality: no such folder {text!r} (expected 'brisque', 'contrique', a spec dict, or a "
                             f"folder/Hub id of a ContriqueModel)")
        try:
            config, _ = ContriqueConfig.get_config_dict(text)
        except (OSError, ValueError) as err:
            raise InputError(
                f"quality: expected 'brisque', 'contrique', a spec dict, or a folder/Hub id of a ContriqueModel; "
                f"could not read the config of {text!r}: {' '.join(str(err).split())[:300]}"
            ) from err
        if config.get("model_type") != "contrique":
            raise InputError(f"quality: {text!r} holds a {config.get('model_type')!r} model, expected a "
                             f"ContriqueModel (model_type 'contrique')")
        return {"type": "contrique", "config": config, "source": text}

    def spec(self) -> dict:
        return {"type": "contrique", "config": self.model.config.architecture_dict(), **self._spec_options()}


def check_quality_name(text: str) -> None:
    """A name without a slash is a built-in type or a local folder, never a Hub id (Hub ids are
    ``owner/name``): an unknown one is refused at once, listing the known names, instead of asking
    the Hub (which, offline, waits for its retries)."""
    if "/" not in text and os.sep not in text and not os.path.isdir(text):
        known = ", ".join(repr(name) for name in QUALITY_TYPES)
        raise InputError(f"quality: unknown quality extractor {text!r}; expected one of {known}, a local folder, "
                         f"a Hub id (owner/name) of a converted CONTRIQUE, or a spec dict")


# The one registry: spec "type" -> extractor class. Every width, minimum size and builder is read from here.
QUALITY_TYPES = {kind.type_name: kind for kind in (StandardizedBrisque, ContriqueQuality, ConstantQuality)}


def normalize_quality_spec(spec) -> dict:
    """A type name (``"brisque"``, ``"contrique"``, ``"constant"``), a ContriqueModel folder or Hub id, or a spec
    dict -> the complete spec dict that model configs store.

    No weights are loaded; a folder or Hub id has its config.json read.
    """
    if isinstance(spec, str) and spec in QUALITY_TYPES:
        spec = {"type": spec}
    elif isinstance(spec, (str, os.PathLike)):
        spec = ContriqueQuality.spec_from_source(spec)
    if not isinstance(spec, dict) or spec.get("type") not in QUALITY_TYPES:
        names = ", ".join(repr(name) for name in QUALITY_TYPES)
        raise InputError(f"quality: expected {names} or a spec dict with one of these types, found {short_repr(spec)}")
    return QUALITY_TYPES[spec["type"]].normalize_spec(dict(spec))


def quality_feature_dim(spec) -> int:
    """The feature width of the extractor ``spec`` names (anything :func:`normalize_quality_spec` takes)."""
    spec = normalize_quality_spec(spec)
    return QUALITY_TYPES[spec["type"]].spec_feature_dim(spec)


def quality_min_size(spec) -> int:
    """The smallest height/width the extractor ``spec`` names takes."""
    # A model's check reads this on every forward: a spec dict of a known type needs no normalising,
    # which would build a config (a graph break under torch.compile).
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind not in QUALITY_TYPES:
        kind = normalize_quality_spec(spec)["type"]
    return QUALITY_TYPES[kind].min_size


def build_quality_extractor(spec="brisque") -> nn.Module:
    """A frozen quality extractor from a type name, folder, Hub id, spec dict or module (see the module doc).

    A spec dict may carry ``max_side`` (see :class:`FrozenQualityExtractor`).
    """
    if isinstance(spec, dict) and spec.get("max_side") is not None:
        max_side = spec["max_side"]
        extractor = build_quality_extractor({key: value for key, value in spec.items() if key != "max_side"})
        check_int("quality: max_side", max_side, extractor.min_size,
                  expected=f"an integer of at least {extractor.min_size} (the extractor's smallest image)")
        extractor.max_side = max_side
        return extractor
    if isinstance(spec, nn.Module):
        return _frozen_module(spec)
    if isinstance(spec, str) and spec in QUALITY_TYPES:
        spec = {"type": spec}
    if isinstance(spec, dict) and spec.get("type") in QUALITY_TYPES:
        return QUALITY_TYPES[spec["type"]].from_spec(spec)
    if isinstance(spec, (str, os.PathLike)):
        return ContriqueQuality.from_source(spec)
    raise InputError(f"spec: expected 'brisque', 'contrique', a folder/Hub id, a spec dict or a module, found {short_repr(spec)}")


def _frozen_module(module: nn.Module) -> nn.Module:
    from .modeling_contrique import ContriqueModel

    if isinstance(module, ContriqueModel):  # a bare CONTRIQUE: its features through the frozen wrapper
        return ContriqueQuality(module)
    if not isinstance(getattr(module, "feature_dim", None), int):
        raise InputError(f"spec: a module must have an integer feature_dim, {type(module).__name__} has none")
    if isinstance(module, FrozenQualityExtractor):
        return module.freeze()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module.eval()


def extractor_spec(module: nn.Module) -> dict:
    """The spec dict that rebuilds ``module``'s architecture (its weights travel in state dicts)."""
    registered = not isinstance(module, FrozenQualityExtractor) or getattr(type(module), "type_name", None) in QUALITY_TYPES
    if hasattr(module, "spec") and registered:
        return module.spec()
    raise InputError(
        f"quality: {type(module).__name__} is not one of quarf_hf's extractors; models can only store "
        f"the types {list(QUALITY_TYPES)} in their config"
    )


def resolve_quality(quality):
    """Any way of naming an extractor -> (frozen module, spec dict).

    ``quality``: a type name, a folder or Hub id of a converted CONTRIQUE, a spec dict, or an
    extractor module (with ``feature_dim``).
    """
    module = build_quality_extractor(quality)  # modules come back frozen (a bare ContriqueModel wrapped)
    return module, normalize_quality_spec(extractor_spec(module))


def extract_quality(images, extractor="brisque", device=None, batch_size: int = 16) -> torch.Tensor:
    """Quality features of images of any type and size: returns (N, feature_dim).

    ``images``: a path, PIL image (any mode, 16-bit included), numpy array (HWC/HW, or CHW when
    only the first axis can be channels: 1 to 4 first and more than 4 last) or tensor (CHW/HW, or
    BCHW for a batch), or a list of these, read by
    :func:`~quarf_hf.models.image_utils.image_to_tensor` as every entry point of quarf-hf reads
    images, under the one pixel rule of ``input_checks`` (every integer dtype but ``uint16``, int32
    and int64 included, as 0-255 with values outside refused; ``uint16`` as 16-bit; floats in
    [0, 1]; anything else refused, naming ``images[i]``); images above 50 megapixels are refused
    (``image_utils.MAX_PIXELS``); grayscale is repeated to RGB,
    transparency is composited on white. Images of equal size are run together, ``batch_size`` at
    a time.
    """
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        images = list(images)
    elif not isinstance(images, (list, tuple)):
        images = [images]
    if len(images) == 0:
        raise InputError("images: expected at least one image, found an empty list")
    from .image_utils import image_to_tensor

    module = build_quality_extractor(extractor)
    tensors = [image_to_tensor(image, f"images[{index}]") for index, image in enumerate(images)]
    for index, tensor in enumerate(tensors):
        if min(tensor.shape[-2:]) < module.min_size:
            raise InputError(
                f"images[{index}]: expected at least {module.min_size}x{module.min_size} pixels, "
                f"found {tuple(tensor.shape[-2:])}"
            )
    device = torch.device(device) if device is not None else next(module.buffers(), torch.empty(0)).device
    module.to(device)
    out = torch.empty(len(tensors), module.feature_dim)
    by_size: dict = {}
    for index, tensor in enumerate(tensors):
        by_size.setdefault(tuple(tensor.shape[-2:]), []).append(index)
    with torch.no_grad():
        for indices in by_size.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                batch = torch.stack([tensors[i] for i in chunk]).to(device)
                out[chunk] = module(batch).float().cpu()
    return out


__all__ = [
    "QUALITY_TYPES",
    "build_quality_extractor",
    "extract_quality",
    "extractor_spec",
    "normalize_quality_spec",
    "quality_feature_dim",
    "quality_min_size",
    "resolve_quality",
    "StandardizedBrisque",
    "ContriqueQuality",
    "ConstantQuality",
    "FrozenQualityExtractor",
]
