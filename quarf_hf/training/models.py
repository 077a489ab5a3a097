"""Building the model of each arm: a plain SegFormer (baseline), QuARF-SegFormer, QuARF restoration."""

from __future__ import annotations

from transformers import SegformerConfig, SegformerForSemanticSegmentation

from ..hub.build import block_settings, load_hub_config, new_quarf_model
from ..models.checks import MAX_WIDTH, InputError, check_int
from ..models.conditioning import DEFAULT_CONDITIONING
from ..models.modeling_quarf_restoration import QuarfRestorationModel
from ..models.modeling_quarf_segformer import QuarfSegformerForSemanticSegmentation


def build_model(model_section: dict, num_labels: int | None = None, id2label: dict | None = None,
                ignore_index: int | None = None):
    """The model a training config describes; see :func:`_build_model`. A setting of ``model.config``
    that transformers' typed config refuses (``hidden_sizes: abc``) is one line naming it."""
    settings = model_section.get("config") or {}
    if isinstance(settings, dict) and "num_labels" in settings:
        check_int("model.config.num_labels", settings["num_labels"], 1, MAX_WIDTH)
    try:
        return _build_model(model_section, num_labels, id2label, ignore_index)
    except Exception as err:
        if not type(err).__name__.startswith("StrictDataclass"):
            raise
        field = getattr(err, "field", None)
        where = f"model.config.{field}" if isinstance(field, str) else "model.config"
        raise InputError(f"{where}: {' '.join(str(err).split())}") from None


def _build_model(model_section: dict, num_labels: int | None = None, id2label: dict | None = None,
                 ignore_index: int | None = None):
    """The model a training config describes (random init, or from ``base``).

    ``num_labels``/``id2label``/``ignore_index`` come from the training data; a ``base`` whose
    head has other classes gets a new head. With ``base``, the architecture (widths, depths) is
    the base's own; the block's settings (``quarf``, ``quality``, ``config.conditioning``) given in
    the section are this model's, inserted into the base at their identity initialisation (a
    plain SegFormer or restoration UNet becomes a QuARF / FiLM / static model that starts out
    giving the base's outputs, as ``quarf-hf study``'s fine-tuning protocol needs).
    """
    kind = model_section["type"]
    architecture = {}
    quarf = dict(model_section.get("quarf", {}))
    stage = 0
    if model_section.get("hub_config"):
        hub = load_hub_config(model_section["hub_config"])
        architecture.update(hub.get("segformer", hub.get("unet", {})))
        stage, hub_quarf = block_settings(hub)
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
    pinned = {"revision": model_section["revision"]} if model_section.get("revision") else {}

    if kind == "segformer":
        if base:
            return SegformerForSemanticSegmentation.from_pretrained(base, ignore_mismatched_sizes=True, **pinned, **labels)
        return SegformerForSemanticSegmentation(SegformerConfig(**architecture, **labels))
    if kind == "quarf_segformer":
        stage = model_section.get("quarf_stage", stage)
        if base:
            conditioning = model_section.get("config", {}).get("conditioning", DEFAULT_CONDITIONING)
            model = QuarfSegformerForSemanticSegmentation.from_segformer(
                base, quality=quality, quarf_stage=stage, num_labels=num_labels, id2label=id2label,
                conditioning=conditioning, **pinned, **quarf
            )
            if ignore_index is not None:
                model.config.semantic_loss_ignore_index = int(ignore_index)
            return model
        return new_quarf_model("quarf_segformer", quality, **architecture, **labels, quarf=quarf, quarf_stage=stage)
    if base:
        return _restoration_from_base(base, model_section, pinned)
    return new_quarf_model("quarf_restoration", quality, **architecture, quarf=quarf)


def _restoration_from_base(base: str, model_section: dict, pinned: dict):
    """A restoration model from ``base``: the base itself when the section sets no block settings,
    else a new model with the base's UNet weights and the section's block (identity at init)."""
    model = QuarfRestorationModel.from_pretrained(base, **pinned)
    conditioning = (model_section.get("config") or {}).get("conditioning")
    if not any(key in model_section for key in ("quarf", "quality")) and conditioning is None:
        return model
    settings = model.config.to_dict()
    architecture = {k: settings[k] for k in ("block_out_channels", "layers_per_block", "norm_num_groups",
                                             "mid_block_attention", "num_channels", "loss", "charbonnier_eps")
                    if k in settings}
    new = new_quarf_model("quarf_restoration", model_section.get("quality", settings.get("quality", "brisque")),
                          **architecture, conditioning=conditioning or settings.get("conditioning", DEFAULT_CONDITIONING),
                          quarf=dict(model_section.get("quarf", {})))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("quarf.", "quality_extractor."))}
    missing, unexpected = new.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("quarf.", "quality_extractor."))]
    if missing or unexpected:
        raise InputError(f"model.base: {base!r} does not match the restoration UNet (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")
    return new



def restoration_size_multiple(model_section: dict) -> int | None:
    """The factor a restoration model's input sides must be a multiple of (``2 ** (levels - 1)``), from
    a training config's ``model`` section: its ``config`` and ``hub_config`` widths, or a local
    ``base`` folder's config.json; None when it cannot be known without a download."""
    import json
    from pathlib import Path

    from ..models.configuration_quarf_restoration import QuarfRestorationConfig

    base = model_section.get("base")
    if base:
        config_file = Path(str(base)) / "config.json"
        if not config_file.is_file():
            return None
        widths = json.loads(config_file.read_text()).get("block_out_channels")
    else:
        widths = (model_section.get("config") or {}).get("block_out_channels")
        if widths is None and model_section.get("hub_config"):
            widths = load_hub_config(model_section["hub_config"]).get("unet", {}).get("block_out_channels")
    if widths is None:
        widths = QuarfRestorationConfig.block_out_channels
    if not isinstance(widths, (list, tuple)) or not widths:
        return None  # the model config reports it, naming the key
    return 2 ** (len(widths) - 1)
