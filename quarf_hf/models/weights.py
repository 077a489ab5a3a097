"""Loading a saved QuARF model: damaged files as one line naming the file, missing QuARF weights said out loud.

``from_pretrained`` of the package's models goes through :func:`from_pretrained_checked`:

* a damaged ``model.safetensors`` (truncated, random bytes, a bad header) or a ``config.json`` whose
  field has the wrong type (``hidden_sizes: abc``) raises :class:`~.checks.InputError` with one line
  naming the file and the field, instead of the library's own error type and several lines;
* a checkpoint without its QuARF tensors (say a plain network's weights saved under a QuARF config)
  loads, as transformers does, with the block newly initialised; a ``UserWarning`` then names the
  missing tensors and says what the block does now (the identity for a residual block).

Shipped to the Hub with the models: imports only the standard library and flat siblings.
"""

from __future__ import annotations

import os
import warnings

from .checks import InputError

# Parts of a parameter name that mark a QuARF block or its quality extractor.
QUARF_KEY_PARTS = ("quarf", "quality_extractor", "blocks.")


def load_error(err: BaseException, source) -> InputError | None:
    """``err`` (raised while loading ``source``, a folder or Hub id) as one line naming the file and key;
    None when it is not a damaged file or a badly typed config."""
    name = type(err).__name__
    folder = os.fspath(source)
    if name == "SafetensorError":  # truncated, random bytes, bad header
        path = os.path.join(folder, "model.safetensors") if os.path.isdir(folder) else f"{folder} (model.safetensors)"
        return InputError(f"{path}: not a readable safetensors file ({' '.join(str(err).split())})")
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
    try:
        model, info = load(source, *args, output_loading_info=True, **kwargs)
    except Exception as err:
        converted = load_error(err, source)
        if converted is None:
            raise
        raise converted from None
    warn_missing_quarf_weights(model, info.get("missing_keys", ()), source)
    return (model, info) if want_info else model


__all__ = ["from_pretrained_checked", "load_error", "warn_missing_quarf_weights"]
