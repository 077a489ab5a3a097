"""Loading a saved QuARF model: damaged files as one line naming the file, missing QuARF weights said out loud.

``from_pretrained`` of the package's models goes through :func:`from_pretrained_checked`:

* a damaged ``model.safetensors`` (truncated, random bytes, a bad header) or a ``config.json`` whose
  field has the wrong type (``hidden_sizes: abc``) raises :class:`~.checks.InputError` with one line
  naming the file and the field, instead of the library's own error type and several lines;
* a folder path that does not exist, or a ``config.json`` above :data:`MAX_CONFIG_BYTES`, is refused
  before transformers reads anything; a pickled ``.bin`` that torch's weights-only loading refuses,
  and weights whose shapes differ from the config's (without ``ignore_mismatched_sizes``), are one
  line naming the weights file;
* a checkpoint without its QuARF tensors (say a plain network's weights saved under a QuARF config)
  loads, as transformers does, with the block newly initialised; a ``UserWarning`` then names the
  missing tensors and says what the block does now (the identity for a residual block).

Shipped to the Hub with the models: imports only the standard library and flat siblings.
"""

from __future__ import annotations

import os
import warnings

from .checks import InputError, looks_like_hub_id

# Parts of a parameter name that mark a QuARF block or its quality extractor.
QUARF_KEY_PARTS = ("quarf", "quality_extractor", "blocks.")

MAX_CONFIG_BYTES = 1_000_000
"""The largest ``config.json`` read: a real one is a few kilobytes, so more is refused before parsing."""


def check_source(source) -> None:
    """Refuses, before transformers reads anything, a local folder that does not exist (rather than the
    Hub's "Repo id must be in the form" for a path) and a ``config.json`` above :data:`MAX_CONFIG_BYTES`."""
    if not isinstance(source, (str, os.PathLike)):
        return
    folder = os.fspath(source)
    if not os.path.exists(folder):
        if not looks_like_hub_id(folder):
            raise FileNotFoundError(f"pretrained_model_name_or_path: no such folder {folder!r}")
        return
    config = os.path.join(folder, "config.json")
    if os.path.isfile(config) and os.path.getsize(config) > MAX_CONFIG_BYTES:
        raise InputError(f"{config}: expected a model config of at most {MAX_CONFIG_BYTES:,} bytes, "
                         f"found {os.path.getsize(config):,}")


def _weights_file(folder: str, default: str) -> str:
    """The weights file of ``folder`` for a message: its ``.safetensors`` or ``.bin``, else ``default``."""
    if not os.path.isdir(folder):
        return f"{folder} ({default})"
    names = sorted(n for n in os.listdir(folder) if n.endswith((".safetensors", ".bin")))
    preferred = [n for n in names if n.endswith(default.rsplit(".", 1)[-1])] or names or [default]
    return os.path.join(folder, preferred[0])


def load_error(err: BaseException, source) -> InputError | None:
    """``err`` (raised while loading ``source``, a folder or Hub id) as one line naming the file and key;
    None when it is not a damaged file or a badly typed config."""
    name = type(err).__name__
    folder = os.fspath(source)
    if name == "SafetensorError":  # truncated, random bytes, bad header
        path = os.path.join(folder, "model.safetensors") if os.path.isdir(folder) else f"{folder} (model.safetensors)"
        return InputError(f"{path}: not a readable safetensors file ({' '.join(str(err).split())})")
    if name == "UnpicklingError":  # torch's weights-only loading refused a pickled object in a .bin
        path = _weights_file(folder, "pytorch_model.bin")
        return InputError(f"{path}: refused, it holds pickled Python objects besides tensors (torch's weights-only "
                          f"loading: {' '.join(str(err).split()[:3])}); save the weights as model.safetensors")
    if isinstance(err, RuntimeError) and "ignore_mismatched_sizes" in str(err):
        path = _weights_file(folder, "model.safetensors")
        return InputError(f"{path}: some tensors' shapes differ from what config.json builds (transformers' load report "
                          f"lists them); pass ignore_mismatched_sizes=True to initialise those layers anew")
    if name.startswith("StrictDataclass") or name == "HeaderTooLarge":
        path = os.path.join(folder, "config.json") if os.path.isdir(folder) else f"{folder} (config.json)"
        text = " ".join(str(err).split())
        field = getattr(err, "field", None)
        prefix = f"{field}: " if isinstance(field, str) and field not in text else ""
        return InputError(f"{path}: {prefix}{text}")
    return None


def warn_missing_quarf_weights(model, missing_keys, source) -> None:
    """A ``UserWarning`` naming the QuARF (and extractor) tensors a checkpoint lacked, if any."""
    missing = sorted(key for key in missing_keys if any(part in key for part in QUARF_KEY_PARTS))
    if not missing:
        return
    residual = [m for m in model.modules() if getattr(m, "residual_scale", None) is not None]
    now = ("starts as the identity (residual block, scale 0) and changes nothing until trained" if residual
           else "is newly initialised (random): its outputs mean nothing until it is trained")
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    warnings.warn(
        f"{os.fspath(source)}: the checkpoint has no QuARF weights ({shown}); the QuARF block {now}. "
        f"Load a QuARF checkpoint, or train the block",
        UserWarning,
        stacklevel=3,
    )


def from_pretrained_checked(load, source, *args, **kwargs):
    """``load(source, *args, **kwargs)`` (a ``from_pretrained``) with the checks of the module doc."""
    want_info = kwargs.pop("output_loading_info", False)
    check_source(source)
    try:
        model, info = load(source, *args, output_loading_info=True, **kwargs)
    except Exception as err:
        converted = load_error(err, source)
        if converted is None:
            raise
        raise converted from None
    warn_missing_quarf_weights(model, info.get("missing_keys", ()), source)
    return (model, info) if want_info else model


__all__ = ["check_source", "from_pretrained_checked", "load_error", "warn_missing_quarf_weights"]
