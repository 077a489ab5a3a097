"""Building the model of each arm: a plain SegFormer (baseline), QuARF-SegFormer, QuARF restoration."""

from __future__ import annotations

from dataclasses import replace

from transformers import SegformerConfig, SegformerForSemanticSegmentation

from ..building import BlockSpec, check_stage_width, new_quarf_model, quarf_model_from_base, read_block
from ..hub.variants import hub_architecture, hub_block, load_hub_config
from ..models.checks import MAX_WIDTH, InputError, check_int


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


def model_block(model_section: dict) -> BlockSpec:
    """The block of a training config's ``model`` section (:func:`~quarf_hf.building.read_block`),
    over its ``hub_config``'s: the section's block settings update the variant's, its stage replaces
    the variant's; the quality extractor is the section's own (``brisque`` when unset)."""
    own = read_block(model_section, model_section.get("config"), "model.")
    if not model_section.get("hub_config"):
        return own
    variant = hub_block(load_hub_config(model_section["hub_config"]))
    settings = None if own.settings is None and variant.settings is None else {**(variant.settings or {}),
                                                                                **(own.settings or {})}
    return replace(own, settings=settings, stage=variant.stage if own.stage is None else own.stage,
                   conditioning=own.conditioning or variant.conditioning)


def _build_model(model_section: dict, num_labels: int | None = None, id2label: dict | None = None,
                 ignore_index: int | None = None):
    """The model a training config describes (random init, or from ``base``).

    ``num_labels``/``id2label``/``ignore_index`` come from the training data; a ``base`` whose
    head has other classes gets a new head. With ``base``, the architecture (widths, depths) is
    the base's own; the block's settings (``quarf``, ``quality``, ``config.conditioning``) given in
    the section are this model's, inserted into the base at their identity initialisation (a
    plain SegFormer or restoration UNet becomes a QuARF / FiLM / static model that starts out
    giving the base's outputs, as ``quarf-hf study``'s fine-tuning protocol needs); a restoration
    base whose section sets no block is trained as it is.
    """
    kind = model_section["type"]
    architecture = {}
    if model_section.get("hub_config"):
        architecture.update(hub_architecture(load_hub_config(model_section["hub_config"])))
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
    base = model_section.get("base")
    revision = model_section.get("revision") or None

    if kind == "segformer":
        pinned = {"revision": revision} if revision else {}
        if base:
            return SegformerForSemanticSegmentation.from_pretrained(base, ignore_mismatched_sizes=True, **pinned, **labels)
        return SegformerForSemanticSegmentation(SegformerConfig(**architecture, **labels))
    own, block = read_block(model_section, model_section.get("config"), "model."), model_block(model_section)
    if kind == "quarf_restoration":
        if base:  # a base keeps its own block unless the section sets one
            return quarf_model_from_base(kind, base, block if own.given else None, revision=revision, name="model.base")
        return new_quarf_model(kind, architecture, block)
    if base:
        model = quarf_model_from_base(kind, base, block, num_labels=num_labels, id2label=id2label, revision=revision,
                                      name="model.base")
        if ignore_index is not None:
            model.config.semantic_loss_ignore_index = int(ignore_index)
    else:
        model = new_quarf_model(kind, architecture, block, **labels)
    check_stage_width(own.width, model.config.quarf_stage, model.config.hidden_sizes,
                      "model.quarf.width")
    return model


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
            widths = hub_architecture(load_hub_config(model_section["hub_config"])).get("block_out_channels")
    if widths is None:
        widths = QuarfRestorationConfig.block_out_channels
    if not isinstance(widths, (list, tuple)) or not widths:
        return None  # the model config reports it, naming the key
    return 2 ** (len(widths) - 1)
