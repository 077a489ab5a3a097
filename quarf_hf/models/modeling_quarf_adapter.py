"""QuARF adapters: trained QuARF blocks and their quality model, shared apart from the network they sit in.

A :class:`QuarfAdapter` holds a frozen quality extractor, one or more QuARF blocks and, in its
config, where each block attaches (module names of the base network), how the base network's
pixels are normalised and which network it was made for. Its jobs are split over sibling files:

* ``adapter_targets.py``: where the blocks go (the module names ``after`` selects, ``entry``, the
  channels, the module that holds each block, each attachment's config entry);
* ``adapter_calls.py``: what runs inside the network while attached (its wrapped ``forward``, a hook
  per block, the per-call quality vector and routing), and ``adapter_layouts.py``: the layouts of
  the modules' outputs;
* ``adapter_sharing.py``: ``save_pretrained`` / ``push_to_hub`` of the adapter alone, with its card;
* this file: the model, and the verbs that change a network (``attach``, ``unload``,
  ``disable_adapter``, ``record_routing``).

The blocks become submodules of the network (so they train, follow ``.to()`` and appear in its
``parameters()`` and ``state_dict()``); the extractor follows ``.to()`` / ``.half()`` /
``.cuda()`` too, but stays out of the network's parameters, state dict and gradients.
``unload()`` (peft's word) takes all of it out again, and ``with adapter.disable_adapter():`` runs
the network without the blocks for a while.

Shipped to the Hub with every adapter: imports only torch, transformers, huggingface_hub and
flat siblings, so ``AutoModel.from_pretrained(id, trust_remote_code=True).attach(model)`` works
where quarf_hf is not installed.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .adapter_calls import QuarfBlockHook, QuarfExtractorHolder, QuarfForward
from .adapter_sharing import AdapterSharingMixin
from .adapter_targets import attachment_entry, attribute_name, check_entry, find_channels, host_module, target_channels
from .checks import InputError, InputTypeError, check_int
from .conditioning import FilmLinear, build_block, init_film_layer, init_identity, quality_vector
from .configuration_quarf_adapter import QuarfAdapterConfig
from .input_checks import value_checks_per_call
from .modeling_quarf import init_layer
from .quality import build_quality_extractor
from .quarf import QuARF
from .weights import from_pretrained_checked


@dataclass
class QuarfAdapterOutput(ModelOutput):
    """``quality_features`` (B, feature_dim): the frozen extractor's features of the pixels."""

    quality_features: torch.FloatTensor | None = None


@dataclass
class _Attachment:
    """What ``attach`` changed in a network, so that ``unload`` can undo exactly that, and the holder
    that runs the network's forward and keeps the per-call state."""

    model: nn.Module
    holder: QuarfExtractorHolder
    hosted: list = field(default_factory=list)  # (host module, attribute name)
    handles: list = field(default_factory=list)
    forward: "QuarfForward | None" = None  # the entry module's forward while attached
    entry: nn.Module | None = None  # the module whose forward computes the quality (the network by default)


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


class QuarfAdapter(AdapterSharingMixin, QuarfAdapterPreTrainedModel):
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
                (B, N, C) tokens, or a tuple starting with one; see :func:`~.adapter_layouts.apply_to_output`) each block transforms, selected as
                peft's ``target_modules``: a dotted name or a regular expression (full match), or a
                list of names and name suffixes (see :func:`~.adapter_targets.resolve_after`).
            quality: the extractor: ``"brisque"``, ``"contrique"``, a converted CONTRIQUE folder or
                Hub id, a spec dict, or a BRISQUE/CONTRIQUE extractor module.
            channels (`int`, `list[int]` or `dict[str, int]`, *optional*): the modules' output
                channels, where they cannot be inferred (:func:`~.adapter_targets.infer_channels`).
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
        channels = target_channels(model, after, channels, entry)
        extractor, spec = resolve_quality(quality)
        block_kwargs.setdefault("residual", True)
        block_kwargs.setdefault("quality_dim", extractor.feature_dim)
        attachments = []
        for name, count in channels.items():
            probe = QuARF(count, **block_kwargs)  # QuARF's own argument handling, then its settings as a dict
            attachments.append(attachment_entry(model, name, count, probe.out_channels, probe.config.to_dict(),
                                                layout, prefix_tokens, grid))
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
                f"model: this adapter is already attached to a {type(self._attachment.model).__name__}; unload() it first"
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

    @contextlib.contextmanager
    def disable_adapter(self):
        """Within ``with adapter.disable_adapter():`` the attached network runs without its blocks (and
        without computing quality), as peft's ``disable_adapter``; per thread. The blocks stay in place."""
        if self._attachment is None:
            raise InputError("adapter: not attached to any model; attach(model) first")
        with self._attachment.holder.disabled():
            yield self._attachment.model

    @property
    def last_routing_weights(self) -> dict:
        """``{module name: (B, groups, experts)}`` routing weights (detached) of the last forward of the
        network that finished in the calling thread; ``{}`` before one, or when unloaded. Per thread:
        another thread's forwards never show here."""
        if self._attachment is None:
            return {}
        return self._attachment.holder.last_routing

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
        with self._attachment.holder.recording() as recorded:
            yield recorded

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


__all__ = ["QuarfAdapter", "QuarfAdapterPreTrainedModel", "QuarfAdapterOutput"]
