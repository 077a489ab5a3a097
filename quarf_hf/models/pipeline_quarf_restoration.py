"""An ``image-to-image`` pipeline (transformers 5 no longer ships one) for QuARF restoration models.

``pipeline("image-to-image", model=folder_or_repo_id, trust_remote_code=True)`` returns a PIL
image of the input's size for each input: PIL images, paths and numpy arrays (HWC/HW, integers
as 0-255 or floats in [0, 1]; see ``pixel_range``), one or a list. Grayscale and RGBA are
converted to RGB. Where quarf_hf is installed and imported, ``trust_remote_code`` is not needed.

Shipped to the Hub with the model: imports only torch, numpy, PIL and transformers.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import Pipeline

from .pixel_range import to_unit_range


def _to_pil(image) -> Image.Image:
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        image = Image.open(image)
    if isinstance(image, np.ndarray):
        if image.dtype.kind not in "biufc":
            raise TypeError(f"images: expected integer (0-255) or float ([0, 1]) pixels, found {image.dtype}")
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
            raise ValueError(f"images: expected an (H, W) or (H, W, 1|3|4) array, found shape {image.shape}")
        if min(image.shape[:2]) < 1:
            raise ValueError(f"images: expected a non-empty image, found shape {image.shape}")
        # The package's one pixel rule: integers as 0-255, floats in [0, 1], nothing else.
        array = image.astype(np.int64) if image.dtype.kind == "u" and image.dtype != np.uint8 else image
        unit = to_unit_range(torch.from_numpy(np.array(array)), "images")
        array = (unit.float().numpy() * 255).round().astype(np.uint8)
        image = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    if not isinstance(image, Image.Image):
        raise TypeError(f"images: expected a PIL image, a path or a numpy array, found {type(image).__name__}")
    if image.mode in ("RGBA", "LA", "P"):  # composite on white, as a viewer shows it
        background = Image.new("RGB", image.size, (255, 255, 255))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


class QuarfImageToImagePipeline(Pipeline):
    def _sanitize_parameters(self, **kwargs):
        return {}, {}, {}

    def preprocess(self, image):
        pil = _to_pil(image)
        pixels = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        return {"pixel_values": pixels}

    def _forward(self, model_inputs):
        with torch.no_grad():
            return {"reconstruction": self.model(pixel_values=model_inputs["pixel_values"]).reconstruction}

    def postprocess(self, model_outputs):
        image = model_outputs["reconstruction"][0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        return Image.fromarray((image * 255).round().astype(np.uint8))


def register_image_to_image_pipeline() -> None:
    """Registers the pipeline under the task "image-to-image" (idempotent)."""
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    PIPELINE_REGISTRY.register_pipeline(
        "image-to-image", pipeline_class=QuarfImageToImagePipeline, pt_model=AutoModel, type="image"
    )
    # transformers 5 lists "image-to-image" as a removed task and refuses the name before it looks
    # at the registry; with the task registered again here, the name is valid once more, so
    # pipeline("image-to-image", model=folder) works without trust_remote_code where the package is installed.
    from transformers import pipelines

    removed = getattr(pipelines, "REMOVED_TASKS", None)
    if isinstance(removed, dict):
        removed.pop("image-to-image", None)


__all__ = ["QuarfImageToImagePipeline", "register_image_to_image_pipeline"]
