"""The QuARF block: quality-adaptive receptive fields (AAAI-25), in plain torch.

A frozen image-quality model turns the input image into a quality vector ``q``. A router maps
``q`` to one weight per (image, channel group, expert); each expert is a convolution with its
own receptive field (by default 3x3 with dilations 1, 2, 4, 8), shared by all groups. Group
``i``'s output is ``sum_e w[b, i, e] * expert_e(x_i)``.

This file is shipped to the Hub with the models that use it, so it imports nothing but torch (and\nits sibling ``checks``).

How this differs from the published ``quarf.py`` (and why):

* The router adds its learned noise only in training mode, so evaluation is deterministic.
* All groups go through an expert in one convolution call (groups are folded into the batch
  dimension), instead of a Python loop over groups x experts, and nothing is copied to the host.
* Soft mode's weighted sum of experts has a hand-written backward (one batched dot product per
  expert for the router's gradient), and on a CPU inference runs over cache-sized tiles of
  images: both cut memory traffic, which is what the block's time goes to once the
  convolutions are batched.
* ``mode="hard"`` works: each (image, group) goes through one expert, and only that expert is
  computed, in training as in inference. The router still gets gradient through the chosen
  expert's scale: with ``hard_gradient="straight_through"`` (default) the scale is
  ``1 + w - w.detach()`` (value exactly 1, gradient of the soft weight ``w``), with
  ``hard_gradient="gate"`` it is ``w`` itself (Switch-Transformer style). Dispatching pairs to
  experts needs the per-expert counts on the host: it is the one place where ``forward``
  synchronises, because the amount of work depends on the data (soft mode never does).
* Optional residual form ``x + gamma * block(x)`` with ``gamma`` initialised to zero, so
  inserting the block into a pretrained network changes nothing at step 0.
* Optional load-balancing loss (importance and load, Shazeer et al. 2017), kept in
  ``block.aux_loss`` after each training forward.

State dicts of the reference module (``router.route_linear.*``, ``router.noise_linear.*``,
``experts.{i}.*``) load into ``QuARF(in_channels=C)`` unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from .checks import MAX_EXPERTS, MAX_WIDTH, InputError, InputTypeError, check_choice, check_groups, check_int, short_repr
from .input_checks import value_checks

MODES = ("soft", "hard")
ROUTERS = ("linear", "mlp")
HARD_GRADIENTS = ("straight_through", "gate")
# Bounds no real block needs: a config.json asking for more is refused before anything is built.
MAX_KERNEL_SIZE = 63
MAX_DILATION = 256
# Dilations used when experts are given only by count (the reference's 1, 2, 4, 8 pattern).
_DEFAULT_KERNEL = 3


def _default_experts(num_experts: int = 4) -> tuple[tuple[int, int], ...]:
    return tuple((_DEFAULT_KERNEL, 2**i) for i in range(num_experts))


@dataclass(frozen=True)
class QuarfConfig:
    r"""
    Settings of one QuARF block (everything but its channel counts), a frozen dataclass. Model
    configs store it as a dict (``to_dict`` / ``from_dict``).

    Defaults equal the published reference: 4096-d CONTRIQUE features, four 3x3 experts with
    dilations 1, 2, 4, 8, four channel groups, top-4 (dense) soft routing with a linear, noisy
    router.

    Args:
        quality_dim (`int`, *optional*, defaults to 4096):
            Width of the quality features the router reads (36 for BRISQUE, 4096 for CONTRIQUE).
        experts (`tuple[tuple[int, int], ...]`, *optional*, defaults to `((3, 1), (3, 2), (3, 4), (3, 8))`):
            One ``(kernel_size, dilation)`` per expert convolution; the receptive field of an
            expert is ``(kernel_size - 1) * dilation + 1``.
        num_groups (`int`, *optional*, defaults to 4):
            Channel groups, each routed separately; must divide the block's channel counts.
        top_k (`int`, *optional*):
            Experts kept per group; `None` keeps every expert (the reference's ``top_k=4`` with
            four experts).
        mode (`str`, *optional*, defaults to `"soft"`):
            ``"soft"``: the weighted sum of the experts; ``"hard"``: the one expert of highest weight.
        router (`str`, *optional*, defaults to `"linear"`):
            ``"linear"``, or ``"mlp"`` (Linear -> GELU -> Linear).
        router_hidden_dim (`int`, *optional*, defaults to 256):
            Hidden width of the ``"mlp"`` router (unused by the linear one).
        router_noise (`bool`, *optional*, defaults to `True`):
            Learned Gaussian noise on the routing logits, in training only.
        residual (`bool`, *optional*, defaults to `False`):
            ``x + gamma * block(x)`` with ``gamma`` zero at init, so the block starts as the identity.
        hard_gradient (`str`, *optional*, defaults to `"straight_through"`):
            Gradient of ``mode="hard"``: ``"straight_through"`` (one-hot forward, soft gradient) or
            ``"gate"`` (the chosen expert's output times its weight).
        bias (`bool`, *optional*, defaults to `True`):
            Whether the expert convolutions have biases.

    Example:

    ```python
    >>> from quarf_hf import QuarfConfig
    >>> config = QuarfConfig(quality_dim=36, num_groups=2, top_k=2)
    >>> config.num_experts, config.effective_top_k
    (4, 2)
    >>> QuarfConfig.from_dict(config.to_dict()) == config
    True
    ```
    """

    quality_dim: int = 4096
    experts: tuple[tuple[int, int], ...] = field(default_factory=_default_experts)
    num_groups: int = 4
    top_k: int | None = None  # None: every expert (the reference's top_k=4 with 4 experts)
    mode: str = "soft"
    router: str = "linear"  # "linear", or "mlp" (Linear -> GELU -> Linear)
    router_hidden_dim: int = 256  # only used by the "mlp" router
    router_noise: bool = True  # learned Gaussian noise on the logits, in training only
    residual: bool = False  # x + gamma * block(x), gamma = 0 at init
    hard_gradient: str = "straight_through"  # or "gate"
    bias: bool = True

    def __post_init__(self):
        experts = self.experts
        if not isinstance(experts, (list, tuple)) or len(experts) == 0:
            raise InputError(f"experts: expected a non-empty list of (kernel_size, dilation), found {short_repr(experts)}")
        if len(experts) > MAX_EXPERTS:
            raise InputError(f"experts: expected at most {MAX_EXPERTS} experts, found {len(experts):,}")
        normalised = []
        for i, expert in enumerate(experts):
            if not isinstance(expert, (list, tuple)) or len(expert) != 2:
                raise InputError(f"experts[{i}]: expected (kernel_size, dilation), found {short_repr(expert)}")
            kernel_size, dilation = expert
            for name, value, maximum in (("kernel_size", kernel_size, MAX_KERNEL_SIZE), ("dilation", dilation, MAX_DILATION)):
                check_int(f"experts[{i}] {name}", value, 1, maximum)
            normalised.append((kernel_size, dilation))
        object.__setattr__(self, "experts", tuple(normalised))
        for name in ("quality_dim", "num_groups", "router_hidden_dim"):
            check_int(name, getattr(self, name), 1, MAX_WIDTH)
        if self.top_k is not None:
            check_int("top_k", self.top_k, 1, len(self.experts),
                      expected=f"an integer from 1 to the number of experts ({len(self.experts)})")
        check_choice("mode", self.mode, MODES)
        check_choice("router", self.router, ROUTERS)
        check_choice("hard_gradient", self.hard_gradient, HARD_GRADIENTS)

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    @property
    def effective_top_k(self) -> int:
        return self.num_experts if self.top_k is None else self.top_k

    def to_dict(self) -> dict:
        data = asdict(self)
        data["experts"] = [list(e) for e in self.experts]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "QuarfConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"QuarfConfig: unknown keys {unknown}; expected some of {sorted(known)}")
        return cls(**data)  # __post_init__ checks the experts (their count first) and makes them tuples


def check_block_channels(config: QuarfConfig, in_channels, out_channels=None, *, where: str = "",
                         block_where: str = "") -> int:
    """The channel rule of a QuARF block; returns its output channels (``in_channels`` when ``None``).

    ``in_channels`` and ``out_channels`` are positive integers that ``config.num_groups`` divides,
    and a residual block keeps its width. ``QuARF``, ``QuarfBlockConfig`` and ``QuarfAdapterConfig``
    all call this, so that they agree; ``where`` / ``block_where`` prefix the names in messages
    (``"attachments[0]."`` / ``"attachments[0].quarf."``).
    """
    check_int(f"{where}in_channels", in_channels)
    out_channels = in_channels if out_channels is None else check_int(f"{where}out_channels", out_channels)
    for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
        check_groups(f"{block_where}num_groups", channels, config.num_groups, what=f"{where}{name}")
    if config.residual and out_channels != in_channels:
        raise InputError(
            f"{block_where}residual: needs out_channels == in_channels, found {out_channels} != {in_channels}"
        )
    return out_channels


class NoisyTopkRouter(nn.Module):
    """Maps quality features (B, D) to routing weights (B, groups, experts).

    Parameter names match the reference (``route_linear``, ``noise_linear``).
    """

    def __init__(self, config: QuarfConfig):
        super().__init__()
        self.num_groups = config.num_groups
        self.num_experts = config.num_experts
        self.top_k = config.effective_top_k
        width = config.num_groups * config.num_experts
        if config.router == "mlp":
            self.hidden = nn.Sequential(nn.Linear(config.quality_dim, config.router_hidden_dim), nn.GELU())
            in_features = config.router_hidden_dim
        else:
            self.hidden = None
            in_features = config.quality_dim
        self.route_linear = nn.Linear(in_features, width)
        self.noise_linear = nn.Linear(in_features, width) if config.router_noise else None

    def forward(self, quality_features: torch.Tensor):
        """Returns (weights, logits, noisy_logits, noise_std), each (B, groups, experts).

        ``noisy_logits`` equals ``logits`` and ``noise_std`` is None outside training.
        """
        shape = (quality_features.shape[0], self.num_groups, self.num_experts)
        h = self.hidden(quality_features) if self.hidden is not None else quality_features
        logits = self.route_linear(h).view(shape)
        noise_std = None
        noisy_logits = logits
        if self.training and self.noise_linear is not None:
            noise_std = F.softplus(self.noise_linear(h)).view(shape)
            noisy_logits = logits + torch.randn_like(logits) * noise_std
        if self.top_k < self.num_experts:
            top_logits, top_indices = noisy_logits.topk(self.top_k, dim=-1)
            masked = torch.full_like(noisy_logits, float("-inf")).scatter(-1, top_indices, top_logits)
            weights = masked.softmax(dim=-1)
        else:
            weights = noisy_logits.softmax(dim=-1)
        return weights, logits, noisy_logits, noise_std


def _cv_squared(values: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation over the last dimension, averaged over the rest."""
    values = values.float()
    return (values.var(dim=-1, unbiased=False) / (values.mean(dim=-1) ** 2 + 1e-10)).mean()


def load_balancing_loss(weights, logits, noisy_logits, noise_std, top_k: int) -> torch.Tensor:
    """Noisy top-k MoE balance loss (Shazeer et al. 2017): CV^2(importance) + CV^2(load).

    Each channel group is its own mixture, so the loss is computed per group and averaged.
    ``load`` is the smooth probability that an expert lands in the top k under the router
    noise; without noise (or with every expert kept) it is the hard count of selections.
    """
    importance = weights.sum(dim=0)  # (groups, experts)
    num_experts = weights.shape[-1]
    if noise_std is not None and top_k < num_experts:
        top_values = noisy_logits.topk(top_k + 1, dim=-1).values
        threshold_if_in = top_values[..., top_k : top_k + 1]
        threshold_if_out = top_values[..., top_k - 1 : top_k]
        is_in = noisy_logits > threshold_if_in
        normal = torch.distributions.Normal(0.0, 1.0)
        prob_if_in = normal.cdf((logits - threshold_if_in) / noise_std)
        prob_if_out = normal.cdf((logits - threshold_if_out) / noise_std)
        load = torch.where(is_in, prob_if_in, prob_if_out).sum(dim=0)
    else:
        load = (weights > 0).to(weights.dtype).sum(dim=0)
    return _cv_squared(importance) + _cv_squared(load)


class QuARF(nn.Module):
    r"""
    Quality-adaptive receptive-field convolution block: a router maps the image's quality
    features to weights over expert convolutions of different receptive fields (per channel
    group), and the block applies them to a feature map.

    **Three ways to give its settings**, which can be combined:

    1. *positional*, the reference implementation's signature:
       ``QuARF(in_channels, quality_dim, num_experts, top_k, num_groups, mode)``;
    2. ``config=``: a whole :class:`QuarfConfig` (or its dict form, as stored in model configs);
    3. *keywords*: any :class:`QuarfConfig` field by name (``experts=``, ``residual=``, ``router=``, ...).

    Settings are resolved as: start from ``config`` (or :class:`QuarfConfig`'s defaults), then
    every setting given positionally or as a keyword replaces that field. ``num_experts`` is not
    a config field: it sets ``experts`` to that many 3x3 experts with dilations 1, 2, 4, ...
    unless ``experts`` is given too (whose length it must then equal). An unknown keyword is a
    `TypeError`; an invalid value a `ValueError` naming it. The resolved settings are
    ``block.config``.

    Args:
        in_channels (`int`):
            Channels of the input feature map.
        quality_dim (`int`, *optional*, defaults to 4096):
            Width of the quality features (36 for BRISQUE, 4096 for CONTRIQUE).
        num_experts (`int`, *optional*, defaults to 4):
            Number of default experts (3x3, dilations 1, 2, 4, ...); see above.
        top_k (`int`, *optional*):
            Experts kept per group; `None` (the default) keeps every expert.
        num_groups (`int`, *optional*, defaults to 4):
            Channel groups, each routed separately; must divide ``in_channels`` and ``out_channels``.
        mode (`str`, *optional*, defaults to `"soft"`):
            ``"soft"`` (weighted sum of the experts) or ``"hard"`` (the expert of highest weight).
        out_channels (`int`, *optional*, keyword only, defaults to ``in_channels``):
            Channels of the output; must equal ``in_channels`` when ``residual=True``.
        config (`QuarfConfig` or `dict`, *optional*, keyword only):
            The starting settings (see above).
        **config_overrides:
            Any other :class:`QuarfConfig` field (``experts``, ``router``, ``router_hidden_dim``,
            ``router_noise``, ``residual``, ``hard_gradient``, ``bias``).

    ``forward(x, quality_features, return_routing=False)``: ``x`` (B, in_channels, H, W),
    ``quality_features`` (B, quality_dim). Returns (B, out_channels, H, W), and with
    ``return_routing=True`` also the weights actually applied, (B, groups, experts). In training
    the load-balancing loss of the call is kept in ``block.aux_loss`` (see :func:`quarf_aux_loss`).

    Example:

    ```python
    >>> import torch
    >>> from quarf_hf import QuARF, QuarfConfig
    >>> a = QuARF(16, 36, 4, 2, 4, "soft")  # 1. positional, as the reference
    >>> b = QuARF(16, config=QuarfConfig(quality_dim=36, top_k=2))  # 2. a config
    >>> c = QuARF(16, quality_dim=36, top_k=2)  # 3. keywords
    >>> a.config == b.config == c.config
    True
    >>> QuARF(16, config=b.config, residual=True).config.residual  # a keyword replaces a config field
    True
    >>> out, routing = c(torch.randn(2, 16, 8, 8), torch.randn(2, 36), return_routing=True)
    >>> out.shape, routing.shape
    (torch.Size([2, 16, 8, 8]), torch.Size([2, 4, 4]))
    ```
    """

    def __init__(
        self,
        in_channels: int,
        quality_dim: int | None = None,
        num_experts: int | None = None,
        top_k: int | None = None,
        num_groups: int | None = None,
        mode: str | None = None,
        *,
        out_channels: int | None = None,
        config: QuarfConfig | dict | None = None,
        **config_overrides,
    ):
        super().__init__()
        if isinstance(config, dict):
            config = QuarfConfig.from_dict(config)
        overrides = dict(config_overrides)
        for name, value in (("quality_dim", quality_dim), ("top_k", top_k), ("num_groups", num_groups), ("mode", mode)):
            if value is not None:
                overrides[name] = value
        if num_experts is not None:
            if "experts" in overrides and len(overrides["experts"]) != num_experts:
                raise InputError(
                    f"num_experts: expected {len(overrides['experts'])} (the length of experts), found {short_repr(num_experts)}"
                )
            check_int("num_experts", num_experts)
            overrides.setdefault("experts", _default_experts(num_experts))
        unknown = sorted(set(overrides) - {f.name for f in fields(QuarfConfig)})
        if unknown:
            raise InputTypeError(f"QuARF: unexpected keyword arguments {unknown}")
        config = replace(config or QuarfConfig(), **overrides)

        out_channels = check_block_channels(config, in_channels, out_channels)

        self.config = config
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_groups = config.num_groups
        self.num_experts = config.num_experts
        self.top_k = config.effective_top_k
        self.mode = config.mode
        self.router = NoisyTopkRouter(config)
        group_in, group_out = in_channels // config.num_groups, out_channels // config.num_groups
        self.experts = nn.ModuleList(
            nn.Conv2d(group_in, group_out, kernel_size, padding=_same_padding(kernel_size, dilation), dilation=dilation,
                      bias=config.bias)
            for kernel_size, dilation in config.experts
        )
        # LayerScale-style gate, zero at init: the block starts as the identity.
        self.residual_scale = nn.Parameter(torch.zeros(out_channels)) if config.residual else None
        self.aux_loss: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, groups={self.num_groups}, "
            f"experts={list(self.config.experts)}, top_k={self.top_k}, mode={self.mode!r}"
        )

    def _check_inputs(self, x: torch.Tensor, quality_features: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            found = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"x: expected a 4-D tensor (batch, {self.in_channels}, height, width), found {found}")
        if x.shape[1] != self.in_channels:
            raise InputError(f"x: expected {self.in_channels} channels, found shape {tuple(x.shape)}")
        if x.dtype == torch.bool or x.is_complex() or not x.is_floating_point():
            raise InputTypeError(f"x: expected a floating-point feature map, found {x.dtype}")
        if not isinstance(quality_features, torch.Tensor):
            raise InputTypeError(f"quality_features: expected a tensor, found {type(quality_features).__name__}")
        expected = (x.shape[0], self.config.quality_dim)
        if quality_features.ndim != 2 or tuple(quality_features.shape) != expected:
            raise InputError(
                f"quality_features: expected shape {expected} (batch of x, quality_dim), "
                f"found {tuple(quality_features.shape)}"
            )
        if quality_features.is_complex() or not quality_features.is_floating_point():
            raise InputTypeError(f"quality_features: expected a floating-point tensor, found {quality_features.dtype}")
        if x.shape[0] and 0 in x.shape[-2:]:
            largest = max(receptive_field(k, d) for k, d in self.config.experts)
            raise InputError(
                f"x: the QuARF block got an empty {x.shape[-2]}x{x.shape[-1]} feature map (shape {tuple(x.shape)}); "
                f"its experts see up to {largest}x{largest} pixels (the largest receptive field): give a larger image"
            )
        # A host sync: in inference always, in training on the block's first batch only (input_checks.value_checks).
        if value_checks(self) and quality_features.numel():
            if not bool(torch.isfinite(quality_features).all()):
                kinds = [kind for kind, found in (("NaN", quality_features.isnan()), ("inf", quality_features.isinf()))
                         if bool(found.any())]
                raise InputError(
                    f"quality_features: expected finite values, found {' and '.join(kinds)} (a NaN or inf quality vector "
                    f"would make the whole output NaN; check the images given to the quality extractor)"
                )

    def forward(self, x: torch.Tensor, quality_features: torch.Tensor, return_routing: bool = False):
        self._check_inputs(x, quality_features)
        if x.shape[0] == 0:  # an empty batch gives an empty output, in both modes
            self.aux_loss = None
            out = x.new_empty((0, self.out_channels, *x.shape[-2:]))
            empty_weights = quality_features.new_empty((0, self.num_groups, self.num_experts))
            return (out, empty_weights) if return_routing else out
        router_dtype = self.router.route_linear.weight.dtype
        weights, logits, noisy_logits, noise_std = self.router(quality_features.to(router_dtype))

        if self.training:
            self.aux_loss = load_balancing_loss(weights, logits, noisy_logits, noise_std, self.top_k)
        else:
            self.aux_loss = None

        if self.mode == "hard":
            choice = weights.argmax(dim=-1)
            one_hot = F.one_hot(choice, self.num_experts).to(weights.dtype)
            if self.config.hard_gradient == "gate":
                weights = one_hot * weights
            else:  # straight-through: forward value one-hot, gradient of the soft weights
                weights = one_hot + (weights - weights.detach())
            out = self._dispatch(x, choice, weights)
        else:
            tile = _cpu_inference_tile(x, self.out_channels)
            if tile is None:
                out = self._mix(x, weights)
            else:  # a few images at a time, so that every intermediate stays in the CPU's cache
                out = torch.cat([self._mix(x[start : start + tile], weights[start : start + tile])
                                 for start in range(0, x.shape[0], tile)])

        if self.residual_scale is not None:
            out = x + self.residual_scale.view(1, -1, 1, 1).to(out.dtype) * out
        return (out, weights) if return_routing else out

    def _grouped(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B * groups, C / groups, H, W), channels-last.

        Groups are folded into the batch so each expert is one convolution call for all
        groups. Channels-last is what the CPU (oneDNN) and GPU (cuDNN) kernels are fastest at
        for these narrow per-group convolutions.
        """
        batch, _, height, width = x.shape
        grouped = x.reshape(batch * self.num_groups, self.in_channels // self.num_groups, height, width)
        return self._channels_last(grouped)

    def _ungrouped(self, out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """(B * groups, C_out / groups, H, W) -> (B, C_out, H, W), in ``like``'s memory format."""
        batch = like.shape[0]
        out = out.unflatten(0, (batch, self.num_groups))
        if _is_channels_last(like):
            result = torch.empty(
                (batch, self.out_channels, *out.shape[-2:]), dtype=out.dtype, device=out.device,
                memory_format=torch.channels_last,
            )
            # result's memory is (B, H, W, C): write each group's channels into its slice.
            result.view(batch, self.num_groups, -1, *out.shape[-2:]).copy_(out)
            return result
        return out.reshape(batch, self.out_channels, *out.shape[-2:])

    def _mix(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum_e w[b, g, e] * expert_e(x[b, g]) for all groups at once."""
        grouped = self._grouped(x)
        expert_outputs = [expert(grouped) for expert in self.experts]
        out = _WeightedSum.apply(weights.reshape(-1, self.num_experts), *expert_outputs)
        return self._ungrouped(out, x)

    def _dispatch(self, x: torch.Tensor, choice: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Hard routing: each (image, group) goes through its chosen expert only."""
        batch, _, height, width = x.shape
        grouped = x.reshape(batch * self.num_groups, -1, height, width)
        flat_choice = choice.reshape(-1)
        order = flat_choice.argsort(stable=True)
        # The only host synchronisation: how many (image, group) pairs each expert gets.
        counts = torch.bincount(flat_choice, minlength=self.num_experts).tolist()
        pairs_per_expert = [(e, p) for e, p in zip(self.experts, order.split(counts)) if p.numel()]

        scale = weights.reshape(-1, self.num_experts).gather(1, flat_choice[:, None]).view(-1, 1, 1, 1)
        # Straight-through weights are exactly 1 in value: the product only matters for gradients.
        if self.config.hard_gradient == "straight_through" and not (torch.is_grad_enabled() and scale.requires_grad):
            # Fast path: write each expert's pairs straight into the output, no scaling pass.
            out = torch.empty(
                (batch, self.out_channels, height, width), dtype=x.dtype, device=x.device,
                memory_format=torch.channels_last if _is_channels_last(x) else torch.contiguous_format,
            )
            pair_view = out.view(batch, self.num_groups, -1, height, width).flatten(0, 1)
            for expert, pairs in pairs_per_expert:
                pair_view.index_copy_(0, pairs, expert(self._channels_last(grouped.index_select(0, pairs))).to(x.dtype))
            return out

        outputs = [
            expert(self._channels_last(grouped.index_select(0, pairs))) * scale.index_select(0, pairs).to(x.dtype)
            for expert, pairs in pairs_per_expert
        ]
        sorted_out = torch.cat(outputs)
        out = torch.index_copy(torch.zeros_like(sorted_out), 0, order, sorted_out)
        return self._ungrouped(out, x)

    @staticmethod
    def _channels_last(x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last)


# Soft-mode inference on a CPU runs over tiles of images of about this many bytes of output: its
# element-wise passes and layout copies are memory-bound, so a tile that stays in a CPU's cache
# beats one pass over a large batch. Training keeps one pass over the whole batch (autograd's
# per-tile overhead eats the gain), hard mode has a quarter of the work to tile, and GPUs never
# tile. benchmarks/README.md has the timings.
_CPU_TILE_BYTES = 8 * 2**20


def _cpu_inference_tile(x: torch.Tensor, out_channels: int) -> int | None:
    """Images per tile for soft-mode inference on a CPU, or None for one pass over the batch."""
    if x.device.type != "cpu" or torch.is_grad_enabled():
        return None
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():  # one graph for any batch size
        return None
    image_bytes = out_channels * x.shape[-2] * x.shape[-1] * x.element_size()
    tile = max(1, _CPU_TILE_BYTES // max(1, image_bytes))
    return tile if tile < x.shape[0] else None


class _WeightedSum(torch.autograd.Function):
    """``sum_e scales[:, e] * outputs[e]`` with one scalar per sample and expert.

    Autograd's own version (multiply, then in-place multiply-add) spends most of a training
    step's mixing time on full-size temporaries: its scale gradient is a broadcast product
    followed by a sum, and it clones for the in-place update. Here the scale gradient is one
    batched dot product per expert and the only full-size work is one scaling per expert.
    """

    @staticmethod
    def forward(ctx, scales: torch.Tensor, *outputs: torch.Tensor) -> torch.Tensor:
        columns = scales.to(outputs[0].dtype).view(*scales.shape, 1, 1, 1)  # columns[:, e]: (N, 1, 1, 1)
        total = outputs[0] * columns[:, 0]
        for index in range(1, len(outputs)):
            total.addcmul_(outputs[index], columns[:, index])  # in place: no stack of all outputs
        ctx.save_for_backward(scales, *outputs)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        scales, *outputs = ctx.saved_tensors
        grad = grad.contiguous(memory_format=_memory_format(outputs[0]))
        flat_grad = _flat(grad).unsqueeze(1)  # (N, 1, numel)
        grad_scales = None
        if ctx.needs_input_grad[0]:
            grad_scales = torch.cat(
                [torch.bmm(flat_grad, _flat(output).unsqueeze(2)).view(-1, 1) for output in outputs], dim=1
            ).to(scales.dtype)
        columns = scales.to(grad.dtype).view(*scales.shape, 1, 1, 1)
        grad_outputs = [
            grad * columns[:, index] if ctx.needs_input_grad[index + 1] else None for index in range(len(outputs))
        ]
        return (grad_scales, *grad_outputs)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if _is_channels_last(x) else torch.contiguous_format


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C * H * W) without a copy, in the tensor's memory order."""
    if _is_channels_last(x):
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
    return x.reshape(x.shape[0], -1)


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def quarf_blocks(model: nn.Module) -> list[QuARF]:
    """Every QuARF block inside ``model`` (in registration order)."""
    return [module for module in model.modules() if isinstance(module, QuARF)]


def quarf_aux_loss(model: nn.Module) -> torch.Tensor | None:
    """Sum of the load-balancing losses of every QuARF block's last training forward."""
    losses = [block.aux_loss for block in quarf_blocks(model) if block.aux_loss is not None]
    return torch.stack(losses).sum() if losses else None


def with_load_balancing(loss: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """``loss`` plus ``model.config.load_balancing_weight`` x the blocks' load-balancing loss of this
    forward (training forwards only: :func:`quarf_aux_loss` is `None` in eval mode)."""
    weight = getattr(getattr(model, "config", None), "load_balancing_weight", 0.0) or 0.0
    if not weight:
        return loss
    aux = quarf_aux_loss(model)
    return loss if aux is None else loss + weight * aux.to(loss.dtype)


def _same_padding(kernel_size: int, dilation: int) -> int | str:
    """The explicit padding that keeps the size (ONNX runtimes refuse ``auto_pad=SAME`` with dilation);
    ``"same"`` only where it is uneven (an even kernel with an odd dilation)."""
    total = dilation * (kernel_size - 1)
    return total // 2 if total % 2 == 0 else "same"


def receptive_field(kernel_size: int, dilation: int) -> int:
    """Receptive field of one expert: dilation * (kernel_size - 1) + 1 (3, 5, 9, 17 by default)."""
    return dilation * (kernel_size - 1) + 1
