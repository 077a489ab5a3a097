"""Quality conditioning: the one path from a model's pixels to its quality vector, and from there into a block.

Every QuARF model (QuARF-SegFormer, the restoration model, an adapter inside someone else's
network) conditions on image quality the same way, through the three pieces here:

* :func:`quality_vector`: pixels as the model receives them -> the frozen extractor's features:
  un-normalise with the model's pixel mean/std, clamp to [0, 1], upscale images under the
  extractor's ``min_size`` (bicubic, so any image size works), move and cast to the extractor's
  device and dtype, run it without gradients, return float32. It is the only code in the package
  that runs a quality extractor inside a model's forward.
* :func:`build_block`: the module that uses the vector, picked by the ``conditioning`` setting of
  the model configs (:data:`CONDITIONING_MODES`).
* :func:`apply_block`: runs that module on a (B, C, H, W) map or on tokens (B, N, C) with their
  (H, W), SegFormer's layout, with the vector in the block's dtype.

The modes (the configs' ``conditioning`` setting):

* ``"route"`` (default): QuARF, the vector routes a mixture of dilated-convolution experts.
* ``"film"``: :class:`QualityFilm`, the same vector turned into a per-channel scale and shift of the
  same feature map (FiLM), no routing and no experts. Its output layer starts at zero, so it is the
  identity at initialisation, and its hidden width is chosen so that it has the routed block's
  parameter count (within one hidden unit): the control that separates "routing on quality" from
  "any use of quality".
* ``"static_film"``: :class:`StaticThenFilm`, the experts under one fixed mixture, then FiLM: the
  FiLM control that keeps the experts' convolutions (the routed block's parameter count).
* ``"none"``: :class:`Unconditioned`, the identity with no parameters; a model with it never runs
  its quality extractor (the plain network, e.g. the plain UNet arm of the restoration comparison).

Adding a way of using the vector is one entry in :data:`CONDITIONING_MODES`: a builder
``(in_channels, out_channels, config) -> module`` whose module is called as
``module(feature_map, quality, return_routing=True) -> (output map, routing weights or None)``.
The configs' ``conditioning`` value then selects it, and the three models need no change.

Shipped to the Hub with the models: imports only torch and flat siblings.
"""

from __future__ import annotations

from collections.abc import Sequence

import math

import torch
from torch import nn

from .checks import InputError, check_choice
from .input_checks import PIXEL_SLACK, check_pixel_range, value_checks
from .quality import quality_feature_dim
from .quarf import QuARF, QuarfConfig


def _routed_block(in_channels: int, out_channels: int | None, config) -> nn.Module:
    """QuARF: the vector routes a mixture of dilated-convolution experts (the paper's block)."""
    return QuARF(in_channels, out_channels=out_channels, config=config)


def _same_channels(in_channels: int, out_channels: int | None, mode: str) -> None:
    if out_channels is not None and out_channels != in_channels:
        raise InputError(f"out_channels: conditioning {mode!r} keeps the feature map's channels; expected "
                         f"{in_channels}, found {out_channels}")


def routed_parameter_count(in_channels: int, config, out_channels: int | None = None) -> int:
    """Parameters of the QuARF block with these settings (built on the meta device: no memory, no random draws)."""
    with torch.device("meta"):
        block = QuARF(in_channels, out_channels=out_channels, config=config)
    return sum(p.numel() for p in block.parameters())


class FilmLinear(nn.Linear):
    """A linear layer of :class:`QualityFilm`; ``zero_init``: the output layer, zero at initialisation.

    The identity-at-init rule sits on the layer itself, not on the block: transformers initialises
    a remote-code module that has no parameters of its own (the block) as already done, so a rule
    keyed on the block would never run."""

    def __init__(self, in_features: int, out_features: int, zero_init: bool = False):
        super().__init__(in_features, out_features)
        self.zero_init = zero_init
        if zero_init:
            nn.init.zeros_(self.weight)
            nn.init.zeros_(self.bias)


class QualityFilm(nn.Module):
    r"""
    FiLM on the quality vector: ``x * (1 + scale(q)) + shift(q)``, one scale and one shift per channel
    from a small MLP (Linear -> GELU -> Linear) of the quality features; no routing, no experts.

    The output layer is zero at initialisation, so the block starts as the identity. The hidden
    width makes the parameter count that of the QuARF block with the same settings
    (:func:`routed_parameter_count`), so "film" and "route" differ in how they use the vector, not
    in how many parameters they spend on it.

    Args:
        in_channels (`int`): channels of the feature map (the output has the same).
        config (`QuarfConfig` or `dict`): the block settings; ``quality_dim`` is the vector's width,
            the others size the routed block whose parameter count this one matches.
        budget (`int`, *optional*): the parameter count to match instead (see :class:`StaticThenFilm`).
    """

    uses_quality = True

    def __init__(self, in_channels: int, config, budget: int | None = None):
        super().__init__()
        if isinstance(config, dict):
            config = QuarfConfig.from_dict(config)
        self.config, self.in_channels = config, in_channels
        budget = routed_parameter_count(in_channels, config) if budget is None else budget
        # hidden * (quality_dim + 1) + (hidden + 1) * 2C parameters = the routed block's
        hidden = max(1, round((budget - 2 * in_channels) / (config.quality_dim + 1 + 2 * in_channels)))
        self.hidden = FilmLinear(config.quality_dim, hidden)
        self.out = FilmLinear(hidden, 2 * in_channels, zero_init=True)

    def extra_repr(self) -> str:
        return f"channels={self.in_channels}, quality_dim={self.config.quality_dim}, hidden={self.hidden.out_features}"

    def forward(self, x: torch.Tensor, quality_features: torch.Tensor, return_routing: bool = False):
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.in_channels:
            found = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"x: expected a (batch, {self.in_channels}, height, width) feature map, found {found}")
        expected = (x.shape[0], self.config.quality_dim)
        if not isinstance(quality_features, torch.Tensor) or tuple(quality_features.shape) != expected:
            found = tuple(quality_features.shape) if isinstance(quality_features, torch.Tensor) else type(quality_features).__name__
            raise InputError(f"quality_features: expected shape {expected} (batch of x, quality_dim), found {found}")
        scale, shift = self.out(nn.functional.gelu(self.hidden(quality_features.to(self.hidden.weight.dtype)))).chunk(2, dim=-1)
        out = x * (1 + scale[..., None, None].to(x.dtype)) + shift[..., None, None].to(x.dtype)
        return (out, None) if return_routing else out


class StaticThenFilm(nn.Module):
    r"""
    ``"static_film"``: the routed block's experts mixed by one learned mixture for every image (its
    router fed a constant), then FiLM on the quality vector. The FiLM control that keeps the
    experts' convolutions: it differs from ``"route"`` only in how the vector is used (scale and
    shift after a fixed mixture, not the mixture itself), with the FiLM sized so that the whole has
    the routed block's parameter count (within a few per cent). The identity at initialisation.

    Args:
        in_channels (`int`): channels of the feature map (the output has the same).
        config (`QuarfConfig` or `dict`): the routed block's settings.
    """

    uses_quality = True

    def __init__(self, in_channels: int, config):
        super().__init__()
        if isinstance(config, dict):
            config = QuarfConfig.from_dict(config)
        self.static = QuARF(in_channels, config=QuarfConfig.from_dict({**config.to_dict(), "quality_dim": 1}))
        budget = routed_parameter_count(in_channels, config) - sum(p.numel() for p in self.static.parameters())
        self.film = QualityFilm(in_channels, config, budget=budget)

    def forward(self, x: torch.Tensor, quality_features: torch.Tensor, return_routing: bool = False):
        constant = torch.ones(len(x), 1, device=x.device)  # one mixture for every image
        out, routing = self.static(x, constant, return_routing=True)
        out = self.film(out, quality_features)
        return (out, routing) if return_routing else out


class Unconditioned(nn.Module):
    """The identity, with no parameters: the ``"none"`` mode (a model with it runs no quality extractor)."""

    uses_quality = False

    def forward(self, x: torch.Tensor, quality_features: torch.Tensor | None = None, return_routing: bool = False):
        return (x, None) if return_routing else x


def _film_block(in_channels: int, out_channels: int | None, config) -> nn.Module:
    """FiLM: the vector scales and shifts each channel (no routing), as many parameters as "route"."""
    _same_channels(in_channels, out_channels, "film")
    return QualityFilm(in_channels, config)


def _static_film_block(in_channels: int, out_channels: int | None, config) -> nn.Module:
    """A static mixture of the experts, then FiLM (:class:`StaticThenFilm`)."""
    _same_channels(in_channels, out_channels, "static_film")
    return StaticThenFilm(in_channels, config)


def _no_block(in_channels: int, out_channels: int | None, config) -> nn.Module:
    """No conditioning: the plain network."""
    _same_channels(in_channels, out_channels, "none")
    return Unconditioned()


# conditioning setting -> builder of the module that uses the quality vector (see the module doc).
CONDITIONING_MODES = {"route": _routed_block, "film": _film_block, "static_film": _static_film_block,
                      "none": _no_block}
DEFAULT_CONDITIONING = "route"


def check_conditioning(value) -> str:
    """``value`` if it is a known conditioning mode, else a ValueError naming ``conditioning``."""
    return check_choice("conditioning", value, CONDITIONING_MODES)


def quarf_config_from_settings(settings: dict | None, quality: dict, name: str = "quarf") -> QuarfConfig:
    """A model config's block settings as a checked :class:`QuarfConfig`, for the quality extractor
    ``quality`` (a spec dict).

    ``quality_dim`` defaults to the extractor's feature width (and must equal it), ``residual`` to
    `True` (the block starts as the identity); ``name`` is where the settings sit in the config.
    """
    feature_dim = quality_feature_dim(quality)
    settings = {"quality_dim": feature_dim, "residual": True, **(settings or {})}
    block = QuarfConfig.from_dict(settings)  # validates every block setting
    if block.quality_dim != feature_dim:
        raise InputError(
            f"{name}.quality_dim: expected the quality extractor's feature width {feature_dim} "
            f"({quality['type']}), found {block.quality_dim}"
        )
    return block


def build_block(conditioning: str, in_channels: int, config, *, out_channels: int | None = None) -> nn.Module:
    """The module that conditions a feature map of ``in_channels`` on the quality vector.

    Args:
        conditioning (`str`): a key of :data:`CONDITIONING_MODES` (``"route"``: a QuARF block;
            ``"film"``: :class:`QualityFilm`; ``"none"``: :class:`Unconditioned`).
        in_channels (`int`): channels of the feature map it transforms.
        config (`QuarfConfig` or `dict`): the block's settings.
        out_channels (`int`, *optional*): its output channels (``in_channels`` by default).
    """
    return CONDITIONING_MODES[check_conditioning(conditioning)](in_channels, out_channels, config)


def uses_quality(block: nn.Module) -> bool:
    """Whether ``block`` reads the quality vector (``False`` for ``"none"``: the extractor need not run)."""
    return getattr(block, "uses_quality", True)


def init_identity(module: nn.Module) -> None:
    """Sets a conditioning block's identity-at-init part to zero: QuARF's ``residual_scale`` (when
    residual), FiLM's output layer (a :class:`FilmLinear` with ``zero_init``). For the models'
    ``_init_weights``, after their generic rule; transformers' guarded init functions leave weights
    loaded from a checkpoint alone."""
    from transformers import initialization as init

    if isinstance(module, QuARF) and module.residual_scale is not None:
        init.zeros_(module.residual_scale)
    elif isinstance(module, FilmLinear) and module.zero_init:
        init.zeros_(module.weight)
        init.zeros_(module.bias)


def init_film_layer(layer: FilmLinear) -> None:
    """torch's default initialisation of a FiLM layer, the output layer at zero (guarded: weights
    loaded from a checkpoint are left alone). For models whose own rule leaves linears alone."""
    from transformers import initialization as init

    init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
    bound = 1 / math.sqrt(layer.in_features)
    init.uniform_(layer.bias, -bound, bound)
    init_identity(layer)


def upscale_to_min_size(pixels: torch.Tensor, min_size: int) -> torch.Tensor:
    """``pixels`` itself, or, when its shorter side is under ``min_size``, a bicubic upscale (clamped to
    [0, 1]) whose shorter side is exactly ``min_size``, aspect ratio kept. Only the quality estimate
    comes from the upscaled copy; a model always runs at its input's own size."""
    height, width = pixels.shape[-2:]
    if min(height, width) >= min_size:
        return pixels
    scale = min_size / min(height, width)
    size = (max(min_size, round(height * scale)), max(min_size, round(width * scale)))
    return nn.functional.interpolate(pixels, size=size, mode="bicubic", align_corners=False).clamp(0, 1)


def quality_vector(
    extractor: nn.Module,
    pixel_values: torch.Tensor,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    name: str = "pixel_values",
) -> torch.Tensor:
    """The frozen ``extractor``'s quality features of a model's pixel input, float32 (B, feature_dim), no gradient.

    Args:
        extractor (`nn.Module`): a frozen quality extractor (``feature_dim``; ``min_size`` when it has one).
        pixel_values (`torch.Tensor`): (B, C, H, W) as the model receives them.
        mean, std (`float` or `list[float]`, *optional*): how they were normalised
            (``pixels_01 = pixel_values * std + mean``); `None` for pixels already in [0, 1].
        name (`str`, *optional*, defaults to `"pixel_values"`): the argument's name, as errors call it.

    Un-normalised pixels far outside [0, 1] (beyond ``input_checks.PIXEL_SLACK``: far more than a noisy
    diffusion sample or an augmentation gives, e.g. 0-255 values handed over unnormalised) are refused with a
    hint (NaN and inf too) where ``input_checks.value_checks()`` says (in a model's forward: that model's
    decision).
    """
    check = value_checks()  # the pass over the values is a host sync
    with torch.no_grad():
        pixels = pixel_values.float()
        if mean is not None or std is not None:
            # From the config on each call (a few numbers): buffers made at meta-device init would be empty.
            std = torch.tensor(1.0 if std is None else std, device=pixels.device).view(1, -1, 1, 1)
            mean = torch.tensor(0.0 if mean is None else mean, device=pixels.device).view(1, -1, 1, 1)
            pixels = pixels * std + mean
        if check:
            check_pixel_range(pixels, name=name, slack=PIXEL_SLACK, normalised=mean is not None or std is not None)
        pixels = upscale_to_min_size(pixels.clamp(0, 1), getattr(extractor, "min_size", 1))
        # The extractor's device (parameters, else buffers) and its parameters' dtype (a half-precision CONTRIQUE).
        parameter = next(extractor.parameters(), None)
        reference = parameter if parameter is not None else next(extractor.buffers(), None)
        if reference is not None:
            pixels = pixels.to(device=reference.device, dtype=parameter.dtype if parameter is not None else pixels.dtype)
        return extractor(pixels).float()


def apply_block(block: nn.Module, features: torch.Tensor, quality: torch.Tensor, size: tuple[int, int] | None = None):
    """Runs a conditioning block on a feature map or on tokens; returns (output in the input's layout, routing).

    Args:
        block (`nn.Module`): made by :func:`build_block`.
        features (`torch.Tensor`): a (B, C, H, W) map, or tokens (B, H*W, C) when ``size`` is given.
        quality (`torch.Tensor`): (B, feature_dim) quality vector, cast to the block's dtype here; `None`
            for a block that does not use it (``"none"``).
        size (`tuple[int, int]`, *optional*): (H, W) of the tokens.
    """
    reference = next(block.parameters(), None)
    if quality is not None:
        quality = quality.to(reference.dtype if reference is not None else features.dtype)
    if size is None:
        return block(features, quality, return_routing=True)
    height, width = size
    batch, _, channels = features.shape
    feature_map = features.transpose(1, 2).reshape(batch, channels, height, width)
    out, routing = block(feature_map, quality, return_routing=True)
    return out.flatten(2).transpose(1, 2), routing


__all__ = [
    "CONDITIONING_MODES",
    "DEFAULT_CONDITIONING",
    "QualityFilm",
    "Unconditioned",
    "FilmLinear",
    "init_film_layer",
    "init_identity",
    "routed_parameter_count",
    "uses_quality",
    "apply_block",
    "quarf_config_from_settings",
    "build_block",
    "check_conditioning",
    "quality_vector",
    "upscale_to_min_size",
]
