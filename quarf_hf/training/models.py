"""Building the model of each arm: a plain SegFormer (baseline), QuARF-SegFormer, QuARF restoration."""

from __future__ import annotations

from transformers import SegformerConfig, SegformerForSemanticSegmentation

from ..models.configuration_quarf_restoration import QuarfRestorationConfig
from ..models.configuration_quarf_segformer import QuarfSegformerConfig
from ..hub.build import load_hub_config
from ..models.modeling_quarf_restoration import QuarfRestorationModel
from ..models.modeling_quarf_segformer import QuarfSegformerForSemanticSegmentation
from ..models.quality_spec import resolve_quality


def build_model(model_section: dict, num_labels: int | None = None, id2label: dict | None = None,
                ignore_index: int | None = None):
    """The model a training config describes (random init, or from ``base``).

    ``num_labels``/``id2label``/``ignore_index`` come from the training data; a ``base`` whose
    head has other classes gets a new head. With ``base``, the architecture keys (``config``,
    ``hub_config``) are the base's own and are not read.
    """
    kind = model_section["type"]
    architecture = {}
    quarf = dict(model_section.get("quarf", {}))
    stage = 0
    if model_section.get("hub_config"):
        hub = load_hub_config(model_section["hub_config"])
        architecture.update(hub.get("segformer", hub.get("unet", {})))
        hub_quarf = dict(hub.get("quarf", {}))
        stage = hub_quarf.pop("stage", 0)
        hub_quarf.pop("width", None)
        quarf = {**hub_quarf, **quarf}
    architecture.update(model_section.get("config", {}))
    labels = {}
    if num_labels is not None:
        labels = {"num_labels": num_labels}
        if id2label:
            labels["id2label"] = {int(k): v for k, v in id2label.items()}
            labels["label2id"] = {v: int(k) for k, v in id2label.items()}
        architecture.pop("num_labels", None)
    if ignore_index is not None and kind != "quarf_restoration":
        labels["semantic_loss_ignore_index"] = int(ignore_index)
    quality = model_section.get("quality", "brisque")
    base = model_section.get("base")

    if kind == "segformer":
        if base:
            return SegformerForSemanticSegmentation.from_pretrained(base, ignore_mismatched_sizes=True, **labels)
        return SegformerForSemanticSegmentation(SegformerConfig(**architecture, **labels))
    if kind == "quarf_segformer":
        stage = model_section.get("quarf_stage", stage)
        if base:
            model = QuarfSegformerForSemanticSegmentation.from_segformer(
                base, quality=quality, quarf_stage=stage, num_labels=num_labels, id2label=id2label, **quarf
            )
            if ignore_index is not None:
                model.config.semantic_loss_ignore_index = int(ignore_index)
            return model
        extractor, spec = resolve_quality(quality)
        config = QuarfSegformerConfig(**architecture, **labels, quarf=quarf, quarf_stage=stage, quality=spec)
        model = QuarfSegformerForSemanticSegmentation(config)
        model.segformer.quality_extractor.load_state_dict(extractor.state_dict())
        return model
    if base:
        return QuarfRestorationModel.from_pretrained(base)
    extractor, spec = resolve_quality(quality)
    model = QuarfRestorationModel(QuarfRestorationConfig(**architecture, quarf=quarf, quality=spec))
    model.quality_extractor.load_state_dict(extractor.state_dict())
    return model

