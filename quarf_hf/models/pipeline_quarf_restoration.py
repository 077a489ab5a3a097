"""An ``image-to-image`` pipeline (transformers 5 no longer ships one) for QuARF restoration models.

``pipeline("image-to-image", model=folder_or_repo_id, trust_remote_code=True)`` returns a PIL
image of the input's size for each input: PIL images (any mode, 16-bit included), paths, numpy
arrays (HWC/HW) and tensors, one or a list. They are read by :func:`image_utils.image_to_tensor`,
as every entry point of quarf-hf reads images, under the package's one pixel rule
(``input_checks``: integers as 0-255, ``uint16`` as 16-bit, floats in [0, 1]): grayscale is
repeated to RGB and transparency composited on white. Where quarf_hf is installed and imported,
``trust_remote_code`` is not needed.

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
    # transformers 5 lists "image-to-image" as a removed task and refuses the name before it looks
    # at the registry; with the task registered again here, the name is valid once more, so
    # pipeline("image-to-image", model=folder) works without trust_remote_code where the package is installed.
    from transformers import pipelines

    removed = getattr(pipelines, "REMOVED_TASKS", None)
    if isinstance(removed, dict):
        removed.pop("image-to-image", None)


__all__ = ["QuarfImageToImagePipeline", "register_image_to_image_pipeline"]
