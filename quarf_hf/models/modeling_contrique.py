"""CONTRIQUE as a transformers ``PreTrainedModel``.

The official recipe (pavancm/CONTRIQUE, ``demo_feat.py``): a torchvision ResNet-50 without its
pooling and classifier encodes the image and a half-size copy; each encoder output is
global-average pooled and L2-normalised; the two 2048-d vectors are concatenated into the 4096-d
quality feature. Input is RGB in [0, 1], with no mean/std normalisation.

The half-size copy is made here with torch's antialiased bicubic resize (the same kernel as
PIL's default ``Image.resize``, which the official demo uses on the 8-bit image); PIL rounds the
result to 8 bits, we keep floats, so features differ from the demo's by that rounding only.

Shipped to the Hub with the models: imports only torch, transformers and flat siblings.
"""

from __future__ import annotations

import os

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, ResNetModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .checks import refuse_unknown_arguments
from .configuration_contrique import ContriqueConfig
from .input_checks import check_pixel_values, to_unit_range, value_checks_per_call


@dataclass
class ContriqueOutput(ModelOutput):
    """``quality_features`` (B, 2 * hidden): full and half scale; ``projections`` (B, 2, projection_dim) when asked;
    ``hidden_states`` (with ``output_hidden_states=True``): the full-scale pass's ResNet hidden states, as
    transformers' ``ResNetModel`` gives them (the stem's output, then each stage's)."""

    quality_features: torch.FloatTensor | None = None
    projections: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class ContriqueEncoder(ResNetModel):
    """transformers' ``ResNetModel``, declaring what ``ContriquePreTrainedModel`` declares: it has no
    attention layer, so every attention implementation runs it the same."""

    _supports_sdpa = _supports_flash_attn = _supports_flex_attn = _supports_attention_backend = True


class ContriquePreTrainedModel(PreTrainedModel):
    config_class = ContriqueConfig
    config: ContriqueConfig
    base_model_prefix = "contrique"
    main_input_name = "pixel_values"
    # A ResNet has no attention layer: every attention implementation runs it the same, so a model
    # holding it as its quality extractor may choose any (`set_attn_implementation("sdpa")`).
    _supports_sdpa = _supports_flash_attn = _supports_flex_attn = _supports_attention_backend = True

    def _init_weights(self, module):
        """Initialises a fresh model and every weight a checkpoint lacks: convolutions and linears
        kaiming-normal (fan_out, ReLU), BatchNorm weight 1, bias 0, running mean 0, variance 1 and
        count 0 (the ResNet encoder follows its own, identical, rule). Loaded weights are left alone."""
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            if module.num_batches_tracked is not None:
                init.zeros_(module.num_batches_tracked)


class ContriqueModel(ContriquePreTrainedModel):
    r"""
    CONTRIQUE (Madhusudana et al., IEEE TIP 2022): a ResNet encoder whose pooled features, at full
    and half scale, describe image quality, and the projector used in its contrastive training.
    Convert the published weights with ``quarf-hf convert-contrique``.

    Args:
        config ([`ContriqueConfig`]):
            The architecture; weights are initialised randomly (load them with ``from_pretrained``).

    ``forward(pixel_values, return_projections=False, return_dict=None, output_hidden_states=None)``:
    ``pixel_values`` (B, 3, H, W) floats in [0, 1] (not normalised), at least ``config.min_image_size``
    pixels. Returns a ``ContriqueOutput`` with ``quality_features`` (B, ``config.feature_dim``), when
    ``return_projections=True`` ``projections`` (B, 2, projection_dim), and when
    ``output_hidden_states=True`` (or ``config.output_hidden_states``) the full-scale ResNet's
    ``hidden_states``; with ``return_dict=False`` (or ``config.return_dict=False``) the tuple of the
    fields that are not `None`. Unknown keyword arguments are refused.

    Example:

    ```python
    >>> import torch
    >>> from quarf_hf import ContriqueConfig, ContriqueModel
    >>> model = ContriqueModel(ContriqueConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])).eval()
    >>> model(torch.rand(1, 3, 64, 64)).quality_features.shape
    torch.Size([1, 32])
    ```
    """

    def __init__(self, config: ContriqueConfig):
        super().__init__(config)
        self.encoder = ContriqueEncoder(config.resnet_config())
        # The ResNet's config is built here, not a sub-config: it follows this model's attention
        # implementation (it has no attention layer), as transformers expects of every submodel.
        self.encoder.config._attn_implementation_internal = config._attn_implementation
        width = config.hidden_sizes[-1]
        # CONTRIQUE's projector: Linear -> BN -> ReLU -> Linear -> BN, no biases.
        self.projector = nn.Sequential(
            nn.Linear(width, width, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Linear(width, config.projection_dim, bias=False),
            nn.BatchNorm1d(config.projection_dim),
        )
        self.post_init()

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def _check_pixel_values(self, pixel_values):
        # Integers are 0-255 (see input_checks.to_unit_range), so the dtype is checked by the rule, in forward.
        check_pixel_values(pixel_values, channels=(self.config.num_channels,), min_size=self.config.min_image_size,
                           floating=False)

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """L2-normalised global-average encoder features, (B, hidden)."""
        return pooled_features(self.encoder(pixel_values).last_hidden_state)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedModel.save_pretrained``, plus the image processor (:func:`contrique_image_processor`)
        when the folder has none, so every saved CONTRIQUE serves ``pipeline("image-feature-extraction")``."""
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if not os.path.isfile(os.path.join(save_directory, "preprocessor_config.json")):
            contrique_image_processor().save_pretrained(save_directory)
        return result

    @value_checks_per_call
    def forward(self, pixel_values: torch.Tensor, return_projections: bool = False, return_dict: bool | None = None,
                output_hidden_states: bool | None = None, **kwargs):
        refuse_unknown_arguments(self, kwargs)
        self._check_pixel_values(pixel_values)
        # Integers as 0-255; float values out of range refused (a host sync: see input_checks.value_checks).
        pixel_values = to_unit_range(pixel_values, name="pixel_values")
        height, width = pixel_values.shape[-2:]
        half = nn.functional.interpolate(
            pixel_values, size=(height // 2, width // 2), mode="bicubic", antialias=True, align_corners=False
        )
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        full = self.encoder(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        full_features, half_features = pooled_features(full.last_hidden_state), self.encode(half)
        projections = None
        if return_projections:
            projections = torch.stack([self.projector(full_features), self.projector(half_features)], dim=1)
        output = ContriqueOutput(
            quality_features=torch.cat([full_features, half_features], dim=1),
            projections=projections,
            hidden_states=full.hidden_states if output_hidden_states else None,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


def pooled_features(last_hidden_state: torch.Tensor) -> torch.Tensor:
    """CONTRIQUE's features of one scale: the encoder's output global-average pooled and L2-normalised, (B, hidden)."""
    return nn.functional.normalize(last_hidden_state.mean(dim=(2, 3)), dim=1)


def contrique_image_processor():
    """The image processor of a CONTRIQUE folder: PIL / arrays -> RGB in [0, 1] at the image's own size
    (no resize, no normalisation), what :class:`ContriqueModel` takes; ``pipeline("image-feature-extraction")``
    then returns its ``quality_features``."""
    from transformers import ViTImageProcessor

    return ViTImageProcessor(do_resize=False, do_rescale=True, rescale_factor=1 / 255, do_normalize=False)


__all__ = ["ContriqueModel", "contrique_image_processor", "ContriquePreTrainedModel", "ContriqueOutput"]
