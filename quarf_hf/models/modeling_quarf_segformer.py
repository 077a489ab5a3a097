"""QuARF-SegFormer: SegFormer with a quality-adaptive QuARF block in its encoder.

The encoder is transformers' SegFormer, module for module (``segformer.stages.*`` and
``decode_head.*`` keep SegFormer's names, so every pretrained SegFormer weight loads), plus:

* ``segformer.quality_extractor``: a frozen image-quality model (BRISQUE or CONTRIQUE) run once
  per image on the un-normalised pixels; its weights are saved with the model;
* ``segformer.quarf``: the QuARF block, applied to the output of stage ``quarf_stage``'s patch
  embedding (the first one by default, as the paper recommends). It is residual and starts as
  the identity, so a model built from a pretrained SegFormer gives that SegFormer's logits.

This file is shipped to the Hub with the model (``trust_remote_code=True``): it imports only
torch, transformers and its flat siblings.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, SegformerForSemanticSegmentation
from transformers.modeling_outputs import BaseModelOutput, SemanticSegmenterOutput
from transformers.models.segformer.modeling_segformer import (
    SegformerDecodeHead,
    SegformerPreTrainedModel,
    SegformerStage,
)

from .checks import InputError, InputTypeError, refuse_unknown_arguments
from .conditioning import DEFAULT_CONDITIONING, apply_block, build_block, init_identity, quality_vector
from .configuration_quarf_segformer import IMAGENET_MEAN, IMAGENET_STD, QuarfSegformerConfig
from .image_utils import processor_normalisation
from .input_checks import check_finite, check_pixel_values, value_checks, value_checks_per_call
from .quality import build_quality_extractor
from .quarf import with_load_balancing
from .weights import check_source, from_pretrained_checked, load_error


@dataclass
class QuarfSegformerModelOutput(BaseModelOutput):
    """``BaseModelOutput`` plus ``routing_weights`` (batch, groups, experts) and the quality features."""

    routing_weights: torch.FloatTensor | None = None
    quality_features: torch.FloatTensor | None = None


@dataclass
class QuarfSemanticSegmenterOutput(SemanticSegmenterOutput):
    """``SemanticSegmenterOutput`` plus ``routing_weights`` (batch, groups, experts) and the quality features."""

    routing_weights: torch.FloatTensor | None = None
    quality_features: torch.FloatTensor | None = None


def record_attentions(stages: nn.ModuleList, attentions: list) -> list:
    """Forward hooks that append each SegFormer attention layer's weights (B, heads, N, N_reduced), in
    order, to ``attentions`` during this thread's forward; returns their handles (remove them after)."""
    caller = threading.get_ident()

    def record(_module, _args, output):
        # Not another thread's forward of the same model; none from SDPA (as SegFormer's: no weights to give).
        if threading.get_ident() == caller and output[1] is not None:
            attentions.append(output[1])

    return [layer.attention.register_forward_hook(record) for stage in stages for layer in stage.blocks]


class QuarfSegformerPreTrainedModel(SegformerPreTrainedModel):
    config_class = QuarfSegformerConfig
    config: QuarfSegformerConfig
    _can_record_outputs = {}  # hidden states and attentions are collected by our own encoder loop
    _can_compile_fullgraph = False
    # forward(**kwargs) takes no loss kwargs (num_items_in_batch): the loss is a per-batch mean,
    # so transformers.Trainer must scale it for gradient accumulation itself.
    accepts_loss_kwargs = False
    # from_pretrained(dtype=torch.bfloat16 / float16) keeps the frozen quality extractor in float32:
    # CONTRIQUE's antialiased half-scale resize has no bf16 CPU kernel, and quality features are
    # a few numbers per image (conditioning.quality_vector returns float32 in any case).
    _keep_in_fp32_modules_strict = ["quality_extractor"]

    def post_init(self):
        # Only an extractor with weights (CONTRIQUE, not BRISQUE) has anything to keep in float32, and
        # transformers checks that each listed module holds some.
        if not any("quality_extractor." in name for name, _ in self.named_parameters()):
            self._keep_in_fp32_modules_strict = []
        super().post_init()

    def _init_weights(self, module):
        """Initialises a fresh model and every weight a checkpoint lacks.

        SegFormer's rule for its layers (transformers' default: linears and convolutions, QuARF's
        experts and router included, ~ N(0, ``initializer_range``) with zero bias; norms weight 1,
        bias 0), plus the block's identity part at 0 (QuARF's ``residual_scale``, FiLM's output
        layer), so a block without saved weights is the identity. Weights already loaded are left alone (transformers' guarded ``init`` functions).
        """
        super()._init_weights(module)
        init_identity(module)  # QuARF's gate, FiLM's output layer

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        config = kwargs.get("config")
        check_source(pretrained_model_name_or_path)
        if config is None:
            from transformers import AutoConfig

            try:
                config = AutoConfig.from_pretrained(
                    pretrained_model_name_or_path,
                    **{k: kwargs[k] for k in ("revision", "cache_dir", "token", "local_files_only", "trust_remote_code") if k in kwargs},
                )
            except (OSError, ValueError):
                config = None
            except Exception as err:  # a badly typed config.json: one line naming the file and the field
                converted = load_error(err, pretrained_model_name_or_path)
                if converted is None:
                    raise
                raise converted from None
            if config is not None and config.model_type == "segformer":
                raise InputError(
                    f"pretrained_model_name_or_path: {pretrained_model_name_or_path!r} is a plain SegFormer "
                    f"(model_type 'segformer'), not a QuARF-SegFormer. Build one from it with "
                    f"QuarfSegformerForSemanticSegmentation.from_segformer({pretrained_model_name_or_path!r}, quality=...)"
                )
        return from_pretrained_checked(super().from_pretrained, pretrained_model_name_or_path, *args, **kwargs)


class QuarfSegformerModel(QuarfSegformerPreTrainedModel):
    r"""
    The QuARF-SegFormer encoder: transformers' SegFormer encoder (module for module, so every
    SegFormer weight loads) with the frozen quality extractor and a QuARF block after the patch
    embedding of stage ``config.quarf_stage``.

    Args:
        config ([`QuarfSegformerConfig`]):
            The encoder, the QuARF block and the quality extractor.

    ``forward(pixel_values, quality_features=None, output_attentions=None, output_hidden_states=None,
    return_dict=None)``: ``pixel_values`` (B, 3, H, W) normalised with ``config.image_mean`` /
    ``image_std`` (as the image processor does; float32 pixels into a bf16/fp16 model are cast for
    the encoder after the extractor has seen them); ``quality_features`` (B, quality_dim) to skip
    the extractor. Unknown keyword arguments are refused. Returns a
    ``QuarfSegformerModelOutput``: ``last_hidden_state``, ``hidden_states`` (every stage's
    output, only with ``output_hidden_states=True``), ``attentions`` (every attention layer's
    weights, only with ``output_attentions=True``), ``routing_weights`` (B, groups, experts)
    and ``quality_features``; with ``return_dict=False`` the tuple of those that are not `None`,
    in that order, as transformers' `SegformerModel`.

    Example:

    ```python
    >>> import torch
    >>> from quarf_hf import QuarfSegformerConfig, QuarfSegformerModel
    >>> model = QuarfSegformerModel(QuarfSegformerConfig(quality="brisque")).eval()
    >>> out = model(torch.randn(1, 3, 64, 64), output_hidden_states=True)
    >>> out.last_hidden_state.shape, len(out.hidden_states), out.routing_weights.shape
    (torch.Size([1, 256, 2, 2]), 4, torch.Size([1, 4, 4]))
    ```
    """

    def __init__(self, config: QuarfSegformerConfig):
        super().__init__(config)
        drop_path_decays = [
            config.drop_path_rate * i / max(sum(config.depths) - 1, 1) for i in range(sum(config.depths))
        ]
        self.stages = nn.ModuleList(
            SegformerStage(config, stage_idx, drop_path_decays) for stage_idx in range(config.num_encoder_blocks)
        )
        self.quarf = build_block(config.conditioning, config.hidden_sizes[config.quarf_stage], config.quarf)
        self.quality_extractor = build_quality_extractor(config.quality)
        # A CONTRIQUE extractor's configs are its own, not sub-configs: they follow this model's attention
        # implementation (its ResNet has no attention layer), as transformers expects of every submodel.
        for module in self.quality_extractor.modules():
            if isinstance(module, PreTrainedModel):
                module.config._attn_implementation_internal = config._attn_implementation
        self.post_init()

    def _check_pixel_values(self, pixel_values):
        # Normalised pixels (any sign): floats and finite (values: a host sync, see input_checks.value_checks).
        check_pixel_values(pixel_values, channels=(self.config.num_channels,), min_size=self.config.min_image_size,
                           values="normalised by the image processor", size_reason="for this encoder and quality extractor")
        if value_checks():
            check_finite(pixel_values, name="pixel_values", expected="finite normalised values")

    def compute_quality_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Quality features (float32) of normalised ``pixel_values``: un-normalised to [0, 1], through the frozen extractor."""
        return quality_vector(self.quality_extractor, pixel_values, self.config.image_mean, self.config.image_std)

    @value_checks_per_call  # the passes over values (pixels, quality) wait for the device: see input_checks
    def forward(
        self,
        pixel_values: torch.Tensor,
        quality_features: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        refuse_unknown_arguments(self, kwargs)
        self._check_pixel_values(pixel_values)
        if quality_features is None:  # from the pixels as given, before the cast to the encoder's dtype
            quality_features = self.compute_quality_features(pixel_values)
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        all_hidden_states = ()
        attentions = []
        recorders = record_attentions(self.stages, attentions) if output_attentions else []
        routing = None
        hidden_states = pixel_values.to(self.stages[0].patch_embeddings.proj.weight.dtype)
        try:
            for index, stage in enumerate(self.stages):
                # SegformerStage.forward, with the QuARF block after the chosen patch embedding.
                hidden_states, height, width = stage.patch_embeddings(hidden_states)
                if index == self.config.quarf_stage:
                    hidden_states, routing = apply_block(self.quarf, hidden_states, quality_features, (height, width))
                for block in stage.blocks:
                    hidden_states = block(hidden_states, height, width)
                hidden_states = stage.layer_norm(hidden_states)
                if stage.reshape:
                    hidden_states = hidden_states.reshape(hidden_states.shape[0], height, width, -1).permute(0, 3, 1, 2).contiguous()
                all_hidden_states += (hidden_states,)
        finally:
            for handle in recorders:
                handle.remove()
        output = QuarfSegformerModelOutput(
            last_hidden_state=hidden_states,
            hidden_states=all_hidden_states if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
            routing_weights=routing,
            quality_features=quality_features,
        )
        # As transformers' SegformerModel: a tuple of the fields that are not None.
        return output if return_dict else output.to_tuple()


class QuarfSegformerForSemanticSegmentation(QuarfSegformerPreTrainedModel):
    r"""
    QuARF-SegFormer for semantic segmentation: [`QuarfSegformerModel`] and SegFormer's all-MLP
    decode head, with transformers' SegFormer names, loss and outputs (plus the routing). Build one
    from any pretrained SegFormer with :meth:`from_segformer`; ``pipeline("image-segmentation")``
    and ``AutoModelForSemanticSegmentation`` load saved ones.

    Args:
        config ([`QuarfSegformerConfig`]):
            The encoder, head, QuARF block and quality extractor.

    ``forward(pixel_values, labels=None, quality_features=None, output_attentions=None,
    output_hidden_states=None, return_dict=None)``: ``pixel_values`` normalised as ``config.image_mean`` / ``image_std``
    say; ``labels`` (B, H, W) class ids (``config.semantic_loss_ignore_index`` ignored). Returns
    a ``QuarfSemanticSegmenterOutput``: ``loss``, ``logits`` (B, num_labels, H/4, W/4),
    ``hidden_states`` (with ``output_hidden_states=True``), ``attentions`` (with
    ``output_attentions=True``), ``routing_weights`` and
    ``quality_features``; with ``return_dict=False`` the tuple of those that are not `None`.

    Example:

    ```python
    >>> import torch
    >>> from quarf_hf import QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation
    >>> model = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(quality="brisque", num_labels=5)).eval()
    >>> out = model(torch.randn(1, 3, 64, 64), labels=torch.randint(0, 5, (1, 64, 64)))
    >>> out.logits.shape, out.loss.ndim
    (torch.Size([1, 5, 16, 16]), 0)
    ```
    """

    def __init__(self, config: QuarfSegformerConfig):
        super().__init__(config)
        self.segformer = QuarfSegformerModel(config)
        self.decode_head = SegformerDecodeHead(config)
        self.post_init()

    @value_checks_per_call  # the labels' check waits for the device: see input_checks
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.LongTensor | None = None,
        quality_features: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        refuse_unknown_arguments(self, kwargs)
        if labels is not None and self.config.num_labels < 1:
            raise InputError(f"num_labels: expected >= 1 to compute a loss, found {self.config.num_labels}")
        # The decode head needs every stage's output, whatever the caller asked for.
        outputs = self.segformer(
            pixel_values, quality_features=quality_features, output_attentions=output_attentions,
            output_hidden_states=True, return_dict=True,
        )
        logits = self.decode_head(outputs.hidden_states)
        loss = None
        if labels is not None:
            loss = with_load_balancing(segformer_loss(logits, labels, self.config), self)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        result = QuarfSemanticSegmenterOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states if output_hidden_states else None,
            attentions=outputs.attentions,
            routing_weights=outputs.routing_weights,
            quality_features=outputs.quality_features,
        )
        return result if return_dict else result.to_tuple()

    @classmethod
    def from_segformer(cls, pretrained_model_name_or_path, quality="brisque", quarf_stage: int = 0, num_labels=None,
                       id2label=None, revision: str | None = None, conditioning: str = DEFAULT_CONDITIONING,
                       **block_kwargs):
        r"""
        A QuARF-SegFormer holding every weight of a pretrained SegFormer; with the block at its
        identity initialisation it gives that SegFormer's logits exactly.

        Args:
            pretrained_model_name_or_path (`str` or `os.PathLike`):
                A folder or Hub id of any SegFormer (b0-b5): fine-tuned
                (``SegformerForSemanticSegmentation``) or backbone-only (``mit-b*``, whose decode
                head is then initialised fresh). Its saved image processor's normalisation
                (``do_normalize=False``: none) becomes ``config.image_mean`` / ``image_std``;
                ImageNet's without a processor.
            quality (`str`, `dict` or `nn.Module`, *optional*, defaults to `"brisque"`):
                The quality extractor (see :func:`quarf_hf.build_quality_extractor`).
            quarf_stage (`int`, *optional*, defaults to 0):
                The stage whose patch embedding the block follows.
            num_labels (`int`, *optional*):
                A new head for this many classes (named by ``id2label`` when given); the
                SegFormer's own head otherwise.
            id2label (`dict[int, str]`, *optional*):
                Class names of the new head.
            revision (`str`, *optional*):
                The commit (or branch, tag) of a Hub SegFormer to read its weights and processor at.
            conditioning (`str`, *optional*, defaults to `"route"`):
                How the quality vector is used (``"route"``, ``"film"``, ``"none"``); every mode
                starts as the identity, so the model still gives the SegFormer's logits.
            **block_kwargs:
                QuARF settings (:class:`QuarfConfig` fields); ``residual`` defaults to `True`.

        Example:

        ```python
        >>> model = QuarfSegformerForSemanticSegmentation.from_segformer(
        ...     "nvidia/segformer-b0-finetuned-ade-512-512", quality="brisque")  # doctest: +SKIP
        ```
        """
        from .quality import resolve_quality

        extractor, spec = resolve_quality(quality)
        load_kwargs = {}
        if num_labels is not None:  # a new head (when the classes differ) with matching label names
            labels = {int(k): v for k, v in id2label.items()} if id2label else {i: f"LABEL_{i}" for i in range(num_labels)}
            load_kwargs = {"num_labels": num_labels, "id2label": labels, "label2id": {v: k for k, v in labels.items()},
                           "ignore_mismatched_sizes": True}
        if revision is not None:
            load_kwargs["revision"] = revision
        base = SegformerForSemanticSegmentation.from_pretrained(pretrained_model_name_or_path, **load_kwargs)
        base_config = base.config.to_dict()
        for key in ("model_type", "architectures", "auto_map", "transformers_version"):
            base_config.pop(key, None)
        # The base's saved processor says how its pixel_values are normalised (do_normalize=False:
        # not at all); the model undoes exactly that before the quality extractor.
        image_mean, image_std = processor_normalisation(
            pretrained_model_name_or_path, **({"revision": revision} if revision is not None else {})) or (
            list(IMAGENET_MEAN), list(IMAGENET_STD)
        )
        quarf = {"quality_dim": extractor.feature_dim, **block_kwargs}
        config = QuarfSegformerConfig(
            **base_config, quarf=quarf, quarf_stage=quarf_stage, quality=spec, image_mean=image_mean, image_std=image_std,
            conditioning=conditioning,
        )
        with warnings.catch_warnings():  # the extractor's weights are loaded below, whatever its type
            warnings.filterwarnings("ignore", message="quality: 'contrique' without weights")
            model = cls(config)
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        allowed_missing = ("segformer.quarf.", "segformer.quality_extractor.")
        really_missing = [k for k in missing if not k.startswith(allowed_missing)]
        if really_missing or unexpected:
            raise InputError(
                f"pretrained_model_name_or_path: weights did not map onto QuARF-SegFormer "
                f"(missing {really_missing[:5]}, unexpected {unexpected[:5]})"
            )
        model.segformer.quality_extractor.load_state_dict(extractor.state_dict())
        return model

    def to_adapter(self, base_model: str | None = None):
        """The QuARF block and quality extractor as a :class:`~quarf_hf.QuarfAdapter` for the plain
        ``SegformerForSemanticSegmentation`` this model was built from.

        Attached to that SegFormer (``adapter.attach(segformer)``), the adapter gives this model's
        logits, as long as the SegFormer weights are the ones this model holds (the usual case when
        only the block was trained; otherwise share the whole model).

        Args:
            base_model (`str`, *optional*): the Hub id or path of that SegFormer, for the model card.
        """
        import copy

        from .adapter_targets import attachment_entry
        from .configuration_quarf_adapter import QuarfAdapterConfig
        from .modeling_quarf_adapter import QuarfAdapter

        config = self.config
        after = f"segformer.stages.{config.quarf_stage}.patch_embeddings"  # the same name in the plain SegFormer
        block = self.segformer.quarf
        adapter_config = QuarfAdapterConfig(
            quality=config.quality,
            conditioning=config.conditioning,
            attachments=[attachment_entry(self, after, block.in_channels, block.out_channels, block.config.to_dict())],
            pixel_mean=config.image_mean, pixel_std=config.image_std, pixel_argument="pixel_values",
            base_model=base_model, base_model_class="transformers.SegformerForSemanticSegmentation",
        )
        adapter = QuarfAdapter(adapter_config, quality_extractor=copy.deepcopy(self.segformer.quality_extractor))
        reference = next(block.parameters())
        adapter.blocks.to(device=reference.device, dtype=reference.dtype)
        adapter.blocks[0].load_state_dict(block.state_dict())
        return adapter


def segformer_loss(logits: torch.Tensor, labels: torch.Tensor, config) -> torch.Tensor:
    """SegFormer's loss: logits upsampled to the labels' size, cross-entropy with the ignore index."""
    check_labels(labels, logits.shape[0], config)
    upsampled = nn.functional.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    if config.num_labels > 1:
        return nn.functional.cross_entropy(upsampled, labels, ignore_index=config.semantic_loss_ignore_index)
    valid = ((labels >= 0) & (labels != config.semantic_loss_ignore_index)).float()
    loss = nn.functional.binary_cross_entropy_with_logits(upsampled.squeeze(1), labels.float(), reduction="none")
    return (loss * valid).mean()


def check_labels(labels, batch: int, config) -> None:
    """``labels``: integer class ids (batch, H, W), each in 0..num_labels-1 or the ignore index (the values:
    where ``input_checks.value_checks()`` says, a host sync)."""
    if not isinstance(labels, torch.Tensor):
        raise InputTypeError(f"labels: expected a tensor of class ids, found {type(labels).__name__}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise InputTypeError(f"labels: expected integer class ids (torch.long), found {labels.dtype}")
    if labels.ndim != 3 or labels.shape[0] != batch:
        raise InputError(f"labels: expected shape (batch={batch}, height, width), found {tuple(labels.shape)}")
    if not value_checks():
        return
    ignore = config.semantic_loss_ignore_index
    bad = ((labels < 0) | (labels >= config.num_labels)) & (labels != ignore)
    if bool(bad.any()):
        values = torch.unique(labels[bad])[:5].tolist()
        raise InputError(f"labels: expected class ids from 0 to {config.num_labels - 1} (num_labels={config.num_labels}) "
                         f"or the ignore index {ignore}, found {values}")


__all__ = [
    "QuarfSegformerModel",
    "QuarfSegformerForSemanticSegmentation",
    "QuarfSegformerPreTrainedModel",
    "QuarfSemanticSegmenterOutput",
    "QuarfSegformerModelOutput",
]
