"""Configuration of the QuARF restoration network (a UNet of diffusers blocks with a QuARF block)."""

from __future__ import annotations

from transformers import PretrainedConfig

from .checks import MAX_DEPTH, MAX_WIDTH, InputError, check_choice, check_groups, check_int, check_number, check_sizes
from .conditioning import DEFAULT_CONDITIONING, check_conditioning, quarf_config_from_settings
from .quality import normalize_quality_spec

LOSSES = ("l1", "charbonnier")
BACKBONES = ("unet", "dncnn")
AUTO_MAP = {
    "AutoConfig": "configuration_quarf_restoration.QuarfRestorationConfig",
    "AutoModel": "modeling_quarf_restoration.QuarfRestorationModel",
}
PIPELINE = {"impl": "pipeline_quarf_restoration.QuarfImageToImagePipeline", "pt": ["AutoModel"], "tf": [], "type": "image"}
TASK = "quarf-restoration"  # pipeline_quarf_restoration.TASK (not imported: the config needs no pipeline code)
# Saved with every model: `pipeline("quarf-restoration", model=..., trust_remote_code=True)` finds it
# without the package; "image-to-image" (folders saved before the task had its own name) works the same way.
CUSTOM_PIPELINES = {TASK: PIPELINE, "image-to-image": PIPELINE}


def _pipeline_installed() -> bool:
    """Whether this very package's restoration pipeline is registered with transformers (the
    package is installed and imported), as opposed to this file running as a model's remote code."""
    try:
        from transformers.pipelines import PIPELINE_REGISTRY
    except ImportError:  # pragma: no cover
        return False
    impl = PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl")
    package = __name__.rpartition(".")[0]
    return impl is not None and impl.__module__ == f"{package}.pipeline_quarf_restoration"


class QuarfRestorationConfig(PretrainedConfig):
    r"""
    Configuration of a [`QuarfRestorationModel`]: a UNet of diffusers' 2D blocks (no time
    embedding) with a QuARF block after its input convolution, routed by a frozen quality
    extractor. Saved configs carry ``auto_map`` and the ``quarf-restoration`` custom pipeline.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Channels of the images.
        backbone (`str`, *optional*, defaults to `"unet"`):
            ``"unet"``, the UNet of diffusers' blocks; ``"dncnn"``, a DnCNN-style plain stack of
            ``num_layers`` 3x3 convolutions with ReLU at full resolution (no down-sampling, no
            normalisation, no attention; receptive field ``2 * num_layers + 5`` px outside the
            block), so that the block's receptive field is what decides how far the network sees.
        block_out_channels (`list[int]`, *optional*, defaults to `(32, 64, 128)`):
            Widths of the UNet levels; each level after the first halves the resolution. The
            ``dncnn`` backbone takes one width.
        num_layers (`int`, *optional*, defaults to 3):
            The ``dncnn`` backbone's plain 3x3 layers between the block and the output convolution.
        layers_per_block (`int`, *optional*, defaults to 1):
            ResNet blocks per down level (up levels get one more, as in diffusers' UNets).
        norm_num_groups (`int`, *optional*, defaults to 8):
            GroupNorm groups; must divide every width.
        mid_block_attention (`bool`, *optional*, defaults to `False`):
            Self-attention in the middle block.
        quarf (`dict`, *optional*):
            The QuARF block's settings (a [`QuarfConfig`] dict); ``quality_dim`` defaults to the
            quality extractor's width and ``residual`` to `True`. ``num_groups`` must divide
            ``block_out_channels[0]``.
        quality (`str` or `dict`, *optional*, defaults to `"brisque"`):
            The frozen quality extractor's spec (see :func:`quarf_hf.build_quality_extractor`).
        conditioning (`str`, *optional*, defaults to `"route"`):
            How the block uses the quality vector: ``"route"``, QuARF's routing over experts;
            ``"film"``, a per-channel scale and shift of the same feature map (FiLM, no routing, the
            routed block's parameter count, the identity at init); ``"none"``, no block (the plain
            network, its quality extractor never run). See ``conditioning.CONDITIONING_MODES``.
        load_balancing_weight (`float`, *optional*, defaults to 0.0):
            Weight of the routers' load-balancing loss (:func:`quarf_aux_loss`) added to ``loss``
            in training forwards with ``labels``, so that ``transformers.Trainer`` and quarf-hf's
            own loop optimise the same objective.
        loss (`str`, *optional*, defaults to `"charbonnier"`):
            ``"l1"`` or ``"charbonnier"`` (``sqrt(d^2 + eps^2)``), used when ``labels`` are given.
        charbonnier_eps (`float`, *optional*, defaults to 1e-3):
            The ``eps`` of the Charbonnier loss.

    Example:

    ```python
    >>> from quarf_hf import QuarfRestorationConfig, QuarfRestorationModel
    >>> config = QuarfRestorationConfig(block_out_channels=[16, 32], quality="brisque")
    >>> config.quarf["quality_dim"], config.size_multiple
    (36, 2)
    >>> model = QuarfRestorationModel(config)
    ```
    """

    # Trainer's evaluation hands compute_metrics only the prediction (logits / reconstruction).
    keys_to_ignore_at_inference = ["hidden_states", "routing_weights", "quality_features"]
    model_type = "quarf_restoration"

    num_channels: int = 3
    backbone: str = "unet"
    num_layers: int = 3
    block_out_channels: list[int] | tuple[int, ...] = (32, 64, 128)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    mid_block_attention: bool = False
    quarf: dict | None = None
    quality: dict | None = None
    conditioning: str = DEFAULT_CONDITIONING
    loss: str = "charbonnier"
    charbonnier_eps: float = 1e-3
    load_balancing_weight: float = 0.0

    def __post_init__(self, **kwargs):
        self.load_balancing_weight = check_number("load_balancing_weight", self.load_balancing_weight, 0.0)
        self.block_out_channels = check_sizes("block_out_channels", self.block_out_channels, MAX_WIDTH)
        check_int("layers_per_block", self.layers_per_block, 1, MAX_DEPTH)
        check_int("num_layers", self.num_layers, 0, MAX_DEPTH)
        check_int("num_channels", self.num_channels, 1, 4)
        check_choice("backbone", self.backbone, BACKBONES)
        if self.backbone == "dncnn" and len(self.block_out_channels) != 1:
            raise InputError(f"block_out_channels: the dncnn backbone runs at one width (full resolution), expected "
                             f"one width, found {self.block_out_channels}")
        for index, width in enumerate(self.block_out_channels):
            check_groups("norm_num_groups", width, self.norm_num_groups, what=f"block_out_channels[{index}]")
        check_choice("loss", self.loss, LOSSES)
        self.quality = normalize_quality_spec(self.quality if self.quality is not None else "brisque")
        block = quarf_config_from_settings(self.quarf, self.quality)
        check_groups("quarf.num_groups", self.block_out_channels[0], block.num_groups,
                     what="the input convolution's width")
        self.quarf = block.to_dict()
        check_conditioning(self.conditioning)
        super().__post_init__(**kwargs)
        self.auto_map = {**AUTO_MAP, **(getattr(self, "auto_map", None) or {})}
        self.custom_pipelines = {**CUSTOM_PIPELINES, **(getattr(self, "custom_pipelines", None) or {})}
        if _pipeline_installed():
            # With quarf_hf imported, "quarf-restoration" is a registered task: hide its remote-code
            # entry so pipeline("quarf-restoration", model=...) uses the installed class and needs no
            # trust_remote_code. The full entry is still written to config.json (to_dict).
            self._saved_custom_pipelines = self.custom_pipelines
            self.custom_pipelines = {k: v for k, v in self.custom_pipelines.items() if k != TASK}

    def to_dict(self):
        data = super().to_dict()
        saved = data.pop("_saved_custom_pipelines", None)
        data["custom_pipelines"] = {**CUSTOM_PIPELINES, **(saved or {}), **(data.get("custom_pipelines") or {})}
        return data

    @property
    def size_multiple(self) -> int:
        """Inputs are padded to a multiple of this (one halving per UNet level after the first)."""
        return 2 ** (len(self.block_out_channels) - 1) if self.backbone == "unet" else 1


__all__ = ["QuarfRestorationConfig"]
