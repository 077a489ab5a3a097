"""The per-image routing summary that ``quarf-hf predict`` and ``evaluate_model`` both report."""

from __future__ import annotations

import torch

from ..models.conditioning import DEFAULT_CONDITIONING


# conditioning modes whose block mixes the experts and returns the mixture as routing weights
MIXING_MODES = ("route", "static_film")


def expert_fields(model) -> list[dict] | None:
    """Each expert of a QuARF model as ``{"kernel_size", "dilation", "receptive_field"}``, in the
    router's order; None for a model without a QuARF block in its config or whose ``conditioning``
    mixes no experts (FiLM alone, none). ``"static_film"`` mixes them (one fixed mixture, then FiLM),
    and its model returns that mixture as its routing weights."""
    if getattr(model.config, "conditioning", DEFAULT_CONDITIONING) not in MIXING_MODES:
        return None
    quarf = getattr(model.config, "quarf", None)
    if not isinstance(quarf, dict) or "experts" not in quarf:
        return None
    from ..models.quarf import receptive_field

    return [
        {"kernel_size": int(kernel), "dilation": int(dilation), "receptive_field": receptive_field(int(kernel), int(dilation))}
        for kernel, dilation in quarf["experts"]
    ]


def routing_per_image(routing_weights: torch.Tensor) -> torch.Tensor:
    """``routing_weights`` (B, groups, [pixels...,] experts) -> (B, experts) float64 on the CPU: each
    image's mean weight per expert over the groups (and the pixels, for per-pixel routers)."""
    weights = routing_weights.detach().double()
    return weights.reshape(weights.shape[0], -1, weights.shape[-1]).mean(1).cpu()


__all__ = ["expert_fields", "routing_per_image"]
