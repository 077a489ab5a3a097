"""Where an adapter's blocks go in a network: the module names ``after`` selects, the module whose forward
takes the pixels (``entry``), their output channels, the module that holds each block, and the config
entry of each attachment.

Shipped to the Hub with every adapter (see :mod:`.modeling_quarf_adapter`).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from .checks import InputError, short_repr

# Modules whose forward runs (or whose owner iterates) their children: a block registered on
# one of them would be called as one more layer, without its quality features.
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# At most this many parameter shapes of a module are recorded (and checked when attaching).
MAX_RECORDED_SHAPES = 64


def resolve_after(model: nn.Module, after) -> list[str]:
    r"""The module names ``after`` selects in ``model``, as peft's ``target_modules`` does.

    * a string: that exact module name; else a regular expression matched against every module's
      full name (``re.fullmatch``), e.g. ``r"encoder\.block\.\d+\.conv"``;
    * a list: each entry an exact module name, or a suffix of names (``"conv1"`` selects every
      ``*.conv1``), in the order of the model's modules.
    """
    names = [name for name, _ in model.named_modules() if name]
    if isinstance(after, str) and after:
        if after in names:
            return [after]
        try:
            pattern = re.compile(after)
        except re.error as err:
            raise InputError(f"after: {after!r} is neither a module name of {type(model).__name__} nor a "
                             f"regular expression ({err})") from None
        found = [name for name in names if pattern.fullmatch(name)]
    elif isinstance(after, (list, tuple)) and after and all(isinstance(n, str) and n for n in after):
        found = []
        for entry in after:
            matches = [entry] if entry in names else [name for name in names if name.endswith("." + entry)]
            found += [name for name in matches if name not in found]
    else:
        raise InputError(f"after: expected a module name, a regular expression or a non-empty list of names "
                         f"or suffixes, found {short_repr(after)}")
    if not found:
        raise InputError(f"after: {after!r} is not a submodule of {type(model).__name__}, and matches none "
                         f"as a regular expression or name suffix")
    return found


def check_entry(model: nn.Module, entry: str | None, names) -> nn.Module:
    """The module whose forward computes the quality (``entry``, or the network); every module in
    ``names`` must be inside it."""
    if entry is None:
        return model
    if not isinstance(entry, str) or not entry:
        raise InputError(f"entry: expected a submodule name or None, found {entry!r}")
    try:
        module = model.get_submodule(entry)
    except AttributeError:
        raise InputError(f"entry: {type(model).__name__} has no submodule {entry!r}") from None
    outside = [name for name in names if not name.startswith(entry + ".")]
    if outside:
        raise InputError(f"entry: the blocks' modules must be inside {entry!r} (where the quality is computed), "
                         f"found {outside}")
    return module


def target_channels(model: nn.Module, after, channels=None, entry: str | None = None) -> dict[str, int]:
    """``{module name: output channels}`` of the modules ``after`` selects in ``model`` (:func:`resolve_after`),
    inside ``entry`` (:func:`check_entry`) and without a block yet; ``channels`` (an int, or a list or dict
    with one per name) gives those that cannot be inferred (:func:`infer_channels`)."""
    names = resolve_after(model, after)
    check_entry(model, entry, names)
    if isinstance(channels, (list, tuple)):
        if len(channels) != len(names):
            raise InputError(f"channels: expected {len(names)} values (one per module in after), found {list(channels)}")
        channels = dict(zip(names, channels))
    found = {}
    for name in names:
        try:
            target = model.get_submodule(name)
        except AttributeError as err:
            raise InputError(f"after: {name!r} is not a submodule of {type(model).__name__}") from err
        if hasattr(host_module(model, name), attribute_name(name)):
            raise InputError(f"after: a QuARF block is already inserted after {name!r}")
        count = channels.get(name) if isinstance(channels, dict) else channels
        count = count if count is not None else infer_channels(target)
        if count is None:
            raise InputError(
                f"channels: could not infer the output channels of {name!r} ({type(target).__name__}); pass channels="
            )
        found[name] = count
    return found


def find_channels(module: nn.Module) -> int | None:
    """The output channels a module declares (``out_channels``, ``num_features``, ``hidden_size``), or None."""
    for attribute in ("out_channels", "num_features", "hidden_size"):
        value = getattr(module, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def infer_channels(module: nn.Module) -> int | None:
    """The output channels of a module: those it declares (:func:`find_channels`); for an embedding
    module (its class name has ``Embedding``: those of SAM, ViT, DINOv2, Swin, ConvNeXt, SegFormer),
    the first dim of the ``weight`` of its last layer that has one (the projection or the norm that
    ends it); else None."""
    declared = find_channels(module)
    if declared is not None or "Embedding" not in type(module).__name__:
        return declared
    last = None
    for inner in module.modules():
        weight = inner._parameters.get("weight")
        if isinstance(weight, torch.Tensor) and weight.ndim >= 1:
            last = int(weight.shape[0])
    return last


def parameter_shapes(module: nn.Module) -> dict:
    """``{name: shape}`` of a module's parameters (the first ``MAX_RECORDED_SHAPES``)."""
    shapes = {}
    for name, parameter in module.named_parameters():
        if len(shapes) == MAX_RECORDED_SHAPES:
            break
        shapes[name] = list(parameter.shape)
    return shapes


def attribute_name(after: str) -> str:
    """The attribute a block is registered under: ``quarf_`` + the module name, dots as underscores."""
    return "quarf_" + after.replace(".", "_")


def host_module(model: nn.Module, after: str) -> nn.Module:
    """The module that holds the block attached after ``after``: the network itself, unless it is
    a container (``nn.Sequential`` would call the block as one more layer); then the first
    non-container module on the way to ``after``, or inside it."""
    if not isinstance(model, CONTAINERS):
        return model
    module = model
    for part in after.split("."):
        module = module.get_submodule(part)
        if not isinstance(module, CONTAINERS):
            return module
    for inner in module.modules():
        if not isinstance(inner, CONTAINERS):
            return inner
    raise InputError(f"after: {after!r} holds only containers (nn.Sequential/ModuleList/ModuleDict); name a layer inside it")


def attachment_entry(model: nn.Module, after: str, in_channels: int, out_channels: int, quarf: dict,
                     layout: str = "auto", prefix_tokens: int | None = None, grid=None) -> dict:
    """One entry of ``QuarfAdapterConfig.attachments``: a block with the settings ``quarf`` (a dict) after the
    module ``after`` of ``model``, whose parameter shapes are recorded so that attaching can check them."""
    return {"after": after, "in_channels": in_channels, "out_channels": out_channels, "quarf": quarf,
            "parameter_shapes": parameter_shapes(model.get_submodule(after)), "layout": layout,
            "prefix_tokens": prefix_tokens, "grid": grid}
