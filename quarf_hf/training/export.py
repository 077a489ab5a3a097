"""The end of a run: a Hub-ready ``save_pretrained`` folder with code, processor and model card."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_folder
from ..hub.model_card import write_model_card

SEGMENTATION_TAGS = ["quarf", "segformer", "image-segmentation", "degraded-images", "quality-adaptive"]
RESTORATION_TAGS = ["quarf", "image-restoration", "degraded-images", "quality-adaptive", "diffusers-blocks"]


def _description(model, config, summary) -> str:
    kind = model.config.model_type
    if kind == "quarf_segformer":
        what = (f"SegFormer with a QuARF block (quality-adaptive receptive fields, AAAI-25) after encoder stage "
                f"{model.config.quarf_stage}, routed by frozen {model.config.quality['type'].upper()} quality features.")
    elif kind == "quarf_restoration":
        what = ("A QuARF restoration UNet (diffusers 2D UNet blocks, QuARF block after the input convolution, "
                "global residual).")
    else:
        what = "A plain SegFormer (the baseline arm of the QuARF comparison)."
    policy = config.augmentation.get("policy", "none")
    trained = (f"Fine-tuned with quarf-hf for {summary['steps']} steps on {summary['num_processes']} process(es), "
               f"degradation augmentation: {policy}.")
    return f"{what} {trained}"


def _usage(model, reference: str) -> str:
    if model.config.model_type == "quarf_restoration":
        return ("from transformers import pipeline\n\n"
                f'restorer = pipeline("image-to-image", model="{reference}", trust_remote_code=True)\n'
                'restored = restorer("degraded.png")\n')
    remote = ", trust_remote_code=True" if model.config.model_type == "quarf_segformer" else ""
    return ("from transformers import AutoModelForSemanticSegmentation, pipeline\n\n"
            f'model = AutoModelForSemanticSegmentation.from_pretrained("{reference}"{remote})\n'
            f'segmenter = pipeline("image-segmentation", model="{reference}"{remote})\n')


def export_model(model, folder, config, summary: dict, push_to_hub: str | None = None,
                 image_size: tuple[int, int] | None = None) -> Path:
    """Writes ``folder`` atomically (staging folder renamed into place); pushes it when asked.

    ``image_size``: (height, width) the saved image processor resizes to (the training size).
    """
    from ..evaluation import markdown_table, model_pixel_normalisation

    folder = Path(folder)
    with atomic_folder(folder) as staging:
        model.save_pretrained(staging)
        is_restoration = model.config.model_type == "quarf_restoration"
        if not is_restoration:
            from transformers import SegformerImageProcessor

            mean, std = model_pixel_normalisation(model)
            size = {"height": image_size[0], "width": image_size[1]} if image_size else None
            SegformerImageProcessor(size=size, image_mean=mean, image_std=std).save_pretrained(staging)
        sections = {}
        if summary.get("evaluation"):
            sections["Evaluation"] = ("On the validation data, clean and degraded (fixed seeds):\n\n"
                                      + markdown_table(summary["evaluation"]))
        write_model_card(
            staging,
            metadata={
                "library_name": "transformers",
                "pipeline_tag": "image-to-image" if is_restoration else "image-segmentation",
                "tags": RESTORATION_TAGS if is_restoration else SEGMENTATION_TAGS,
                "base_model": config.model.get("base"),
                "license": "apache-2.0",
            },
            title=folder.name,
            description=_description(model, config, summary),
            usage_snippet=_usage(model, push_to_hub or str(folder)),
            extra_sections=sections,
        )
    if push_to_hub:
        from ..hub.publish import push_folder_to_hub

        push_folder_to_hub(folder, push_to_hub)
    return folder
