"""Building QuARF models, for ``quarf-hf build`` (hub/build.py) and ``train`` / ``study``
(training/models.py): a new one from an architecture and a block (:func:`new_quarf_model`), or one
from a base network with the block inserted at its identity initialisation
(:func:`quarf_model_from_base`), so that it starts out giving the base's outputs; and the one reader
of a block's settings in a YAML file (:func:`read_block`).

A block is written the same way in a ``hub_configs/`` variant, a training config's ``model``
section and an adapter variant::

    quarf: {stage: 0, width: 32, num_groups: 4, experts: [[3, 1], [3, 2]], mode: soft, residual: true}
    quality: brisque      # the quality extractor
    # and `conditioning: route` in the architecture's mapping (segformer:, unet:, or a training config's config:)

``quarf.stage`` (``quarf_stage`` beside ``quarf`` in a training config) is the SegFormer stage whose
patch embedding the block follows; ``quarf.width`` is that stage's hidden size, a check, not a setting.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

from .models.checks import InputError, check_choice, short_repr

# Keys of a ``quarf:`` mapping that say where the block goes, not how it works.
PLACEMENT_KEYS = ("stage", "width")


@dataclass(frozen=True)
class BlockSpec:
    """A block as a YAML file gives it; ``None`` where the file leaves something out.

    Attributes:
        settings (`dict`, *optional*): the block's own settings (fields of
            :class:`~quarf_hf.models.quarf.QuarfConfig`): the ``quarf`` mapping less ``stage`` and ``width``.
        stage (`int`, *optional*): the SegFormer stage whose patch embedding the block follows (0 when unset).
        width (`int`, *optional*): that stage's hidden size as the file states it (see :func:`check_stage_width`).
        quality (*optional*): the quality extractor, anything
            :func:`~quarf_hf.models.quality.resolve_quality` takes (``"brisque"`` when unset).
        conditioning (`str`, *optional*): how the quality vector is used (``"route"`` when unset).
    """

    settings: dict | None = None
    stage: int | None = None
    width: int | None = None
    quality: object = None
    conditioning: str | None = None

    @property
    def given(self) -> bool:
        """Whether the file sets the block itself (settings, quality or conditioning)."""
        return self.settings is not None or self.quality is not None or self.conditioning is not None


def read_block(section: dict, architecture: dict | None = None, where: str = "") -> BlockSpec:
    """The block that ``section`` describes (a hub config, or a training config's ``model`` section):
    its ``quarf``, ``quarf_stage`` and ``quality`` keys, and ``conditioning`` from ``architecture``
    (the mapping of config keyword arguments). ``where`` prefixes the names in messages (``"model."``)."""
    quarf = section.get("quarf")
    if quarf is not None and not isinstance(quarf, dict):
        raise InputError(f"{where}quarf: expected a mapping of block settings, found {short_repr(quarf)}")
    settings = None if quarf is None else {k: v for k, v in quarf.items() if k not in PLACEMENT_KEYS}
    stage = (quarf or {}).get("stage")
    if "quarf_stage" in section:
        if stage is not None and stage != section["quarf_stage"]:
            raise InputError(f"{where}quarf_stage: expected the stage {where}quarf.stage gives "
                             f"({short_repr(stage)}), found {short_repr(section['quarf_stage'])}")
        stage = section["quarf_stage"]
    return BlockSpec(settings=settings, stage=stage, width=(quarf or {}).get("width"), quality=section.get("quality"),
                     conditioning=(architecture or {}).get("conditioning"))


def check_stage_width(width, stage: int, hidden_sizes, name: str = "quarf.width", context: str = "") -> None:
    """Refuses a stated block ``width`` (``None``: none stated) that is not the hidden size of its ``stage``."""
    if width is not None and width != hidden_sizes[stage]:
        raise InputError(f"{name}: expected stage {stage}'s hidden size {hidden_sizes[stage]}, "
                         f"found {short_repr(width)}{context}")


def _model_classes() -> dict:
    """Model type -> its config class, model class and the path of its quality extractor."""
    from .models.configuration_quarf_restoration import QuarfRestorationConfig
    from .models.configuration_quarf_segformer import QuarfSegformerConfig
    from .models.modeling_quarf_restoration import QuarfRestorationModel
    from .models.modeling_quarf_segformer import QuarfSegformerForSemanticSegmentation

    return {
        "quarf_segformer": (QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation, "segformer.quality_extractor"),
        "quarf_restoration": (QuarfRestorationConfig, QuarfRestorationModel, "quality_extractor"),
    }


def _quality(block: BlockSpec, default="brisque"):
    return default if block.quality is None else block.quality


def new_quarf_model(model_type: str, architecture: dict | None = None, block: BlockSpec | None = None,
                    **config_kwargs):
    """A newly initialised QuARF model, its block at its identity initialisation.

    Args:
        model_type (`str`): ``"quarf_segformer"`` or ``"quarf_restoration"``.
        architecture (`dict`, *optional*): the config's keyword arguments (widths, depths, ...).
        block (`BlockSpec`, *optional*): the block; its quality extractor's spec goes into the
            config and its weights into the model's frozen extractor. A restoration model has no
            ``stage``.
        **config_kwargs: more config keyword arguments (``num_labels``, ``id2label``, ...).
    """
    from .models.quality import resolve_quality

    block = block or BlockSpec()
    classes = _model_classes()
    check_choice("model_type", model_type, classes)
    config_class, model_class, extractor_path = classes[model_type]
    extractor, spec = resolve_quality(_quality(block))
    config = {**(architecture or {}), **config_kwargs, "quarf": dict(block.settings or {})}
    if block.conditioning is not None:
        config["conditioning"] = block.conditioning
    if model_type == "quarf_segformer" and block.stage is not None:
        config["quarf_stage"] = block.stage
    with warnings.catch_warnings():  # the extractor's weights are loaded just below, whatever its type
        warnings.filterwarnings("ignore", message="quality: 'contrique' without weights")
        model = model_class(config_class(**config, quality=spec))
    model.get_submodule(extractor_path).load_state_dict(extractor.state_dict())
    return model


def quarf_model_from_base(model_type: str, base, block: BlockSpec | None = None, *, num_labels: int | None = None,
                          id2label: dict | None = None, revision: str | None = None, name: str = "base"):
    """A QuARF model holding every weight of ``base`` (a folder or Hub id), with ``block`` at its
    identity initialisation: it gives the base's outputs. The architecture is the base's own.

    Args:
        model_type (`str`): ``"quarf_segformer"``: ``base`` is any SegFormer
            (:meth:`~quarf_hf.QuarfSegformerForSemanticSegmentation.from_segformer`, whose head is
            replaced when ``num_labels`` is given). ``"quarf_restoration"``: ``base`` is a
            restoration model, returned as it is when ``block`` sets nothing (see
            :attr:`BlockSpec.given`), else its UNet's weights in a new model with ``block``
            (quality and conditioning default to the base's).
        revision (`str`, *optional*): the commit of a Hub ``base``.
        name (`str`, *optional*): what ``base`` is called in messages (``"model.base"``).
    """
    from .models.conditioning import DEFAULT_CONDITIONING
    from .models.modeling_quarf_restoration import QuarfRestorationModel
    from .models.modeling_quarf_segformer import QuarfSegformerForSemanticSegmentation

    block = block or BlockSpec()
    check_choice("model_type", model_type, _model_classes())
    if model_type == "quarf_segformer":
        return QuarfSegformerForSemanticSegmentation.from_segformer(
            base, quality=_quality(block), quarf_stage=block.stage or 0, num_labels=num_labels, id2label=id2label,
            revision=revision, conditioning=block.conditioning or DEFAULT_CONDITIONING, **(block.settings or {}),
        )
    model = QuarfRestorationModel.from_pretrained(base, **({"revision": revision} if revision else {}))
    if not block.given:
        return model
    settings = model.config.to_dict()
    architecture = {k: settings[k] for k in ("block_out_channels", "layers_per_block", "norm_num_groups",
                                             "mid_block_attention", "num_channels", "loss", "charbonnier_eps")
                    if k in settings}
    block = replace(block, quality=_quality(block, settings.get("quality", "brisque")),
                    conditioning=block.conditioning or settings.get("conditioning", DEFAULT_CONDITIONING))
    new = new_quarf_model("quarf_restoration", architecture, block)
    own = ("quarf.", "quality_extractor.")  # the new block and extractor: not the base's
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(own)}
    missing, unexpected = new.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(own)]
    if missing or unexpected:
        raise InputError(f"{name}: {base!r} does not match the restoration UNet (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")
    return new
