"""Configuration of CONTRIQUE, the contrastive image-quality model (Madhusudana et al., IEEE TIP 2022)."""

from __future__ import annotations

from transformers import PretrainedConfig, ResNetConfig

from .checks import MAX_DEPTH, MAX_WIDTH, InputError, check_int, check_sizes

# The settings that define the architecture: what QuARF model configs keep of a CONTRIQUE.
ARCHITECTURE_KEYS = ("num_channels", "embedding_size", "hidden_sizes", "depths", "projection_dim")


class ContriqueConfig(PretrainedConfig):
    r"""
    Configuration of [`ContriqueModel`], the CONTRIQUE image-quality model: a ResNet encoder
    (torchvision's layout: stride on the 3x3 convolution; ResNet-50 by default) and CONTRIQUE's
    projector. Quality features are the L2-normalised global-average encoder features of the
    image and of a half-size copy, concatenated: ``feature_dim = 2 * hidden_sizes[-1]`` (4096 for
    ResNet-50).

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Channels of the images.
        embedding_size (`int`, *optional*, defaults to 64):
            Width of the ResNet stem.
        hidden_sizes (`list[int]`, *optional*, defaults to `(256, 512, 1024, 2048)`):
            Output widths of the ResNet stages (bottleneck blocks).
        depths (`list[int]`, *optional*, defaults to `(3, 4, 6, 3)`):
            Blocks per stage; one per entry of ``hidden_sizes``.
        projection_dim (`int`, *optional*, defaults to 128):
            Output width of the contrastive projector (used in training only).
        min_image_size (`int`, *optional*, defaults to 64):
            The smallest height/width the model accepts.

    Example:

    ```python
    >>> from quarf_hf import ContriqueConfig, ContriqueModel
    >>> ContriqueConfig().feature_dim  # ResNet-50
    4096
    >>> tiny = ContriqueConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])
    >>> tiny.feature_dim
    32
    >>> model = ContriqueModel(tiny)
    ```
    """

    model_type = "contrique"

    num_channels: int = 3
    embedding_size: int = 64
    hidden_sizes: list[int] | tuple[int, ...] = (256, 512, 1024, 2048)
    depths: list[int] | tuple[int, ...] = (3, 4, 6, 3)
    projection_dim: int = 128
    min_image_size: int = 64

    def __post_init__(self, **kwargs):
        self.hidden_sizes = check_sizes("hidden_sizes", self.hidden_sizes, MAX_WIDTH)
        self.depths = check_sizes("depths", self.depths, MAX_DEPTH)
        if len(self.hidden_sizes) != len(self.depths):
            raise InputError(
                f"depths: expected one depth per entry of hidden_sizes {list(self.hidden_sizes)}, found {list(self.depths)}"
            )
        for name in ("embedding_size", "projection_dim"):
            check_int(name, getattr(self, name), 1, MAX_WIDTH)
        super().__post_init__(**kwargs)
        self.auto_map = {
            "AutoConfig": "configuration_contrique.ContriqueConfig",
            "AutoModel": "modeling_contrique.ContriqueModel",
            **(getattr(self, "auto_map", None) or {}),
        }

    @property
    def feature_dim(self) -> int:
        return 2 * self.hidden_sizes[-1]

    def resnet_config(self) -> ResNetConfig:
        return ResNetConfig(
            num_channels=self.num_channels,
            embedding_size=self.embedding_size,
            hidden_sizes=list(self.hidden_sizes),
            depths=list(self.depths),
            layer_type="bottleneck",
            hidden_act="relu",
            downsample_in_first_stage=False,
            downsample_in_bottleneck=False,  # torchvision's ResNet v1.5: stride on the 3x3 conv
        )

    def architecture_dict(self) -> dict:
        return {key: getattr(self, key) for key in ARCHITECTURE_KEYS}


__all__ = ["ContriqueConfig"]
