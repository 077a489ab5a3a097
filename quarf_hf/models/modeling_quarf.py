"""One QuARF block as a transformers ``PreTrainedModel``: save, share and reload a block on its own.

``QuarfBlockModel`` wraps :class:`~quarf_hf.models.quarf.QuARF` (with its router) so that a
block round-trips through ``save_pretrained`` / ``from_pretrained`` / the Hub like any model,
and loads with ``trust_remote_code=True`` where quarf_hf is not installed. The block takes a
feature map and quality features; computing the quality features is the job of the network
the block sits in (see :class:`~quarf_hf.models.modeling_quarf_adapter.QuarfAdapter`).

Shipped to the Hub with the block: imports only torch, transformers and flat siblings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .checks import InputTypeError, refuse_unknown_arguments
from .configuration_quarf import QuarfBlockConfig
from .quarf import QuARF


@dataclass
class QuarfBlockOutput(ModelOutput):
    """``last_hidden_state`` (B, out_channels, H, W); ``routing_weights`` (B, groups, experts);
    ``aux_loss``: the load-balancing loss of a training forward (None in eval mode); ``hidden_states``
    (with ``output_hidden_states=True``): the output of each layer, here the one block's."""

    last_hidden_state: torch.FloatTensor | None = None
    routing_weights: torch.FloatTensor | None = None
    aux_loss: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


def init_layer(layer: nn.Linear | nn.Conv2d) -> None:
    """torch's default initialisation of one of a block's convolutions or router linears.

    Written with ``transformers.initialization`` so that ``from_pretrained`` never overwrites a
    loaded weight (those functions skip tensors that were loaded).
    """
    init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
    if layer.bias is not None:
        bound = 1 / math.sqrt(layer.weight[0].numel())
        init.uniform_(layer.bias, -bound, bound)


def init_quarf_block(block: QuARF) -> None:
    """torch's default initialisation of a block's convolutions and router, gate at zero (guarded as :func:`init_layer`)."""
    for module in block.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init_layer(module)
    if block.residual_scale is not None:
        init.zeros_(block.residual_scale)


class QuarfPreTrainedModel(PreTrainedModel):
    config_class = QuarfBlockConfig
    config: QuarfBlockConfig
    base_model_prefix = "quarf"
    main_input_name = "hidden_states"
    _can_compile_fullgraph = False  # hard mode reads per-expert counts on the host

    def _init_weights(self, module):
        """Layer by layer, not block by block: for code outside transformers, ``from_pretrained`` skips a
        module without parameters of its own (a block without the residual gate) when it initialises
        the weights a checkpoint lacks, which would leave them as uninitialised memory."""
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init_layer(module)
        elif isinstance(module, QuARF) and module.residual_scale is not None:
            init.zeros_(module.residual_scale)


class QuarfBlockModel(QuarfPreTrainedModel):
    """A single QuARF block (experts and router), loadable with ``AutoModel``.

    Args:
        config ([`QuarfBlockConfig`]): the block's channel counts and settings.

    ``forward(hidden_states, quality_features, return_dict=None, output_hidden_states=None)``:
    ``hidden_states`` (B, in_channels, H, W), ``quality_features`` (B, quality_dim) from the frozen
    quality model the block was trained with. Returns a [`QuarfBlockOutput`]; with
    ``return_dict=False`` the tuple of its fields that are not `None`. Unknown keyword arguments are
    refused.

    Example:

    ```python
    >>> import torch
    >>> from quarf_hf import QuarfBlockConfig, QuarfBlockModel
    >>> model = QuarfBlockModel(QuarfBlockConfig(in_channels=16, quality_dim=36)).eval()
    >>> out = model(torch.randn(2, 16, 8, 8), torch.randn(2, 36))
    >>> tuple(out.last_hidden_state.shape), tuple(out.routing_weights.shape)
    ((2, 16, 8, 8), (2, 4, 4))
    ```
    """

    def __init__(self, config: QuarfBlockConfig):
        super().__init__(config)
        self.quarf = QuARF(config.in_channels, out_channels=config.out_channels, config=config.quarf_config)
        self.post_init()

    @classmethod
    def from_block(cls, block: QuARF) -> "QuarfBlockModel":
        """A ``QuarfBlockModel`` holding a copy of an existing block's weights (e.g. one trained inside a network)."""
        if not isinstance(block, QuARF):
            raise InputTypeError(f"block: expected a QuARF block, found {type(block).__name__}")
        model = cls(QuarfBlockConfig.from_block(block))
        reference = next(block.parameters())
        model.to(device=reference.device, dtype=reference.dtype)
        model.quarf.load_state_dict(block.state_dict())
        return model

    def forward(
        self,
        hidden_states: torch.Tensor,
        quality_features: torch.Tensor,
        return_dict: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ):
        refuse_unknown_arguments(self, kwargs)
        out, routing = self.quarf(hidden_states, quality_features, return_routing=True)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        result = QuarfBlockOutput(
            last_hidden_state=out, routing_weights=routing, aux_loss=self.quarf.aux_loss,
            hidden_states=(out,) if output_hidden_states else None,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return result if return_dict else result.to_tuple()


__all__ = ["QuarfBlockModel", "QuarfPreTrainedModel", "QuarfBlockOutput", "init_quarf_block", "init_layer"]
