"""QuARF restoration network: a UNet of diffusers' 2D blocks (or a DnCNN-style plain convolution
stack, ``backbone="dncnn"``) with a QuARF block after its input convolution.

Why diffusers' blocks and not ``UNet2DModel`` itself: ``UNet2DModel`` is a diffusion denoiser;
its forward requires a timestep and adds a time embedding to every ResNet block. Restoration
has no timestep, so the network is assembled from the same building blocks
(``get_down_block``/``get_up_block``/``UNetMidBlock2D``, ``temb_channels=None``): the same
layers and parameter names as a diffusers UNet, without the time path.

Data flow: pixels in [0, 1] (no normalisation) -> reflect-pad to the UNet's multiple -> conv_in
-> QuARF (routed by the frozen quality extractor on the input) -> down / mid / up blocks ->
conv_out (zero-initialised) -> global residual: ``reconstruction = input + residual``, cropped
back and clamped to [0, 1]. With conv_out at zero the untrained model is the identity.

Any image size works: when an image is smaller than the quality extractor's minimum (14 px for
BRISQUE, 64 for CONTRIQUE), the extractor sees a bicubic upscale of it (``conditioning.quality_vector``);
the network itself always runs at the input's size.

Shipped to the Hub with the model: imports only torch, transformers, diffusers and flat siblings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.models.unets.unet_2d_blocks import UNetMidBlock2D, get_down_block, get_up_block
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .checks import InputError, InputTypeError
from .conditioning import apply_block, build_block, init_identity, quality_vector, uses_quality
from .configuration_quarf_restoration import QuarfRestorationConfig
from .input_checks import check_pixel_values, to_unit_range, value_checks_per_call
from .quality import build_quality_extractor
from .quarf import with_load_balancing
from .weights import from_pretrained_checked


@dataclass
class QuarfRestorationOutput(ModelOutput):
    """``reconstruction`` (B, 3, H, W) in [0, 1]; ``loss`` when labels were given; ``routing_weights`` (B, groups, experts)."""

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    routing_weights: torch.FloatTensor | None = None
    quality_features: torch.FloatTensor | None = None


class QuarfRestorationModel(PreTrainedModel):
    r"""
    QuARF restoration network: a UNet of diffusers' 2D blocks with a QuARF block after its input
    convolution, routed by the frozen quality extractor of the input; a global residual makes
    the untrained model the identity (see the module docstring). ``pipeline("quarf-restoration",
    model=folder, trust_remote_code=True)`` runs a saved model on images.

    Args:
        config ([`QuarfRestorationConfig`]):
            The architecture, the QuARF block and the quality extractor.

    ``forward(pixel_values, labels=None, quality_features=None, return_dict=None)``:
    ``pixel_values`` (B, 3, H, W) in [0, 1], any size (reflect-padded internally); ``labels``
    (B, 3, H, W) clean images for the loss; ``quality_features`` (B, quality_dim) to skip the
    extractor. Returns a ``QuarfRestorationOutput`` with ``reconstruction`` (B, 3, H, W) in
    [0, 1], ``loss``, ``routing_weights`` (B, groups, experts) and ``quality_features``; a tuple
    when ``return_dict=False``.

    Example:

    ```python
    >>> import torch
    >>> from quarf_hf import QuarfRestorationConfig, QuarfRestorationModel
    >>> model = QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[16, 32])).eval()
    >>> images = torch.rand(1, 3, 37, 53)
    >>> out = model(images)
    >>> out.reconstruction.shape, torch.allclose(out.reconstruction, images)  # the identity at init
    (torch.Size([1, 3, 37, 53]), True)
    ```
    """

    config_class = QuarfRestorationConfig
    config: QuarfRestorationConfig
    base_model_prefix = "restoration"
    main_input_name = "pixel_values"
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

    # gradient_checkpointing_enable() switches on diffusers' own checkpointing in every UNet block
    # (each carries a `gradient_checkpointing` flag and calls `_gradient_checkpointing_func`).
    supports_gradient_checkpointing = True
    # device_map="auto" places whole UNet blocks (a block's skip connections stay on one device) and
    # keeps the quality extractor and the QuARF block whole.
    _no_split_modules = ["DownBlock2D", "UpBlock2D", "UNetMidBlock2D", "QuARF", "StandardizedBrisque", "ContriqueQuality", "ConstantQuality"]

    def __init__(self, config: QuarfRestorationConfig):
        super().__init__(config)
        widths = config.block_out_channels
        self.conv_in = nn.Conv2d(config.num_channels, widths[0], 3, padding=1)
        if config.backbone == "dncnn":
            self.layers = nn.ModuleList(nn.Conv2d(widths[0], widths[0], 3, padding=1) for _ in range(config.num_layers))
            self.conv_out = nn.Conv2d(widths[0], config.num_channels, 3, padding=1)
        else:
            self._build_unet(config)
        # The block and the extractor come after the backbone and are built without touching the random
        # stream: the backbone's initial weights then depend on the seed alone, not on the conditioning
        # (the arms of a comparison start from the same backbone; see init_weights' module order).
        with torch.random.fork_rng(devices=[]):
            self.quarf = build_block(config.conditioning, widths[0], config.quarf)
            self.quality_extractor = build_quality_extractor(config.quality)
        self.post_init()

    def _build_unet(self, config):
        widths = config.block_out_channels
        groups, eps, act = config.norm_num_groups, 1e-6, "silu"
        self.down_blocks = nn.ModuleList()
        in_width = widths[0]
        for level, width in enumerate(widths):
            self.down_blocks.append(get_down_block(
                "DownBlock2D", num_layers=config.layers_per_block, in_channels=in_width, out_channels=width,
                temb_channels=None, add_downsample=level < len(widths) - 1, resnet_eps=eps, resnet_act_fn=act,
                resnet_groups=groups, downsample_padding=1, attention_head_dim=width,
            ))
            in_width = width
        self.mid_block = UNetMidBlock2D(
            in_channels=widths[-1], temb_channels=None, resnet_eps=eps, resnet_act_fn=act, resnet_groups=groups,
            add_attention=config.mid_block_attention, attention_head_dim=widths[-1],
        )
        self.up_blocks = nn.ModuleList()
        reversed_widths = list(reversed(widths))
        out_width = reversed_widths[0]
        for level, width in enumerate(reversed_widths):
            prev_width, out_width = out_width, width
            skip_width = reversed_widths[min(level + 1, len(widths) - 1)]
            self.up_blocks.append(get_up_block(
                "UpBlock2D", num_layers=config.layers_per_block + 1, in_channels=skip_width, out_channels=out_width,
                prev_output_channel=prev_width, temb_channels=None, add_upsample=level < len(widths) - 1,
                resnet_eps=eps, resnet_act_fn=act, resnet_groups=groups, attention_head_dim=out_width,
            ))
        self.conv_norm_out = nn.GroupNorm(groups, widths[0], eps=eps)
        self.conv_out = nn.Conv2d(widths[0], config.num_channels, 3, padding=1)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``; a damaged file is one line naming it, missing QuARF weights a
        warning (see :mod:`.weights`)."""
        return from_pretrained_checked(super().from_pretrained, pretrained_model_name_or_path, *args, **kwargs)

    def _init_weights(self, module):
        """Initialises a fresh model and every weight a checkpoint lacks.

        Convolutions and linears (QuARF's experts and router included): torch's default, as
        diffusers' blocks have it (weight kaiming-uniform with ``a=sqrt(5)``, bias uniform in
        +-1/sqrt(fan_in)); GroupNorm/LayerNorm weight 1, bias 0; QuARF's ``residual_scale`` 0 (when
        residual) and FiLM's output layer 0 (``conditioning.init_identity``); ``conv_out`` 0, so an
        untrained model is the identity. Modules are visited in registration order, the UNet before
        the block, so the UNet's weights do not depend on the conditioning. Weights already loaded
        are left alone (transformers' guarded ``init`` functions).
        """
        if module is getattr(self, "conv_out", None):
            init.zeros_(module.weight)  # identity at init: reconstruction = input
            init.zeros_(module.bias)
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, (nn.GroupNorm, nn.LayerNorm)):
            if module.weight is not None:
                init.ones_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        init_identity(module)  # QuARF's gate, FiLM's output layer: the block starts as the identity

    def _check_pixel_values(self, pixel_values):
        # Any size: images under the quality model's minimum reach it upscaled (conditioning.quality_vector).
        # Integers are 0-255 (see input_checks.to_unit_range), so the dtype is checked by the rule, in forward.
        check_pixel_values(pixel_values, channels=(self.config.num_channels,), min_size=1, floating=False)

    def predict_residual(self, hidden: torch.Tensor) -> torch.Tensor:
        """The backbone after the input convolution (and QuARF block), then the output convolution.
        UNet: down, mid and up blocks with skip connections, no timestep (``None`` to every block);
        dncnn: ReLU, then each plain layer and its ReLU."""
        if self.config.backbone == "dncnn":
            hidden = nn.functional.relu(hidden)
            for layer in self.layers:
                hidden = nn.functional.relu(layer(hidden))
            return self.conv_out(hidden)
        skips = (hidden,)
        for block in self.down_blocks:
            hidden, block_skips = block(hidden, None)
            skips += block_skips
        hidden = self.mid_block(hidden, None)
        for block in self.up_blocks:
            block_skips = skips[-len(block.resnets):]
            skips = skips[: -len(block.resnets)]
            hidden = block(hidden, block_skips, None)
        return self.conv_out(nn.functional.silu(self.conv_norm_out(hidden)))

    @value_checks_per_call  # the passes over values wait for the device: see input_checks.value_checks
    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                quality_features: torch.Tensor | None = None, return_dict: bool | None = None, **kwargs):
        self._check_pixel_values(pixel_values)
        pixel_values = to_unit_range(pixel_values, name="pixel_values")  # integers as 0-255; out of range refused
        if labels is not None:
            if not isinstance(labels, torch.Tensor):
                raise InputTypeError(f"labels: expected a torch.Tensor of clean images {tuple(pixel_values.shape)}, "
                                f"found {type(labels).__name__}")
            if labels.shape != pixel_values.shape:
                raise InputError(f"labels: expected clean images of shape {tuple(pixel_values.shape)}, found {tuple(labels.shape)}")
            labels = to_unit_range(labels, name="labels")
        if quality_features is None and uses_quality(self.quarf):  # conditioning "none" never runs the extractor
            quality_features = quality_vector(self.quality_extractor, pixel_values)
        dtype = self.conv_in.weight.dtype
        height, width = pixel_values.shape[-2:]
        multiple = self.config.size_multiple
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        x = pixel_values.to(dtype)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x = nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)

        hidden, routing = apply_block(self.quarf, self.conv_in(x), quality_features)
        unclamped = (x + self.predict_residual(hidden))[..., :height, :width]
        reconstruction = unclamped.clamp(0, 1)

        loss = None
        if labels is not None:
            # The clamped value with the unclamped gradient: a clamp passes no gradient, so a pixel pushed
            # past [0, 1] would never be pulled back, and a residual that drifts there stops training.
            trained = unclamped + (reconstruction - unclamped).detach()
            difference = trained.float() - labels.float()
            if self.config.loss == "l1":
                loss = difference.abs().mean()
            else:
                loss = torch.sqrt(difference.square() + self.config.charbonnier_eps**2).mean()
            loss = with_load_balancing(loss, self)
        output = QuarfRestorationOutput(
            loss=loss, reconstruction=reconstruction, routing_weights=routing, quality_features=quality_features
        )
        return output if return_dict is not False else output.to_tuple()


def restoration_pipeline(model: QuarfRestorationModel, **kwargs):
    """The quarf-restoration pipeline around ``model`` (its file is saved with the model's code)."""
    from .pipeline_quarf_restoration import QuarfImageToImagePipeline

    return QuarfImageToImagePipeline(model=model, **kwargs)


__all__ = ["QuarfRestorationModel", "QuarfRestorationOutput", "restoration_pipeline"]
