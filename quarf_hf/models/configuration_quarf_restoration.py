"""Configuration of the QuARF restoration network (a UNet of diffusers blocks with a QuARF block)."""

from __future__ import annotations

from transformers import PretrainedConfig

from .checks import InputError, check_choice, check_groups
from .conditioning import block_settings, check_conditioning
from .quality import normalize_quality_spec

LOSSES = ("l1", "charbonnier")
AUTO_MAP = {
    "AutoConfig": "configuration_quarf_restoration.QuarfRestorationConfig",
    "AutoModel": "modeling_quarf_restoration.QuarfRestorationModel",
}
# Saved with every model: `pipeline("image-to-image", model=..., trust_remote_code=True)` finds it.
CUSTOM_PIPELINES = {
    "image-to-image": {
        "impl": "pipeline_quarf_restoration.QuarfImageToImagePipeline",
        "pt": ["AutoModel"],
        "tf": [],
        "type": "image",
    }
}


def _pipeline_installed() -> bool:
    """Whether this very package's image-to-image pipeline is registered with transformers (the
    package is installed and imported), as opposed to this file running as a model's remote code."""
    try:
        from transformers.pipelines import PIPELINE_REGISTRY
    except ImportError:  # pragma: no cover
        return False
    impl = PIPELINE_REGISTRY.supported_tasks.get("image-to-image", {}).get("impl")
    package = __name__.rpartition(".")[0]
    return impl is not None and impl.__module__ == f"{package}.pipeline_quarf_restoration"


class QuarfRestorationConfig(PretrainedConfig):
    r"""
    Configuration of a [`QuarfRestorationModel`]: a UNet of diffusers' 2D blocks (no time
    embedding) with a QuARF block after its input convolution, routed by a frozen quality
    extractor. Saved configs carry ``auto_map`` and the ``image-to-image`` custom pipeline.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Channels of the images.
        block_out_channels (`list[int]`, *optional*, defaults to `(32, 64, 128)`):
            Widths of the UNet levels; each level after the first halves the resolution.
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

    model_type = "quarf_restoration"

    num_channels: int = 3
    block_out_channels: list[int] | tuple[int, ...] = (32, 64, 128)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    mid_block_attention: bool = False
    quarf: dict | None = None
    quality: dict | None = None
    conditioning: str = "route"
    loss: str = "charbonnier"
    charbonnier_eps: float = 1e-3

    def __post_init__(self, **kwargs):
        self.block_out_channels = [int(c) for c in self.block_out_channels]
        if not self.block_out_channels:
            raise InputError("block_out_channels: expected at least one width, found []")
        for index, width in enumerate(self.block_out_channels):
            check_groups("norm_num_groups", width, self.norm_num_groups, what=f"block_out_channels[{index}]")
        check_choice("loss", self.loss, LOSSES)
        self.quality = normalize_quality_spec(self.quality if self.quality is not None else "brisque")
        block = block_settings(self.quarf, self.quality)
        check_groups("quarf.num_groups", self.block_out_channels[0], block.num_groups,
                     what="the input convolution's width")
        self.quarf = block.to_dict()
        check_conditioning(self.conditioning)
        super().__post_init__(**kwargs)
        self.auto_map = {**AUTO_MAP, **(getattr(self, "auto_map", None) or {})}
        self.custom_pipelines = {**CUSTOM_PIPELINES, **(getattr(self, "custom_pipelines", None) or {})}
        if _pipeline_installed():
            # With quarf_hf imported the pipeline is registered under "image-to-image": hide the
            # remote-code entry so pipeline("image-to-image", model=...) needs no trust_remote_code.
            # It is still written to config.json (to_dict), for users without the package.
            self._saved_custom_pipelines = self.custom_pipelines
            del self.custom_pipelines

    def to_dict(self):
        data = super().to_dict()
        saved = data.pop("_saved_custom_pipelines", None)
        if "custom_pipelines" not in data:
            data["custom_pipelines"] = {**CUSTOM_PIPELINES, **(saved or {})}
        return data

    @property
    def size_multiple(self) -> int:
        """Inputs are padded to a multiple of this (one halving per level after the first)."""
        return 2 ** (len(self.block_out_channels) - 1)


__all__ = ["QuarfRestorationConfig"]
