"""Configuration of one QuARF block saved on its own (``model_type="quarf"``).

Two configs describe a block, for two audiences:

* :class:`~quarf_hf.models.quarf.QuarfConfig` (a frozen dataclass) holds the block's settings
  for ``QuARF(in_channels, config=...)`` in plain torch code; it has no channel counts.
* :class:`QuarfBlockConfig` (this file, a ``PretrainedConfig``) is what ``save_pretrained``
  writes for :class:`~quarf_hf.models.modeling_quarf.QuarfBlockModel`: the same settings plus
  ``in_channels`` / ``out_channels``, in ``config.json``.

Shipped to the Hub with the block: imports only transformers and flat siblings.
"""

from __future__ import annotations

from dataclasses import fields

from transformers import PretrainedConfig

from .quarf import QuarfConfig, check_block_channels

AUTO_MAP = {"AutoConfig": "configuration_quarf.QuarfBlockConfig", "AutoModel": "modeling_quarf.QuarfBlockModel"}
# The QuarfConfig fields this config carries, in order.
BLOCK_KEYS = tuple(f.name for f in fields(QuarfConfig))


class QuarfBlockConfig(PretrainedConfig):
    """Configuration of a :class:`~quarf_hf.models.modeling_quarf.QuarfBlockModel`.

    Args:
        in_channels (`int`, *optional*, defaults to 64): channels of the feature map the block takes.
        out_channels (`int`, *optional*): channels it returns; defaults to ``in_channels``.
        quality_dim (`int`, *optional*, defaults to 4096): width of the quality features (36 for
            BRISQUE, 4096 for CONTRIQUE).
        experts (`list[list[int]]`, *optional*): ``(kernel_size, dilation)`` per expert; defaults to
            four 3x3 experts with dilations 1, 2, 4, 8.
        num_groups (`int`, *optional*, defaults to 4): channel groups, each routed on its own.
        top_k (`int`, *optional*): experts kept per group; ``None`` keeps all.
        mode (`str`, *optional*, defaults to `"soft"`): ``"soft"`` (weighted sum) or ``"hard"`` (one expert).
        router (`str`, *optional*, defaults to `"linear"`): ``"linear"`` or ``"mlp"``.
        router_hidden_dim (`int`, *optional*, defaults to 256): hidden width of the ``"mlp"`` router.
        router_noise (`bool`, *optional*, defaults to `True`): learned routing noise, in training only.
        residual (`bool`, *optional*, defaults to `False`): ``x + gamma * block(x)``, ``gamma = 0`` at init.
        hard_gradient (`str`, *optional*, defaults to `"straight_through"`): or ``"gate"``.
        bias (`bool`, *optional*, defaults to `True`): biases in the expert convolutions.

    Example:

    ```python
    >>> from quarf_hf import QuarfBlockConfig, QuarfBlockModel
    >>> model = QuarfBlockModel(QuarfBlockConfig(in_channels=32, quality_dim=36, residual=True))
    >>> model.quarf.in_channels
    32
    ```
    """

    model_type = "quarf"

    in_channels: int = 64
    out_channels: int | None = None
    quality_dim: int = 4096
    experts: list | tuple | None = None
    num_groups: int = 4
    top_k: int | None = None
    mode: str = "soft"
    router: str = "linear"
    router_hidden_dim: int = 256
    router_noise: bool = True
    residual: bool = False
    hard_gradient: str = "straight_through"
    bias: bool = True

    def __post_init__(self, **kwargs):
        settings = {key: getattr(self, key) for key in BLOCK_KEYS if key != "experts"}
        if self.experts is not None:
            settings["experts"] = self.experts
        block = QuarfConfig.from_dict(settings)  # validates every block setting
        self.experts = [list(expert) for expert in block.experts]
        self.out_channels = check_block_channels(block, self.in_channels, self.out_channels)
        super().__post_init__(**kwargs)
        self.auto_map = {**AUTO_MAP, **(getattr(self, "auto_map", None) or {})}

    @property
    def quarf_config(self) -> QuarfConfig:
        """The block's settings as the dataclass that ``QuARF(config=...)`` takes."""
        return QuarfConfig.from_dict({key: getattr(self, key) for key in BLOCK_KEYS})

    @classmethod
    def from_block(cls, block) -> "QuarfBlockConfig":
        """The config of an existing :class:`~quarf_hf.models.quarf.QuARF` block."""
        return cls(in_channels=block.in_channels, out_channels=block.out_channels, **block.config.to_dict())


__all__ = ["QuarfBlockConfig"]
