"""What runs inside a network while an adapter is attached, and the state of each call.

* The ``forward`` of the network (or of the ``entry`` submodule where the pixels enter, such as SAM's
  ``vision_encoder``) becomes a :class:`QuarfForward` that computes the quality vector of the pixel input
  once per forward (:func:`~quarf_hf.models.conditioning.quality_vector`: un-normalised to [0, 1], frozen
  extractor, no gradient), runs the module's own forward and forgets the vector again, also when the
  forward raises.
* A hook on each named module (:class:`QuarfBlockHook`) passes its output through that module's block in
  the output's layout (:func:`~.adapter_layouts.apply_to_output`).
* A :class:`QuarfExtractorHolder` inside the network carries the extractor and the per-call state.

These are objects inside the network, never closures, so ``copy.deepcopy``, ``pickle`` and
``torch.save(model)`` give an independent network: its own blocks, extractor and per-call state.

In an eager forward, the quality vector lives in a ``contextvars.ContextVar`` for the duration of that
forward only: nothing of one call is kept for the next, threads calling one network each see their own
image's quality, and a named module called on its own (not inside a forward of the network) raises an
error naming its block instead of reusing an earlier image's quality. The routing of a forward is handed
out per call too (:meth:`QuarfExtractorHolder.recording`, :attr:`QuarfExtractorHolder.last_routing`).

While ``torch.compile`` / ``torch.export`` (and the ONNX exporter, which uses it) trace the network
(``torch.compiler.is_compiling()``), the quality vector is kept on a stack of the holder instead, as
TorchDynamo cannot trace context variables: the captured graph computes it and hands it to the blocks
inside one graph (no graph break), a named module traced on its own still raises, and a compiled or
exported graph is as thread-safe as any graph. Routing is not recorded and ``disable_adapter()`` is not
seen by the trace (they act on eager forwards).

Shipped to the Hub with every adapter (see :mod:`.modeling_quarf_adapter`).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import inspect
import threading
import types
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from .adapter_layouts import apply_to_output
from .checks import InputError
from .conditioning import quality_vector
from .input_checks import value_checks_per_call

# The keywords a network's forward may carry its pixels under, tried in this order.
PIXEL_KEYWORDS = ("pixel_values", "sample", "images", "x", "input")


@dataclass
class _Call:
    """One eager forward of the network: its quality vector and the routing weights its blocks used."""

    quality: torch.Tensor | None = None
    routing: dict = field(default_factory=dict)


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
                f"input); {after!r} was called on its own. Call the whole network, or unload() the adapter"
            )
        return quality, routing

    # ------------------------------------------------------------------ what the adapter's verbs change
    @contextlib.contextmanager
    def disabled(self):
        """Within it, the network's forwards in the calling thread run without the blocks (and without
        computing quality): ``disable_adapter()``."""
        token = self._disabled.set(True)
        try:
            yield
        finally:
            self._disabled.reset(token)

    @contextlib.contextmanager
    def recording(self):
        """Yields a list that gains one ``{module name: routing}`` dict per forward of the network that finishes
        within it in the calling thread: ``record_routing()``."""
        recorded: list = []
        token = self._recorder.set(recorded)
        try:
            yield recorded
        finally:
            self._recorder.reset(token)

    @property
    def last_routing(self) -> dict:
        """``{module name: routing}`` of the last forward of the network that finished in the calling thread."""
        return dict(getattr(self._last, "routing", {}))

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
