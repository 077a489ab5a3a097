"""An ``image-to-image`` pipeline (transformers 5 no longer ships one) for QuARF restoration models.

``pipeline("image-to-image", model=folder_or_repo_id, trust_remote_code=True)`` returns a PIL
image of the input's size for each input: PIL images (any mode, 16-bit included), paths, numpy
arrays (HWC/HW, uint8, uint16 or floats in [0, 1]) and tensors, one or a list. They are read by
:func:`image_utils.image_to_tensor`, as every entry point of quarf-hf reads images: grayscale is
repeated to RGB and transparency composited on white.

Shipped to the Hub with the model: imports only torch, numpy, PIL, transformers and its sibling
``image_utils``.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import Pipeline

from .image_utils import image_to_tensor


class QuarfImageToImagePipeline(Pipeline):
    def _sanitize_parameters(self, **kwargs):
        return {}, {}, {}

    def preprocess(self, image):
        return {"pixel_values": image_to_tensor(image, "images")[None]}

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
