"""The ``quarf-restoration`` pipeline: image in, restored image out, for QuARF restoration models.

transformers 5 no longer ships an ``image-to-image`` task (it refuses the name), so the pipeline
is a task of our own, through transformers' public registry: ``pipeline("quarf-restoration",
model=folder_or_repo_id)`` where quarf_hf is installed (importing it registers the task), and
the same call with ``trust_remote_code=True`` where it is not (the saved config's
``custom_pipelines`` names this file). The Hub card keeps ``pipeline_tag: image-to-image``.
It returns a PIL image of the input's size for each input: PIL images (any mode, 16-bit included), paths, numpy
arrays (HWC/HW) and tensors, one or a list. They are read by :func:`image_utils.image_to_tensor`,
as every entry point of quarf-hf reads images, under the package's one pixel rule
(``input_checks``: integers as 0-255, ``uint16`` as 16-bit, floats in [0, 1]): grayscale is
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


TASK = "quarf-restoration"


def register_restoration_pipeline() -> None:
    """Registers the pipeline under the task ``"quarf-restoration"`` with transformers' public
    ``PIPELINE_REGISTRY`` (idempotent); transformers' own tables are left as they are."""
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=QuarfImageToImagePipeline, pt_model=AutoModel, type="image")


# register_restoration_pipeline's other name, so that code calling it by that name keeps working.
register_image_to_image_pipeline = register_restoration_pipeline

__all__ = ["QuarfImageToImagePipeline", "TASK", "register_restoration_pipeline", "register_image_to_image_pipeline"]
