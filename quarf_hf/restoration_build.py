"""Building a ``hub_configs/quarf-restoration-*`` variant (called by ``quarf-hf build``)."""

from __future__ import annotations

from pathlib import Path

from .configuration_quarf_restoration import QuarfRestorationConfig
from .hub.model_card import write_model_card
from .modeling_quarf_restoration import QuarfRestorationModel
from .quality_spec import resolve_quality


def build_quarf_restoration(data: dict, folder: Path, base=None, quality=None, repo_id=None) -> QuarfRestorationModel:
    """Writes weights, config (auto_map, custom pipeline), code and a model card into ``folder``."""
    if base:
        model = QuarfRestorationModel.from_pretrained(base)
    else:
        extractor, spec = resolve_quality(quality or data.get("quality", "brisque"))
        config = QuarfRestorationConfig(**data.get("unet", {}), quarf=dict(data.get("quarf", {})), quality=spec)
        model = QuarfRestorationModel(config)
        model.quality_extractor.load_state_dict(extractor.state_dict())
    model.save_pretrained(folder)
    reference = repo_id or f"<your-org>/{data['name']}"
    write_model_card(
        folder,
        metadata={
            "library_name": "transformers",
            "pipeline_tag": "image-to-image",
            "tags": ["quarf", "image-restoration", "degraded-images", "quality-adaptive", "diffusers-blocks"],
            "license": data.get("license", "apache-2.0"),
        },
        title=data["name"],
        description=(
            "An image-restoration UNet built from diffusers' 2D UNet blocks (no timestep), with a QuARF block "
            "(quality-adaptive receptive fields, AAAI-25) after the input convolution, routed by a frozen "
            f"{model.config.quality['type'].upper()} quality model, and a global residual: output = input + "
            "predicted residual, in [0, 1], at the input's size. "
            + ("Weights from " + str(base) + "." if base else "Weights: randomly initialised (the identity until trained).")
        ),
        usage_snippet=(
            "from transformers import pipeline\n\n"
            f'restorer = pipeline("image-to-image", model="{reference}", trust_remote_code=True)\n'
            'restored = restorer("degraded.png")  # a PIL image of the input\'s size\n'
        ),
    )
    return model
