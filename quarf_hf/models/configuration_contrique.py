"""Configuration of CONTRIQUE, the contrastive image-quality model (Madhusudana et al., IEEE TIP 2022)."""

from __future__ import annotations

from transformers import PretrainedConfig, ResNetConfig

# The settings that define the architecture: what QuARF model configs keep of a CONTRIQUE.
ARCHITECTURE_KEYS = ("num_channels", "embedding_size", "hidden_sizes", "depths", "projection_dim")


class ContriqueConfig(PretrainedConfig):
    """A ResNet-50 encoder (torchvision layout: stride on the 3x3 convolution) and CONTRIQUE's projector.

    Quality features are the L2-normalised global-average encoder features of the image and of a
    half-size copy, concatenated: ``feature_dim = 2 * hidden_sizes[-1]`` (4096 for ResNet-50).
    """

    model_type = "contrique"

    num_channels: int = 3
    embedding_size: int = 64
    hidden_sizes: list[int] | tuple[int, ...] = (256, 512, 1024, 2048)
    depths: list[int] | tuple[int, ...] = (3, 4, 6, 3)
    projection_dim: int = 128
    min_image_size: int = 64

    def __post_init__(self, **kwargs):
        if len(self.hidden_sizes) != len(self.depths) or not self.depths:
            raise ValueError(
                f"depths: expected one depth per entry of hidden_sizes {list(self.hidden_sizes)}, found {list(self.depths)}"
            )
        self.hidden_sizes = [int(v) for v in self.hidden_sizes]
        self.depths = [int(v) for v in self.depths]
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
