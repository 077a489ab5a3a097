"""Configuration of QuARF-SegFormer: a SegFormer with a QuARF block inside its encoder."""

from __future__ import annotations

from transformers import SegformerConfig

from .checks import MAX_DEPTH, MAX_WIDTH, InputError, check_groups, check_int, check_number, check_sizes
from .conditioning import DEFAULT_CONDITIONING, check_conditioning, quarf_config_from_settings
from .quality import normalize_quality_spec, quality_min_size
from .quarf import QuarfConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Written into every saved config, so a folder loads with trust_remote_code=True through
# AutoConfig, AutoModel and AutoModelForSemanticSegmentation alike.
AUTO_MAP = {
    "AutoConfig": "configuration_quarf_segformer.QuarfSegformerConfig",
    "AutoModel": "modeling_quarf_segformer.QuarfSegformerModel",
    "AutoModelForSemanticSegmentation": "modeling_quarf_segformer.QuarfSegformerForSemanticSegmentation",
}


class QuarfSegformerConfig(SegformerConfig):
    r"""
    Configuration of a QuARF-SegFormer: transformers' [`SegformerConfig`] plus the QuARF block and
    its frozen quality extractor. It takes every argument of `SegformerConfig` (``num_channels``,
    ``num_encoder_blocks``, ``depths``, ``sr_ratios``, ``hidden_sizes``, ``patch_sizes``,
    ``strides``, ``num_attention_heads``, ``mlp_ratios``, ``decoder_hidden_size``, ``num_labels``,
    ...) with its defaults (SegFormer-B0's), and:

    Args:
        quarf (`dict`, *optional*):
            The block's settings, a [`QuarfConfig`] as a dict; missing fields take their
            defaults, except ``quality_dim`` (the quality extractor's feature width, which it
            must equal if given) and ``residual`` (`True`: the block starts as the identity).
            Stored as the full dict.
        quarf_stage (`int`, *optional*, defaults to 0):
            The encoder stage whose patch embedding is followed by the block (0: after the first
            one, as the paper recommends); the block's width is that stage's hidden size, which
            ``quarf["num_groups"]`` must divide.
        quality (`str` or `dict`, *optional*, defaults to `"brisque"`):
            The frozen quality extractor, as a spec understood by
            :func:`quarf_hf.build_quality_extractor` (``"brisque"``, ``"contrique"``,
            ``{"type": "contrique", "config": {...}}``); stored as a spec dict. Its weights are
            saved with the model.
        conditioning (`str`, *optional*, defaults to `"route"`):
            How the block uses the quality vector: ``"route"``, QuARF's routing over experts;
            ``"film"``, a per-channel scale and shift of the same feature map (FiLM, no routing, the
            routed block's parameter count, the identity at init); ``"none"``, no block (the plain
            network, its quality extractor never run). See ``conditioning.CONDITIONING_MODES``.
        load_balancing_weight (`float`, *optional*, defaults to 0.0):
            Weight of the routers' load-balancing loss (:func:`quarf_aux_loss`) added to ``loss``
            in training forwards with ``labels``, so that ``transformers.Trainer`` and quarf-hf's
            own loop optimise the same objective.
        image_mean (`list[float]`, *optional*, defaults to ImageNet's `[0.485, 0.456, 0.406]`):
            The mean the image processor subtracts from ``pixel_values``; the model undoes the
            normalisation to give the quality extractor pixels in [0, 1]. Must match the processor.
        image_std (`list[float]`, *optional*, defaults to ImageNet's `[0.229, 0.224, 0.225]`):
            The standard deviation the processor divides by (positive; one per channel).

    Example:

    ```python
    >>> from quarf_hf import QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation
    >>> config = QuarfSegformerConfig(quality="brisque", num_labels=3, quarf={"top_k": 2})
    >>> config.quarf["quality_dim"], config.quarf["top_k"], config.quarf["residual"]
    (36, 2, True)
    >>> model = QuarfSegformerForSemanticSegmentation(config)  # SegFormer-B0 with a QuARF block
    ```
    """

    # Trainer's evaluation hands compute_metrics only the prediction (logits / reconstruction).
    keys_to_ignore_at_inference = ["hidden_states", "routing_weights", "quality_features"]
    model_type = "quarf_segformer"

    quarf: dict | None = None
    quarf_stage: int = 0
    quality: dict | None = None
    conditioning: str = DEFAULT_CONDITIONING
    image_mean: list[float] | tuple[float, ...] = IMAGENET_MEAN
    image_std: list[float] | tuple[float, ...] = IMAGENET_STD
    load_balancing_weight: float = 0.0

    def __post_init__(self, **kwargs):
        self.load_balancing_weight = check_number("load_balancing_weight", self.load_balancing_weight, 0.0)
        # Sizes first, each against a bound, so a config asking for a huge model fails in milliseconds.
        stages = check_int("num_encoder_blocks", self.num_encoder_blocks, 1, MAX_DEPTH)
        for name, maximum in (("hidden_sizes", MAX_WIDTH), ("depths", MAX_DEPTH), ("num_attention_heads", MAX_WIDTH),
                              ("mlp_ratios", MAX_DEPTH), ("sr_ratios", MAX_DEPTH), ("patch_sizes", MAX_DEPTH),
                              ("strides", MAX_DEPTH)):
            setattr(self, name, check_sizes(name, getattr(self, name), maximum, max_length=stages))
            if len(getattr(self, name)) != stages:
                raise InputError(f"{name}: expected one value per encoder block (num_encoder_blocks={stages}), "
                                 f"found {len(getattr(self, name))}")
        check_int("decoder_hidden_size", self.decoder_hidden_size, 1, MAX_WIDTH)
        self.quality = normalize_quality_spec(self.quality if self.quality is not None else "brisque")
        block = quarf_config_from_settings(self.quarf, self.quality)
        self.quarf = block.to_dict()
        check_conditioning(self.conditioning)
        num_stages = self.num_encoder_blocks
        check_int("quarf_stage", self.quarf_stage, 0, num_stages - 1)
        check_groups("quarf.num_groups", self.hidden_sizes[self.quarf_stage], block.num_groups,
                     what=f"stage {self.quarf_stage}'s width")
        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            if len(value) != self.num_channels:
                raise InputError(f"{name}: expected {self.num_channels} values, found {list(value)}")
            setattr(self, name, [float(v) for v in value])
        if min(self.image_std) <= 0:
            raise InputError(f"image_std: expected positive values, found {self.image_std}")
        super().__post_init__(**kwargs)
        self.auto_map = {**AUTO_MAP, **(getattr(self, "auto_map", None) or {})}

    @property
    def quarf_config(self) -> QuarfConfig:
        return QuarfConfig.from_dict(self.quarf)

    @property
    def min_image_size(self) -> int:
        """The smallest height/width the encoder (and quality extractor) accept."""
        stride = 1
        for s in self.strides:
            stride *= s
        return max(stride, quality_min_size(self.quality))


__all__ = ["QuarfSegformerConfig"]
