"""Frozen image-quality extractors for QuARF, and a convenience to run them on any images.

``build_quality_extractor(spec)`` returns a frozen module (no gradients, always in eval mode)
with ``feature_dim``, mapping pixels (B, 3, H, W) in [0, 1] to quality features (B, feature_dim):

* ``"brisque"``: the 36 BRISQUE features (:class:`~quarf_hf.models.brisque.BrisqueFeatures`),
  standardised with fixed constants (below) so the router sees inputs of unit scale;
* ``"contrique"``: CONTRIQUE's 4096-d features with random weights (for tests);
* a folder or Hub id of a saved ContriqueModel: a converted CONTRIQUE (``quarf-hf
  convert-contrique``) or an encoder trained by ``quarf-hf train-quality``;
* ``"constant"``: ones whatever the image (:class:`ConstantQuality`, the static-mixture control);
* a spec dict (``{"type": "brisque"}``, ``{"type": "constant", "dim": 36}``,
  ``{"type": "contrique", "config": {...}}``, optionally
  with a ``"source"`` folder/Hub id whose weights it loads), as stored in QuARF model configs;
* an ``nn.Module`` with ``feature_dim``, frozen as it is.

Why a fixed standardisation for BRISQUE: its features mix shape parameters (about 0.2-10),
variances (about 1e-3-1) and signed means (about +-0.05). A linear router on raw values would be
dominated by the shapes. Learned normalisation would drift with the training data; a fixed
affine map keeps the extractor weight-free and identical everywhere. The constants are the
per-feature mean and standard deviation over 528 generated images (procedural gradients, edges
and textures, clean and with Gaussian noise, box blur and JPEG at several strengths), measured
once with this module's BRISQUE. They only need to be of the right scale, not exact.

Shipped to the Hub with the models: imports only torch and flat siblings (plus PIL/numpy, through
``image_utils``, inside ``extract_quality``, which models never call).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from .brisque import MIN_SIZE as BRISQUE_MIN_SIZE
from .brisque import BrisqueFeatures

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

    ``max_side`` (None: off) makes the extractor see a downscaled copy of larger images, longer
    side ``max_side`` (antialiased bilinear, aspect kept): a speed option for large inputs, whose
    effect on the features is measured in ``benchmarks/bench_end_to_end.py --quality-error``.
    """

    feature_dim: int
    min_size: int
    max_side: int | None = None

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
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True):
        # BatchNorm statistics of a pretrained quality model must never update.
        return super().train(False)


class StandardizedBrisque(FrozenQualityExtractor):
    """BRISQUE features, standardised per feature with fixed constants (see the module doc)."""

    feature_dim = 36
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

    def spec(self) -> dict:
        return {"type": "brisque", **self._spec_options()}


class ConstantQuality(FrozenQualityExtractor):
    """The same vector of ones for every image: a control for quality routing.

    A QuARF block fed by it has every parameter of a quality-routed block, but its router sees no
    image, so it can only learn one fixed mixture of the experts (per channel group). Comparing
    it with a quality-routed block of the same shape isolates what the quality input adds.
    """

    min_size = 1

    def __init__(self, dim: int = 36):
        super().__init__()
        self.feature_dim = int(dim)
        self.freeze()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return pixel_values.new_ones(pixel_values.shape[0], self.feature_dim, dtype=torch.float32)

    def spec(self) -> dict:
        return {"type": "constant", "dim": self.feature_dim}


class ContriqueQuality(FrozenQualityExtractor):
    """A frozen :class:`~quarf_hf.models.modeling_contrique.ContriqueModel` returning its 4096-d features."""

    min_size = 64

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.feature_dim = model.config.feature_dim
        self.freeze()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=self.downscale(pixel_values)).quality_features

    def spec(self) -> dict:
        return {"type": "contrique", "config": self.model.config.architecture_dict(), **self._spec_options()}


def build_quality_extractor(spec="brisque") -> nn.Module:
    """A frozen quality extractor from a name, folder, Hub id, spec dict or module (see the module doc).

    A spec dict may carry ``max_side`` (see :class:`FrozenQualityExtractor`).
    """
    if isinstance(spec, dict) and spec.get("max_side") is not None:
        max_side = spec["max_side"]
        extractor = build_quality_extractor({key: value for key, value in spec.items() if key != "max_side"})
        if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < extractor.min_size:
            raise ValueError(
                f"quality: max_side: expected an integer of at least {extractor.min_size} (the extractor's "
                f"smallest image), found {max_side!r}"
            )
        extractor.max_side = max_side
        return extractor
    if isinstance(spec, nn.Module):
        from .modeling_contrique import ContriqueModel

        if isinstance(spec, ContriqueModel):  # a bare CONTRIQUE: its features through the frozen wrapper
            return ContriqueQuality(spec)
        if not isinstance(getattr(spec, "feature_dim", None), int):
            raise ValueError(f"spec: a module must have an integer feature_dim, {type(spec).__name__} has none")
        if isinstance(spec, FrozenQualityExtractor):
            return spec.freeze()
        for parameter in spec.parameters():
            parameter.requires_grad_(False)
        return spec.eval()
    if spec == "brisque" or (isinstance(spec, dict) and spec.get("type") == "brisque"):
        return StandardizedBrisque()
    if spec == "constant" or (isinstance(spec, dict) and spec.get("type") == "constant"):
        from .quality_spec import normalize_quality_spec

        return ConstantQuality(normalize_quality_spec(spec)["dim"])
    from .configuration_contrique import ContriqueConfig
    from .modeling_contrique import ContriqueModel

    if spec == "contrique":
        return ContriqueQuality(ContriqueModel(ContriqueConfig()))
    if isinstance(spec, dict) and spec.get("type") == "contrique":
        # A named source brings its weights, except on the meta device (from_pretrained), where the
        # model's own checkpoint fills them: loading a published QuARF model never needs the source.
        if spec.get("source") and torch.empty(0).device.type != "meta":
            return build_quality_extractor(spec["source"])
        config = {k: v for k, v in (spec.get("config") or {}).items() if k != "model_type"}
        return ContriqueQuality(ContriqueModel(ContriqueConfig(**config)))
    if isinstance(spec, (str, os.PathLike)):
        try:
            model = ContriqueModel.from_pretrained(spec)
        except (OSError, ValueError) as err:
            raise ValueError(
                f"spec: expected 'brisque', 'contrique', a converted CONTRIQUE folder or Hub id, or a spec dict; "
                f"could not load {str(spec)!r}: {' '.join(str(err).split())[:300]}"
            ) from err
        return ContriqueQuality(model)
    raise ValueError(f"spec: expected 'brisque', 'contrique', a folder/Hub id, a spec dict or a module, found {spec!r}")


def quality_spec_to_config(module: nn.Module) -> dict:
    """The spec dict that rebuilds ``module``'s architecture (its weights travel in state dicts)."""
    if hasattr(module, "spec"):
        return module.spec()
    raise ValueError(
        f"quality: {type(module).__name__} is not one of quarf_hf's extractors; models can only store "
        f"BRISQUE or CONTRIQUE extractors in their config"
    )


def extract_quality(images, extractor="brisque", device=None, batch_size: int = 16) -> torch.Tensor:
    """Quality features of images of any type and size: returns (N, feature_dim).

    ``images``: a path, PIL image (any mode, 16-bit included), numpy array (HWC/HW) or tensor
    (CHW/HW, or BCHW for a batch), or a list of these, read by
    :func:`~quarf_hf.models.image_utils.image_to_tensor` as every entry point of quarf-hf reads
    images, under the one pixel rule of ``input_checks`` (integers as 0-255, ``uint16`` as 16-bit,
    floats in [0, 1]; anything else refused, naming ``images[i]``): grayscale is repeated to RGB,
    transparency is composited on white. Images of equal size are run together, ``batch_size`` at
    a time.
    """
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        images = list(images)
    elif not isinstance(images, (list, tuple)):
        images = [images]
    if len(images) == 0:
        raise ValueError("images: expected at least one image, found an empty list")
    from .image_utils import image_to_tensor

    module = build_quality_extractor(extractor)
    tensors = [image_to_tensor(image, f"images[{index}]") for index, image in enumerate(images)]
    for index, tensor in enumerate(tensors):
        if min(tensor.shape[-2:]) < module.min_size:
            raise ValueError(
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
    "build_quality_extractor",
    "extract_quality",
    "quality_spec_to_config",
    "StandardizedBrisque",
    "ContriqueQuality",
    "ConstantQuality",
    "FrozenQualityExtractor",
]
