"""An ``image-to-image`` pipeline (transformers 5 no longer ships one) for QuARF restoration models.

``pipeline("image-to-image", model=folder_or_repo_id, trust_remote_code=True)`` returns a PIL
image of the input's size for each input: PIL images, paths and numpy arrays (HWC/HW, uint8 or
floats in [0, 1]), one or a list. Grayscale and RGBA are converted to RGB.

Shipped to the Hub with the model: imports only torch, numpy, PIL and transformers.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import Pipeline


def _to_pil(image) -> Image.Image:
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        image = Image.open(image)
    if isinstance(image, np.ndarray):
        array = image
        if np.issubdtype(array.dtype, np.floating):
            array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
        image = Image.fromarray(array)
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


__all__ = ["QuarfImageToImagePipeline", "register_image_to_image_pipeline"]
