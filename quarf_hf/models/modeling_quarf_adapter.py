"""QuARF adapters: trained QuARF blocks and their quality model, shared apart from the network they sit in.

A :class:`QuarfAdapter` holds a frozen quality extractor, one or more QuARF blocks and, in its
config, where each block attaches (module names of the base network), how the base network's
pixels are normalised and which network it was made for. ``attach(model)`` puts the blocks into
a network:

* the ``forward`` of the network (or of the ``entry`` submodule where the pixels enter, such as
  SAM's ``vision_encoder``) becomes a :class:`QuarfForward` that computes the quality vector of the
  pixel input once per forward (:func:`~quarf_hf.models.conditioning.quality_vector`: un-normalised
  to [0, 1], frozen extractor, no gradient), runs the module's own forward and forgets the vector
  again, also when the forward raises;
* a hook on each named module passes its output through that module's block in the output's
  layout (:func:`apply_to_output`: a (B, C, H, W) or (B, H, W, C) map, (B, N, C) tokens after
  class/register tokens, ``(tokens, (H, W))`` or ``(tokens, H, W)``).

These are objects inside the network (:class:`QuarfExtractorHolder`, :class:`QuarfForward`,
:class:`QuarfBlockHook`), never closures, so ``copy.deepcopy``, ``pickle`` and ``torch.save(model)``
give an independent network: its own blocks, extractor and per-call state.

In an eager forward, the quality vector lives in a ``contextvars.ContextVar`` for the duration of
that forward only: nothing of one call is kept for the next, threads calling one network each see
their own image's quality, and a named module called on its own (not inside a forward of the
network) raises an error naming its block instead of reusing an earlier image's quality. The
routing of a forward is handed out per call too: ``with adapter.record_routing() as routing:``
collects the forwards of the calling thread only; ``adapter.last_routing_weights`` is the last
forward finished in the calling thread (a convenience for one-thread use).

While ``torch.compile`` / ``torch.export`` (and the ONNX exporter, which uses it) trace the
network (``torch.compiler.is_compiling()``), the quality vector is kept on a stack of the holder
instead, as TorchDynamo cannot trace context variables: the captured graph computes it and hands
it to the blocks inside one graph (no graph break), a named module traced on its own still raises,
and a compiled or exported graph is as thread-safe as any graph. Routing is not recorded
(``record_routing`` / ``last_routing_weights`` see eager forwards only), and
``disable_adapter()`` is not seen by the trace (compile or export the network without the adapter
instead: ``unload()``).

The blocks become submodules of the network (so they train, follow ``.to()`` and appear in its
``parameters()`` and ``state_dict()``); the extractor follows ``.to()`` / ``.half()`` /
``.cuda()`` too, but stays out of the network's parameters, state dict and gradients.
``unload()`` (peft's word; ``detach()`` is the same method under its older name) takes all of it
out again, and ``with adapter.disable_adapter():`` runs the network without the blocks for a while. ``save_pretrained`` / ``push_to_hub`` write the adapter
only (its weights, config, code and, with quarf_hf installed, a model card naming the base
network: ``hub/model_card.py``), a few kB to MB next to the base network's weights, like a LoRA adapter.

Shipped to the Hub with every adapter: imports only torch, transformers, huggingface_hub and
flat siblings, so ``AutoModel.from_pretrained(id, trust_remote_code=True).attach(model)`` works
where quarf_hf is not installed.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import inspect
import math
import os
import tempfile
import threading
import types
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .checks import InputError, InputTypeError, check_int, short_repr
from .conditioning import FilmLinear, apply_block, build_block, init_film_layer, init_identity, quality_vector
from .configuration_quarf_adapter import QuarfAdapterConfig
from .input_checks import value_checks_per_call
from .modeling_quarf import init_layer
from .quality import build_quality_extractor
from .quarf import QuARF
from .weights import from_pretrained_checked

PIXEL_KEYWORDS = ("pixel_values", "sample", "images", "x", "input")
# Modules whose forward runs (or whose owner iterates) their children: a block registered on
# one of them would be called as one more layer, without its quality features.
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# At most this many parameter shapes of a module are recorded (and checked when attaching).
MAX_RECORDED_SHAPES = 64


@dataclass
class QuarfAdapterOutput(ModelOutput):
    """``quality_features`` (B, feature_dim): the frozen extractor's features of the pixels."""

    quality_features: torch.FloatTensor | None = None


class QuarfExtractorHolder(nn.Module):
    """Carries a frozen quality extractor along with the network it is attached to, and runs the
    network's forwards with their quality vectors (:meth:`run`).

    ``Module.to`` / ``half`` / ``double`` / ``cuda`` reach submodules through ``_apply``, which
    this module forwards to the extractor. The extractor is not one of its submodules, so it is
    not in the network's ``parameters()`` (nor an optimizer built from them), ``state_dict()``
    or ``requires_grad_()``. The holder itself has no parameters and is never called.

    Strict ``torch.export`` (TorchDynamo) lifts only the exported module's own parameters, so it
    traces the extractor through a view of it (:func:`parameter_free_view`: the same modules and
    memory, parameters held as plain tensors), which the exported program keeps as constants. The
    view is made with the holder, again after a device move, and in an eager forward when the
    extractor's tensors were replaced from outside (``.to()`` of the adapter itself).

    The network's forward (a :class:`QuarfForward`) and the hooks (one :class:`QuarfBlockHook` per
    block) are objects inside the network, never closures: ``copy.deepcopy``, ``pickle`` and
    ``torch.save(model)`` then give a network whose hooks run its own blocks and extractor, with
    its own per-call state (the context variables are made anew for a copy).
    """

    def __init__(self, extractor: nn.Module, pixel_mean=0.0, pixel_std=1.0, pixel_argument: str | None = None,
                 network_name: str = "network"):
        super().__init__()
        object.__setattr__(self, "extractor", extractor)
        self.pixel_mean, self.pixel_std, self.pixel_argument = pixel_mean, pixel_std, pixel_argument
        self.network_name = network_name
        self._new_call_state()
        self._new_export_view()

    def _apply(self, fn, recurse=True):
        self.extractor._apply(fn)
        self._new_export_view()
        return super()._apply(fn, recurse)

    # ------------------------------------------------------------------ strict export
    _VIEW_STATE = ("_export_view", "_viewed")

    def _new_export_view(self):
        # Plain attributes, not submodules: the view stays out of the network's modules and state dict.
        object.__setattr__(self, "_export_view", parameter_free_view(self.extractor))
        object.__setattr__(self, "_viewed", _tensors(self._export_view) if self._export_view is not None else [])

    def _export_view_is_current(self) -> bool:
        """Whether the view still shares the memory of each of the extractor's parameters and buffers."""
        tensors = _tensors(self.extractor) if self._viewed else []
        return len(tensors) == len(self._viewed) and all(
            view.device == tensor.device and view.data_ptr() == tensor.data_ptr() and view.shape == tensor.shape
            for view, tensor in zip(self._viewed, tensors))

    def _traced_extractor(self) -> nn.Module:
        """The extractor a forward runs: its view under strict export, else itself."""
        # Under torch.compile the view is never looked at (no guard on it, no recompile when it is renewed).
        if torch.compiler.is_dynamo_compiling() and torch.compiler.is_exporting() and self._export_view is not None:
            return self._export_view
        return self.extractor

    # ------------------------------------------------------------------ per-call state
    _CALL_STATE = ("_call", "_recorder", "_disabled", "_last", "_captured")

    def _new_call_state(self):
        # In eager forwards: the call in progress in this thread/context (None outside one), the
        # list `record_routing` collects into, `disable_adapter`'s flag, this thread's last routing.
        self._call = contextvars.ContextVar("quarf_adapter_call", default=None)
        self._recorder = contextvars.ContextVar("quarf_adapter_recorder", default=None)
        self._disabled = contextvars.ContextVar("quarf_adapter_off", default=False)
        self._last = threading.local()
        # While compiling/exporting (TorchDynamo cannot trace context variables): the quality vectors
        # of the forwards being traced, innermost last.
        self._captured = []

    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key not in self._CALL_STATE + self._VIEW_STATE}

    def __setstate__(self, state):
        super().__setstate__(state)
        self._new_call_state()
        self._new_export_view()

    # ------------------------------------------------------------------ the network's forward
    def run(self, forward, args, kwargs, skip: int = 0):
        """One forward of the network (``forward(*args, **kwargs)``) with the quality vector of its pixel
        input (found after the first ``skip`` arguments) available to the blocks for that forward only
        (also when it raises)."""
        if torch.compiler.is_compiling():
            name, pixels = _pixel_input(args[skip:], kwargs, self.pixel_argument)
            self._captured.append(self.quality(pixels, name))
            try:
                return forward(*args, **kwargs)
            finally:
                self._captured.pop()
        if not self._export_view_is_current():
            self._new_export_view()
        call = _Call()
        token = self._call.set(call)
        finished = False
        try:
            if not self._disabled.get():
                name, pixels = _pixel_input(args[skip:], kwargs, self.pixel_argument)
                call.quality = self.quality(pixels, name)
            output = forward(*args, **kwargs)
            finished = True
            return output
        finally:
            self._call.reset(token)
            self._last.routing = call.routing
            recorded = self._recorder.get()
            if recorded is not None and finished:
                recorded.append(dict(call.routing))

    @value_checks_per_call  # checks its pixels as a module of the network: in training, on the first forward only
    def quality(self, pixel_values: torch.Tensor, name: str = "pixel_values") -> torch.Tensor:
        """Quality features (float32) of the network's normalised pixel input, without gradients."""
        return quality_vector(self._traced_extractor(), pixel_values, self.pixel_mean, self.pixel_std, name=name)

    def current_call(self, after: str):
        """(quality vector, routing dict or None) of the forward in progress; (None, None) inside
        ``disable_adapter()``; raises when the module ``after`` was called outside a forward of the network."""
        if torch.compiler.is_compiling():
            quality, routing = (self._captured[-1] if self._captured else None), None
        elif self._disabled.get():
            return None, None
        else:
            call = self._call.get()
            quality, routing = (call.quality, call.routing) if call is not None else (None, None)
        if quality is None:
            raise RuntimeError(
                f"QuARF adapter: the block after {after!r} runs only inside a forward of the "
                f"{self.network_name} it is attached to (which computes the quality of its "
                f"input); {after!r} was called on its own. Call the whole network, or detach() the adapter"
            )
        return quality, routing

    def forward(self, *args, **kwargs):
        raise RuntimeError("QuarfExtractorHolder is not a layer; QuARF adapters call the extractor from a hook")

    def extra_repr(self) -> str:
        return f"extractor={type(self.extractor).__name__}"


def parameter_free_view(module: nn.Module) -> nn.Module | None:
    """A copy of ``module`` that shares all its tensors, its parameters held as plain tensors (in ``_buffers``,
    under their names); None when ``module`` has no parameters.

    Run in place of ``module``, it computes the same; TorchDynamo treats its tensors as constants instead of
    parameters of a module outside the one being exported.
    """
    parameters = list(module.parameters())
    if not parameters:
        return None
    memo = {id(parameter): parameter.detach() for parameter in parameters}
    memo.update({id(buffer): buffer for buffer in module.buffers()})
    view = copy.deepcopy(module, memo)  # the memo hands back the shared tensors instead of copies
    for inner in view.modules():  # parameters first, as `_tensors` lists the module's (None, a missing bias, too)
        tensors = {**inner._parameters, **inner._buffers}
        inner._parameters.clear()
        inner._buffers.clear()
        inner._buffers.update(tensors)
    return view


def _tensors(module: nn.Module) -> list:
    """Every parameter and buffer of ``module``, module by module (its view lists the same, in the same order)."""
    return [tensor for inner in module.modules() for tensor in (*inner._parameters.values(), *inner._buffers.values())
            if tensor is not None]


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


class QuarfForward:
    """The network's ``forward`` while an adapter is attached (an attribute of the network): runs its own
    forward through :meth:`QuarfExtractorHolder.run`.

    Wrapping ``forward`` rather than hooking the network keeps the quality vector, the network and its
    blocks in one frame, so ``torch.compile(model)`` captures them as one graph (hooks of the compiled
    module itself run outside the graph). ``inspect.signature(model.forward)`` still gives the network's,
    and ``__code__`` is its forward's (``torch.export.export(model, ...)`` reads it).

    The holder is looked up in the network's module tree (``holder_path``, from the module) on each call
    rather than kept here: a trace then names the extractor's tensors by their place in the network, as
    ``ExportedProgram.module()`` needs to put them back.
    """

    def __init__(self, model: nn.Module, holder_path: str):
        self.model, self.holder_path = model, holder_path
        self.original = model.__dict__.get("forward")  # a forward set on the instance (e.g. by accelerate)

    @property
    def holder(self) -> QuarfExtractorHolder | None:
        """The holder, or None once unloaded while another wrapper sat on top of this one."""
        if self.holder_path is None:
            return None
        module = self.model
        for name in self.holder_path.split("."):
            module = getattr(module, name)
        return module

    @property
    def __wrapped__(self):
        return self.original if self.original is not None else types.MethodType(type(self.model).forward, self.model)

    @property
    def __code__(self):
        return inspect.unwrap(self.__wrapped__).__code__

    def __call__(self, *args, **kwargs):
        forward = self.original
        if forward is None:  # the class's forward, called unbound (TorchDynamo cannot trace making a bound method)
            forward, args = type(self.model).forward, (self.model, *args)
        holder = self.holder
        if holder is None:  # unloaded while another wrapper sat on top of this one
            return forward(*args, **kwargs)
        return holder.run(forward, args, kwargs, skip=0 if self.original is not None else 1)


class QuarfBlockHook:
    """The forward hook of a module that a block follows: passes the module's output through the block
    with the forward's quality vector (:func:`apply_to_output`, in the attachment's layout).
    A plain object (not a closure), so that a copy of the network gets a copy that runs the copy's block."""

    def __init__(self, holder: QuarfExtractorHolder, block: nn.Module, after: str, spec: dict | None = None):
        self.holder, self.block, self.after = holder, block, after
        spec = spec or {}
        self.channels = spec.get("in_channels")
        self.layout = spec.get("layout", "auto")
        self.prefix_tokens, self.grid = spec.get("prefix_tokens"), spec.get("grid")
        self.warned_frozen = False

    def __call__(self, _module, _args, output):
        quality, routings = self.holder.current_call(self.after)
        if quality is None:
            return None  # disable_adapter(): the module's own output
        if routings is not None and not self.warned_frozen:
            self._warn_if_frozen()
        try:
            mixed, routing = apply_to_output(self.block, output, quality, self.channels, self.layout,
                                             self.prefix_tokens, self.grid)
        except InputError as err:  # name the block: the user never called it directly
            raise type(err)(f"the QuARF block after {self.after!r}: {err}") from None
        if routings is not None:
            routings[self.after] = routing.detach() if routing is not None else None
        return mixed

    def _warn_if_frozen(self):
        # A training forward with gradients whose block cannot learn: peft's get_peft_model freezes
        # every parameter outside its own adapter, the inserted blocks included.
        if self.block.training and torch.is_grad_enabled() and not any(p.requires_grad for p in self.block.parameters()):
            self.warned_frozen = True
            warnings.warn(
                f"QuARF adapter: the block after {self.after!r} is frozen (requires_grad=False) in a training "
                f"forward, so it does not train; peft's get_peft_model freezes it: call "
                f"adapter.blocks.requires_grad_(True) after it",
                UserWarning,
                stacklevel=2,
            )


def _found(features, rest: tuple) -> str:
    """'found <shape>' of a module's output, for errors only (string building is not traced)."""
    shape = str(tuple(features.shape)) if isinstance(features, torch.Tensor) else type(features).__name__
    return f"found {shape}" + (f" with {len(rest)} more outputs" if rest else "")


def _int_pair(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (int, torch.SymInt)) for v in value)


def apply_to_output(block: nn.Module, output, quality: torch.Tensor, channels: int | None = None,
                    layout: str = "auto", prefix_tokens: int | None = None, grid=None):
    """Runs ``block`` on a module's output, in the output's own layout; returns (output, routing).

    The features are the output, or the first item of a tuple (the rest passes through), in one of
    these layouts (``"auto"`` reads it off the shape and the block's ``channels``):

    * ``"channels_first"``: a (B, C, H, W) map (a 4-D output whose dim 1 is C, when detected);
    * ``"channels_last"``: a (B, H, W, C) map, as SAM's patch embedding returns;
    * ``"tokens"``: (B, N, C), the grid given by the tuple (``(tokens, (H, W))`` as Swin's patch
      embeddings, ``(tokens, H, W)`` as SegFormer's), by ``grid``, or square after
      ``prefix_tokens`` leading class/register tokens (0 or 1 when None, as ViT's and DINOv2's
      embeddings), which pass through unchanged.
    """
    features, rest = (output[0], output[1:]) if isinstance(output, tuple) else (output, ())
    size = tuple(rest[0]) if rest and _int_pair(rest[0]) else (
        (rest[0], rest[1]) if len(rest) >= 2 and all(isinstance(v, (int, torch.SymInt)) for v in rest[:2]) else None)
    if layout == "auto":
        if isinstance(features, torch.Tensor) and features.ndim == 4:
            layout = "channels_first" if channels in (None, features.shape[1]) else (
                "channels_last" if features.shape[-1] == channels else None)
        elif isinstance(features, torch.Tensor) and features.ndim == 3 and channels in (None, features.shape[-1]):
            layout = "tokens"
        else:
            layout = None
        if layout is None:
            raise InputError(
                f"layout: expected the output as a (B, {channels}, H, W) or (B, H, W, {channels}) map or "
                f"(B, N, {channels}) tokens (or a tuple starting with one), {_found(features, rest)}; pass layout= or channels="
            )
    expected_ndim = 3 if layout == "tokens" else 4
    if not isinstance(features, torch.Tensor) or features.ndim != expected_ndim:
        raise InputError(f"layout: {layout!r} expects a {expected_ndim}-D tensor (or a tuple starting with one), "
                         f"{_found(features, rest)}")
    if layout == "channels_first":
        mixed, routing = apply_block(block, features, quality)
    elif layout == "channels_last":
        mixed, routing = apply_block(block, features.permute(0, 3, 1, 2), quality)
        mixed = mixed.permute(0, 2, 3, 1)
    else:
        prefix, (height, width) = token_grid(features, rest, prefix_tokens, grid or size)
        mixed, routing = apply_block(block, features[:, prefix:], quality, (height, width))
        if prefix:
            mixed = torch.cat([features[:, :prefix], mixed], dim=1)
    return ((mixed, *rest) if isinstance(output, tuple) else mixed), routing


def token_grid(features: torch.Tensor, rest: tuple, prefix_tokens: int | None, grid):
    """(leading tokens, (H, W)) of tokens (B, N, C): ``grid`` if given, else the square left after
    ``prefix_tokens`` (0 or 1 when None) leading tokens."""
    count = features.shape[1]
    if grid is not None:
        height, width = grid
        prefix = count - height * width if prefix_tokens is None else prefix_tokens
        if prefix < 0 or count - prefix != height * width:
            raise InputError(f"grid: {height}x{width} tokens after {prefix} leading ones do not fit {count} tokens, "
                             f"{_found(features, rest)}")
        return prefix, (height, width)
    for prefix in ((0, 1) if prefix_tokens is None else (prefix_tokens,)):
        side = math.isqrt(max(count - prefix, 0))
        if side > 0 and side * side == count - prefix:
            return prefix, (side, side)
    tried = "0 or 1" if prefix_tokens is None else str(prefix_tokens)
    raise InputError(f"grid: {count} tokens are no square grid after {tried} leading tokens, {_found(features, rest)}; "
                     f"pass grid=(height, width) or prefix_tokens=")


@dataclass
class _Call:
    """One eager forward of the network: its quality vector and the routing weights its blocks used."""

    quality: torch.Tensor | None = None
    routing: dict = field(default_factory=dict)
    token: contextvars.Token | None = None


@dataclass
class _Attachment:
    """What ``attach`` changed in a network, so that ``detach`` can undo exactly that, and the holder
    that runs the network's forward and keeps the per-call state."""

    model: nn.Module
    holder: QuarfExtractorHolder
    hosted: list = field(default_factory=list)  # (host module, attribute name)
    handles: list = field(default_factory=list)
    forward: "QuarfForward | None" = None  # the entry module's forward while attached
    entry: nn.Module | None = None  # the module whose forward computes the quality (the network by default)


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


def resolve_after(model: nn.Module, after) -> list[str]:
    r"""The module names ``after`` selects in ``model``, as peft's ``target_modules`` does.

    * a string: that exact module name; else a regular expression matched against every module's
      full name (``re.fullmatch``), e.g. ``r"encoder\.block\.\d+\.conv"``;
    * a list: each entry an exact module name, or a suffix of names (``"conv1"`` selects every
      ``*.conv1``), in the order of the model's modules.
    """
    import re

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


def _pixel_input(args, kwargs, pixel_argument):
    """(the argument's name, the pixel tensor) of a call of the network."""
    if pixel_argument is not None:
        if isinstance(kwargs.get(pixel_argument), torch.Tensor):
            return pixel_argument, kwargs[pixel_argument]
        if args and isinstance(args[0], torch.Tensor):
            return pixel_argument, args[0]
        raise InputError(f"pixel_argument: the model was called without {pixel_argument!r}")
    for key in PIXEL_KEYWORDS:
        if isinstance(kwargs.get(key), torch.Tensor):
            return key, kwargs[key]
    if args and isinstance(args[0], torch.Tensor):
        return "the pixel input (first argument)", args[0]
    raise InputError("insert_quarf: could not find the model's pixel input; pass pixel_argument=")


class QuarfAdapterPreTrainedModel(PreTrainedModel):
    config_class = QuarfAdapterConfig
    config: QuarfAdapterConfig
    base_model_prefix = "quarf_adapter"
    main_input_name = "pixel_values"
    _can_compile_fullgraph = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``; a damaged file is one line naming it, missing QuARF weights a
        warning (see :mod:`.weights`)."""
        return from_pretrained_checked(super().from_pretrained, pretrained_model_name_or_path, *args, **kwargs)

    def _init_weights(self, module):
        """The blocks, layer by layer (as the block model's rule): for code outside transformers,
        ``from_pretrained`` and ``init_weights`` skip a module without parameters of its own (a QuARF
        block without the residual gate), so a rule keyed on the block would leave the weights a
        checkpoint lacks as uninitialised memory. The extractor is left alone: a CONTRIQUE model
        follows its own rule, and an extractor given to the adapter is marked initialised."""
        if isinstance(module, FilmLinear):
            init_film_layer(module)
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            init_layer(module)
        else:
            init_identity(module)  # QuARF's residual gate at zero


class QuarfAdapter(QuarfAdapterPreTrainedModel):
    """QuARF blocks and their frozen quality extractor, to attach to a base network.

    Args:
        config ([`QuarfAdapterConfig`]): the quality extractor, the blocks and where they attach.
        quality_extractor (`nn.Module`, *optional*): an extractor with the config's architecture
            to use as it is (its weights are kept); by default one is built from ``config.quality``.

    Made by :func:`quarf_hf.insert_quarf` (which also attaches it), by
    :meth:`QuarfAdapter.for_model`, by ``QuarfSegformerForSemanticSegmentation.to_adapter()``,
    or loaded with ``from_pretrained``. ``forward(pixel_values)`` returns the quality features of
    the base network's (normalised) pixel input; the blocks run inside the base network.

    Example:

    ```python
    >>> import torch
    >>> from quarf_hf import QuarfAdapter
    >>> cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 3, 1))
    >>> adapter = QuarfAdapter.for_model(cnn, after="0", quality="brisque").attach(cnn)
    >>> cnn(torch.rand(1, 3, 32, 32)).shape        # the block runs after cnn[0]
    torch.Size([1, 3, 32, 32])
    >>> model = adapter.unload()                     # cnn is exactly as before
    ```
    """

    def __init__(self, config: QuarfAdapterConfig, quality_extractor: nn.Module | None = None):
        super().__init__(config)
        if quality_extractor is not None:  # it comes with its weights: transformers' initialisation skips it
            for module in quality_extractor.modules():
                module._is_hf_initialized = True
        self.quality_extractor = (
            quality_extractor if quality_extractor is not None else build_quality_extractor(config.quality)
        )
        self.blocks = nn.ModuleList(
            build_block(config.conditioning, a["in_channels"], a["quarf"], out_channels=a["out_channels"])
            for a in config.attachments
        )
        self._attachment: _Attachment | None = None
        self.post_init()

    # ------------------------------------------------------------------ making one
    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        after,
        quality="brisque",
        *,
        channels=None,
        pixel_mean=0.0,
        pixel_std=1.0,
        pixel_argument: str | None = None,
        base_model: str | None = None,
        layout: str = "auto",
        prefix_tokens: int | None = None,
        grid=None,
        entry: str | None = None,
        **block_kwargs,
    ) -> "QuarfAdapter":
        """A new (untrained) adapter for ``model``, with a block after each module named in ``after``.

        Args:
            model (`nn.Module`): the base network (not changed here; see :meth:`attach`).
            after (`str` or `list[str]`): the modules whose output (a (B, C, H, W) or (B, H, W, C) map,
                (B, N, C) tokens, or a tuple starting with one; see :func:`apply_to_output`) each block transforms, selected as
                peft's ``target_modules``: a dotted name or a regular expression (full match), or a
                list of names and name suffixes (see :func:`resolve_after`).
            quality: the extractor: ``"brisque"``, ``"contrique"``, a converted CONTRIQUE folder or
                Hub id, a spec dict, or a BRISQUE/CONTRIQUE extractor module.
            channels (`int`, `list[int]` or `dict[str, int]`, *optional*): the modules' output
                channels, where they cannot be inferred (:func:`infer_channels`).
            pixel_mean, pixel_std: the base network's input normalisation
                (``pixels_01 = input * std + mean``): 0/1 for [0, 1] input, 0.5/0.5 for [-1, 1]
                (diffusers), the image processor's mean/std for transformers vision models.
            pixel_argument (`str`, *optional*): the keyword carrying the pixels.
            base_model (`str`, *optional*): Hub id or path of the base network, for the model
                card; read from ``model.name_or_path`` / ``model.config._name_or_path`` when unset.
            layout (`str`, *optional*, defaults to `"auto"`): the modules' output layout,
                ``"channels_first"``, ``"channels_last"`` or ``"tokens"``; read off the output when ``"auto"``.
            prefix_tokens (`int`, *optional*): leading class/register tokens of a token output (0 or 1 when unset).
            grid (`tuple[int, int]`, *optional*): (H, W) of a token output, when neither the output
                gives it nor the tokens form a square.
            entry (`str`, *optional*): the submodule that takes the pixels (``"vision_encoder"`` of a
                ``SamModel``, so ``get_image_embeddings`` works); the network itself when unset.
            block_kwargs: QuARF settings for every block; ``residual`` defaults to True (the
                network's outputs are unchanged until the blocks are trained).
        """
        from .quality import resolve_quality

        if not isinstance(model, nn.Module):
            raise InputTypeError(f"model: expected a torch.nn.Module, found {type(model).__name__}")
        names = resolve_after(model, after)
        check_entry(model, entry, names)
        if isinstance(channels, (list, tuple)):
            if len(channels) != len(names):
                raise InputError(f"channels: expected {len(names)} values (one per module in after), found {list(channels)}")
            channels = dict(zip(names, channels))
        attachments = []
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
            attachments.append({"after": name, "in_channels": count, "parameter_shapes": parameter_shapes(target),
                                "layout": layout, "prefix_tokens": prefix_tokens, "grid": grid})

        extractor, spec = resolve_quality(quality)
        block_kwargs.setdefault("residual", True)
        block_kwargs.setdefault("quality_dim", extractor.feature_dim)
        for attachment in attachments:  # QuARF's own argument handling, then its settings as a dict
            probe = QuARF(attachment["in_channels"], **block_kwargs)
            attachment.update(out_channels=probe.out_channels, quarf=probe.config.to_dict())
        if base_model is None:
            base_model = getattr(model, "name_or_path", None) or getattr(getattr(model, "config", None), "_name_or_path", None)
        config = QuarfAdapterConfig(
            quality=spec, attachments=attachments, pixel_mean=pixel_mean, pixel_std=pixel_std,
            pixel_argument=pixel_argument, base_model=str(base_model) if base_model else None,
            base_model_class=f"{type(model).__module__}.{type(model).__qualname__}", entry=entry,
        )
        return cls(config, quality_extractor=extractor)

    # ------------------------------------------------------------------ attaching
    @property
    def attached_to(self) -> nn.Module | None:
        """The network the adapter is attached to, or None."""
        return self._attachment.model if self._attachment is not None else None

    @property
    def block(self) -> QuARF:
        """The first block (the only one for a single-module adapter)."""
        return self.blocks[0]

    def block_model(self, index: int = 0):
        """Block ``index`` on its own, as a :class:`~quarf_hf.models.modeling_quarf.QuarfBlockModel` (a copy)."""
        from .modeling_quarf import QuarfBlockModel

        check_int("index", index, 0, len(self.blocks) - 1)
        return QuarfBlockModel.from_block(self.blocks[index])

    def check_compatible(self, model: nn.Module) -> None:
        """Raises a ValueError naming the problem if the blocks cannot go into ``model``; warns if only
        the network's class name differs from the one the adapter was made for. Changes nothing."""
        if not isinstance(model, nn.Module):
            raise InputTypeError(f"model: expected a torch.nn.Module, found {type(model).__name__}")
        if not self.config.attachments:
            raise InputError("adapter: its config lists no attachments (no QuARF blocks to attach)")
        if self._attachment is not None:
            raise InputError(
                f"model: this adapter is already attached to a {type(self._attachment.model).__name__}; detach() it first"
            )
        recorded = self.config.base_model_class
        found_class = type(model).__name__
        mismatch_note = ""
        if recorded and recorded.rsplit(".", 1)[-1] != found_class:
            mismatch_note = f" (the adapter was made for a {recorded.rsplit('.', 1)[-1]}, this is a {found_class})"
        for attachment in self.config.attachments:
            name = attachment["after"]
            try:
                target = model.get_submodule(name)
            except AttributeError:
                raise InputError(
                    f"model: {found_class} has no module {name!r}, which the adapter attaches a QuARF block after{mismatch_note}"
                ) from None
            channels = find_channels(target)
            if channels is not None and channels != attachment["in_channels"]:
                raise InputError(
                    f"model: {name!r} outputs {channels} channels, the adapter's block takes {attachment['in_channels']}{mismatch_note}"
                )
            found_shapes = dict(target.named_parameters())
            for parameter, shape in attachment["parameter_shapes"].items():
                found = list(found_shapes[parameter].shape) if parameter in found_shapes else None
                if found != shape:
                    raise InputError(
                        f"model: {name}.{parameter} has shape {found}, the adapter was made for {shape}{mismatch_note}"
                    )
            if hasattr(host_module(model, name), attribute_name(name)):
                raise InputError(f"model: a QuARF block is already inserted after {name!r}")
        check_entry(model, self.config.entry, [a["after"] for a in self.config.attachments])
        if mismatch_note:
            warnings.warn(
                f"model: the adapter was made for a {recorded}, attaching it to a {type(model).__module__}.{found_class} "
                f"whose modules have the recorded names and shapes",
                UserWarning,
                stacklevel=3,
            )

    def attach(self, model: nn.Module) -> "QuarfAdapter":
        """Puts the blocks into ``model`` after their modules; returns the adapter.

        Every check runs first (:meth:`check_compatible`); nothing is changed when one fails. The
        blocks move to the network's device and dtype, the extractor to its device.
        """
        self.check_compatible(model)
        reference = next(model.parameters(), None)
        if reference is not None:
            self.blocks.to(device=reference.device, dtype=reference.dtype)
            self.quality_extractor.to(device=reference.device)
        # The extractor and the hooks' state: once, inside the entry module, next to the first block where
        # that is inside it too (`quarf_<name>_quality`), so that the entry's forward finds it in its own tree.
        first = self.config.attachments[0]["after"]
        entry = check_entry(model, self.config.entry, [])
        holder = QuarfExtractorHolder(self.quality_extractor, self.config.pixel_mean, self.config.pixel_std,
                                      self.config.pixel_argument, type(entry).__name__)
        attachment = _Attachment(model=model, holder=holder, entry=entry)
        inside_entry = first[len(self.config.entry) + 1:] if self.config.entry else first
        holder_host = host_module(entry, inside_entry)
        holder_host.add_module(attribute_name(first) + "_quality", holder)
        holder.train(holder_host.training)  # the network's mode: its value checks follow the network's forwards
        attachment.hosted.append((holder_host, attribute_name(first) + "_quality"))
        for block, spec in zip(self.blocks, self.config.attachments):
            host = host_module(model, spec["after"])
            host.add_module(attribute_name(spec["after"]), block)
            block.train(host.training)  # the network's mode, as if the block had always been in it
            attachment.hosted.append((host, attribute_name(spec["after"])))
            target = model.get_submodule(spec["after"])
            attachment.handles.append(target.register_forward_hook(QuarfBlockHook(holder, block, spec["after"], spec)))
        holder_path = next(name for name, module in entry.named_modules() if module is holder)
        attachment.forward = entry.forward = QuarfForward(entry, holder_path)
        self._attachment = attachment
        return self

    def unload(self) -> nn.Module:
        """Takes the blocks, the extractor and the hooks out of the network; returns it, as it was
        (peft's ``unload``). Nothing is merged into the base weights: a QuARF block's output depends
        on each input's quality, so no fixed change of the base weights equals it."""
        if self._attachment is None:
            raise InputError("adapter: not attached to any model")
        attachment, self._attachment = self._attachment, None
        for handle in attachment.handles:
            handle.remove()
        entry, wrapper = attachment.entry or attachment.model, attachment.forward
        if entry.__dict__.get("forward") is wrapper:
            if wrapper.original is None:
                del entry.forward
            else:
                entry.forward = wrapper.original
        else:  # another wrapper of forward sits on top of ours (set after attaching): ours passes calls through
            wrapper.holder_path = None
        for host, name in attachment.hosted:
            delattr(host, name)
        return attachment.model

    # The name the adapter used before it followed peft: the same operation as `unload`.
    detach = unload

    @contextlib.contextmanager
    def disable_adapter(self):
        """Within ``with adapter.disable_adapter():`` the attached network runs without its blocks (and
        without computing quality), as peft's ``disable_adapter``; per thread. The blocks stay in place."""
        if self._attachment is None:
            raise InputError("adapter: not attached to any model; attach(model) first")
        disabled = self._attachment.holder._disabled
        token = disabled.set(True)
        try:
            yield self._attachment.model
        finally:
            disabled.reset(token)

    @property
    def last_routing_weights(self) -> dict:
        """``{module name: (B, groups, experts)}`` routing weights (detached) of the last forward of the
        network that finished in the calling thread; ``{}`` before one, or when detached. Per thread:
        another thread's forwards never show here."""
        if self._attachment is None:
            return {}
        return dict(getattr(self._attachment.holder._last, "routing", {}))

    @contextlib.contextmanager
    def record_routing(self):
        """Collects the routing of every forward of the network that finishes inside the ``with`` block
        in the calling thread (or asyncio task): yields a list that gains one ``{module name: (B, groups,
        experts)}`` dict (detached) per forward, in order. Forwards in other threads never show in it, so
        a server calling one network from many threads gets each request's own routing.

        Example:

        ```python
        >>> with adapter.record_routing() as routing:
        ...     output = model(pixel_values)
        >>> routing[0]["stem"].shape  # (batch, groups, experts)
        ```
        """
        if self._attachment is None:
            raise InputError("adapter: not attached to any model; attach() it before recording its routing")
        recorded: list = []
        recorder = self._attachment.holder._recorder
        token = recorder.set(recorded)
        try:
            yield recorded
        finally:
            recorder.reset(token)

    # ------------------------------------------------------------------ quality
    def compute_quality_features(self, pixel_values: torch.Tensor, name: str = "pixel_values") -> torch.Tensor:
        """Quality features (float32) of the base network's normalised pixel input, without gradients."""
        return quality_vector(self.quality_extractor, pixel_values, self.config.pixel_mean, self.config.pixel_std,
                              name=name)

    @value_checks_per_call
    def forward(self, pixel_values: torch.Tensor, return_dict: bool | None = None, **kwargs):
        quality_features = self.compute_quality_features(pixel_values)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output = QuarfAdapterOutput(quality_features=quality_features)
        return output if return_dict else output.to_tuple()

    # ------------------------------------------------------------------ sharing
    # Writes README.md into a saved adapter folder: ``writer(folder, adapter, repo_id)``. quarf_hf sets
    # it to ``hub.model_card.write_adapter_card`` (the one card writer) when imported; models/ may not
    # import the tooling, so an adapter loaded as remote code without quarf_hf saves no card.
    model_card_writer = None

    def save_pretrained(self, save_directory, *args, push_to_hub: bool = False, **kwargs):
        """``PreTrainedModel.save_pretrained`` (adapter weights, config, code) plus a model card (README.md)
        when quarf_hf is installed (see ``model_card_writer``)."""
        repo_id = kwargs.pop("repo_id", None)
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True) and type(self).model_card_writer is not None:
            type(self).model_card_writer(save_directory, self, repo_id)
        if push_to_hub:
            self.push_to_hub(repo_id or os.path.basename(os.path.normpath(save_directory)))

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    commit_message: str = "Upload QuARF adapter", revision: str | None = None,
                    create_pr: bool = False, **kwargs):
        """Creates ``repo_id`` if needed and uploads the adapter folder, model card included.

        (transformers' own ``push_to_hub`` would replace the card with a generic one.)
        """
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        created = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        repo_id = getattr(created, "repo_id", repo_id)
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, repo_id=repo_id)
            return api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="model",
                                     commit_message=commit_message, revision=revision, create_pr=create_pr)


__all__ = ["QuarfAdapter", "QuarfAdapterPreTrainedModel", "QuarfAdapterOutput", "QuarfBlockHook", "QuarfExtractorHolder"]
