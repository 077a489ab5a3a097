"""Frozen image-quality extractors for QuARF, and a convenience to run them on any images.

``build_quality_extractor(spec)`` returns a frozen module (no gradients, always in eval mode)
with ``feature_dim``, mapping pixels (B, 3, H, W) in [0, 1] to quality features (B, feature_dim):

* ``"brisque"``: the 36 BRISQUE features (:class:`~quarf_hf.models.brisque.BrisqueFeatures`),
  standardised with fixed constants (below) so the router sees inputs of unit scale;
* ``"contrique"``: CONTRIQUE's 4096-d features with random weights (for tests);
* a folder or Hub id of a converted CONTRIQUE (``quarf-hf convert-contrique``);
* ``"constant"``: ones whatever the image (:class:`ConstantQuality`, the static-mixture control);
* a spec dict (``{"type": "brisque"}``, ``{"type": "constant", "dim": 36}``, ``{"type": "contrique", "config": {...}}``), as stored
  in QuARF model configs;
* an ``nn.Module`` with ``feature_dim``, frozen as it is.

Why a fixed standardisation for BRISQUE: its features mix shape parameters (about 0.2-10),
variances (about 1e-3-1) and signed means (about +-0.05). A linear router on raw values would be
dominated by the shapes. Learned normalisation would drift with the training data; a fixed
affine map keeps the extractor weight-free and identical everywhere. The constants are the
per-feature mean and standard deviation over 528 generated images (procedural gradients, edges
and textures, clean and with Gaussian noise, box blur and JPEG at several strengths), measured
once with this module's BRISQUE. They only need to be of the right scale, not exact.

Shipped to the Hub with the models: imports only torch and flat siblings (plus PIL/numpy inside
``extract_quality``, which models never call).
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
    """Base of the extractors: parameters frozen, eval mode kept even under ``.train()``."""

    feature_dim: int
    min_size: int

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
        features = self.brisque(pixel_values.float())
        # A constant image has no texture to fit: OpenCV (and BrisqueFeatures) give NaN there.
        features = torch.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)
        # Constants made per call, not buffers: buffers made at meta-device init would be empty.
        mean = torch.tensor(BRISQUE_FEATURE_MEAN, device=features.device)
        std = torch.tensor(BRISQUE_FEATURE_STD, device=features.device)
        return (features - mean) / std

    def spec(self) -> dict:
        return {"type": "brisque"}


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
        return self.model(pixel_values=pixel_values).quality_features

    def spec(self) -> dict:
        return {"type": "contrique", "config": self.model.config.architecture_dict()}


def build_quality_extractor(spec="brisque") -> nn.Module:
    """A frozen quality extractor from a name, folder, Hub id, spec dict or module (see the module doc)."""
    if isinstance(spec, nn.Module):
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
        config = {k: v for k, v in (spec.get("config") or {}).items() if k != "model_type"}
        return ContriqueQuality(ContriqueModel(ContriqueConfig(**config)))
    if isinstance(spec, (str, os.PathLike)):
        try:
            model = ContriqueModel.from_pretrained(spec)
        except (OSError, ValueError) as err:
            raise ValueError(
                f"spec: expected 'brisque', 'contrique', a converted CONTRIQUE folder or Hub id, or a spec dict; "
                f"could not load {str(spec)!r}: {err}"
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


def _to_tensor(image, index: int) -> torch.Tensor:
    """One image (PIL, numpy HWC/HW, tensor CHW/HW) -> float (3, H, W) in [0, 1]."""
    import numpy as np
    from PIL import Image

    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGBA") if image.mode in ("P", "LA") else image)
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype == np.uint8:
            array = array.astype(np.float32) / 255.0
        elif not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"images[{index}]: expected uint8 or float pixels, found {array.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        if tensor.ndim == 3:
            tensor = tensor.permute(2, 0, 1)
    elif isinstance(image, torch.Tensor):
        tensor = image.float() if image.dtype != torch.uint8 else image.float() / 255.0
    else:
        raise TypeError(f"images[{index}]: expected a PIL image, numpy array or tensor, found {type(image).__name__}")
    if tensor.ndim == 2:
        tensor = tensor[None]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3, 4):
        raise ValueError(f"images[{index}]: expected (H, W), (H, W, C) or (C, H, W) with 1, 3 or 4 channels, found {tuple(tensor.shape)}")
    if tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    elif tensor.shape[0] == 4:  # RGBA: composite on white, as a viewer would show it
        alpha = tensor[3:4]
        tensor = tensor[:3] * alpha + (1 - alpha)
    if tensor.numel() == 0:
        raise ValueError(f"images[{index}]: the image is empty, shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"images[{index}]: contains NaN or infinite values")
    return tensor.clamp(0, 1)


def extract_quality(images, extractor="brisque", device=None, batch_size: int = 16) -> torch.Tensor:
    """Quality features of images of any type and size: returns (N, feature_dim).

    ``images``: a PIL image, numpy array (HWC/HW, uint8 or float in [0, 1]) or tensor
    (CHW/HW, or BCHW for a batch), or a list of these. Grayscale is repeated to RGB; RGBA is
    composited on white. Images of equal size are run together, ``batch_size`` at a time.
    """
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        images = list(images)
    elif not isinstance(images, (list, tuple)):
        images = [images]
    if len(images) == 0:
        raise ValueError("images: expected at least one image, found an empty list")
    module = build_quality_extractor(extractor)
    tensors = [_to_tensor(image, index) for index, image in enumerate(images)]
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
