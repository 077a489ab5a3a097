"""Configuration of a QuARF adapter: QuARF blocks plus their quality model, for someone else's network.

Shipped to the Hub with every adapter: imports only transformers and flat siblings.
"""

from __future__ import annotations

from transformers import PretrainedConfig

from .checks import InputError, short_repr
from .conditioning import DEFAULT_CONDITIONING, check_conditioning, quarf_config_from_settings
from .quality import normalize_quality_spec
from .quarf import check_block_channels

AUTO_MAP = {
    "AutoConfig": "configuration_quarf_adapter.QuarfAdapterConfig",
    "AutoModel": "modeling_quarf_adapter.QuarfAdapter",
}
ATTACHMENT_KEYS = {"after", "in_channels", "out_channels", "quarf", "parameter_shapes", "layout", "prefix_tokens", "grid"}
# How a module's output carries its features (see ``adapter_layouts.apply_to_output``).
LAYOUTS = ("auto", "channels_first", "channels_last", "tokens")


def _floats(name: str, value) -> list[float]:
    values = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number or a list of numbers, found {short_repr(value)}") from None
    if not values:
        raise InputError(f"{name}: expected a number or a non-empty list of numbers, found {short_repr(value)}")
    return values


class QuarfAdapterConfig(PretrainedConfig):
    """Configuration of a :class:`~quarf_hf.models.modeling_quarf_adapter.QuarfAdapter`.

    Args:
        quality (`dict`, *optional*): the frozen quality extractor as a spec dict
            (``{"type": "brisque"}`` or ``{"type": "contrique", "config": {...}}``); BRISQUE by default.
        attachments (`list[dict]`): one entry per QuARF block, in order:
            ``after`` (dotted name of the base-network module whose output the block transforms),
            ``in_channels``, ``out_channels``, ``quarf`` (the block's
            :class:`~quarf_hf.QuarfConfig` as a dict), ``parameter_shapes`` (the shapes of that
            module's parameters when the adapter was made, checked when attaching), ``layout`` (one of
            ``LAYOUTS``: ``"auto"``, the default, reads it off the output), ``prefix_tokens`` (leading
            class/register tokens of a token output, passed through; None: 0 or 1, whichever leaves a
            square grid) and ``grid`` ((H, W) of the tokens; None: from the output or square).
        conditioning (`str`, *optional*, defaults to `"route"`):
            How the blocks use the quality vector: ``"route"``, QuARF's routing over experts;
            ``"film"``, a per-channel scale and shift of the same feature map (FiLM, no routing, the
            routed block's parameter count, the identity at init); ``"none"``, no block (see
            ``conditioning.CONDITIONING_MODES``).
        pixel_mean, pixel_std (`float` or `list[float]`, *optional*, default 0 and 1): how the base
            network's pixel input is normalised: ``pixels_01 = input * std + mean``.
        pixel_argument (`str`, *optional*): the keyword of the base network's forward that carries
            the pixels; by default the first of ``pixel_values``, ``sample``, ``images``, ``x``,
            ``input`` given, else the first positional argument.
        base_model (`str`, *optional*): the Hub id or path of the base network.
        base_model_class (`str`, *optional*): its class, ``module.ClassName``.
        entry (`str`, *optional*): the submodule whose forward takes the pixels and computes the
            quality vector (e.g. ``"vision_encoder"`` of a ``SamModel``); the network itself when unset.

    Example:

    ```python
    >>> from quarf_hf import QuarfAdapterConfig
    >>> config = QuarfAdapterConfig(attachments=[{"after": "conv_in", "in_channels": 32}], pixel_mean=0.5, pixel_std=0.5)
    >>> config.attachments[0]["quarf"]["quality_dim"]   # BRISQUE's width, filled in
    36
    ```
    """

    model_type = "quarf_adapter"

    quality: dict | None = None
    attachments: list | None = None
    conditioning: str = DEFAULT_CONDITIONING
    pixel_mean: list | tuple | float | int = 0.0
    pixel_std: list | tuple | float | int = 1.0
    pixel_argument: str | None = None
    base_model: str | None = None
    base_model_class: str | None = None
    entry: str | None = None

    def __post_init__(self, **kwargs):
        self.quality = normalize_quality_spec(self.quality if self.quality is not None else "brisque")
        self.attachments = [self._attachment(i, a, self.quality) for i, a in enumerate(self.attachments or [])]
        names = [a["after"] for a in self.attachments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InputError(f"attachments: expected one block per module, found several after {duplicates}")
        check_conditioning(self.conditioning)
        self.pixel_mean = _floats("pixel_mean", self.pixel_mean)
        self.pixel_std = _floats("pixel_std", self.pixel_std)
        if min(self.pixel_std) <= 0:
            raise InputError(f"pixel_std: expected positive values, found {self.pixel_std}")
        for name in ("pixel_argument", "base_model", "base_model_class", "entry"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InputError(f"{name}: expected a string or None, found {short_repr(value)}")
        super().__post_init__(**kwargs)
        self.auto_map = {**AUTO_MAP, **(getattr(self, "auto_map", None) or {})}

    @staticmethod
    def _attachment(index: int, attachment, quality: dict) -> dict:
        where = f"attachments[{index}]"
        if not isinstance(attachment, dict) or not isinstance(attachment.get("after"), str) or not attachment["after"]:
            raise InputError(f"{where}: expected a dict with a module name under 'after', found {short_repr(attachment)}")
        unknown = sorted(set(attachment) - ATTACHMENT_KEYS)
        if unknown:
            raise InputError(f"{where}: unknown keys {unknown}; expected some of {sorted(ATTACHMENT_KEYS)}")
        block = quarf_config_from_settings(attachment.get("quarf"), quality, name=f"{where}.quarf")
        in_channels = attachment.get("in_channels")
        out_channels = check_block_channels(block, in_channels, attachment.get("out_channels"), where=f"{where}.",
                                            block_where=f"{where}.quarf.")
        shapes = attachment.get("parameter_shapes") or {}
        layout = attachment.get("layout", "auto")
        if layout not in LAYOUTS:
            raise InputError(f"{where}.layout: expected one of {list(LAYOUTS)}, found {layout!r}")
        prefix, grid = attachment.get("prefix_tokens"), attachment.get("grid")
        if prefix is not None and (not isinstance(prefix, int) or isinstance(prefix, bool) or prefix < 0):
            raise InputError(f"{where}.prefix_tokens: expected a non-negative int or None, found {prefix!r}")
        if grid is not None and not (isinstance(grid, (list, tuple)) and len(grid) == 2
                                     and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in grid)):
            raise InputError(f"{where}.grid: expected (height, width) as two positive ints or None, found {grid!r}")
        return {
            "after": attachment["after"],
            "in_channels": in_channels,
            "out_channels": out_channels,
            "quarf": block.to_dict(),
            "parameter_shapes": {str(k): [int(d) for d in v] for k, v in shapes.items()},
            "layout": layout,
            "prefix_tokens": prefix,
            "grid": list(grid) if grid is not None else None,
        }


__all__ = ["QuarfAdapterConfig"]
