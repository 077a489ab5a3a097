"""The package's checks of user-given values and its one user-error type.

Every check raises :class:`InputError` (a ``ValueError``) or :class:`InputTypeError` (also a
``TypeError``) with a message that starts with the name of what it checks, then what was expected
and what was found::

    >>> from quarf_hf.models.checks import check_int
    >>> check_int("batch_size", 8)
    8
    >>> check_int("batch_size", 0)
    Traceback (most recent call last):
    ...
    quarf_hf.models.checks.InputError: batch_size: expected an integer >= 1, found 0

The CLI prints these (and file errors) as one line; any other exception is a bug and keeps its
traceback. This file ships with saved model folders (the remote-code rule): it imports only the
standard library.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterable


class InputError(ValueError):
    """A value the user gave is wrong; the message names it, says what was expected and what was found."""


class InputTypeError(InputError, TypeError):
    """A user-given value has the wrong type (also a ``TypeError``, as Python's own type errors are)."""


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 2, 4, 4, 4
_SHORT.maxset = _SHORT.maxfrozenset = _SHORT.maxdeque = 4
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 60, 60, 40


def short_repr(value, limit: int = 80) -> str:
    """``repr(value)`` for an error message, at most ``limit`` characters long.

    Containers are shown two levels deep and four items wide, so a huge or alias-shared structure
    (a YAML "billion laughs") is never walked in full::

        >>> short_repr([list(range(9))] * 10**6)
        '[[0, 1, 2, 3, ...], [0, 1, 2, 3, ...], [0, 1, 2, 3, ...], [0, 1, 2, 3, ...], ...'
        >>> short_repr({"seed": [[[[1]]]]})
        "{'seed': [[...]]}"
    """
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value, minimum: int | None = 1, maximum: int | None = None, *,
              expected: str | None = None) -> int:
    """``value`` as an int within ``[minimum, maximum]`` (``None``: unbounded); booleans are refused.

    A value that is no integer at all raises :class:`InputTypeError`, one out of bounds
    :class:`InputError`. ``expected`` replaces the generated description of what is allowed, for a
    message that also says why (``"an integer >= 8 (the short side in pixels)"``).
    """
    in_bounds = _is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if in_bounds:
        return value
    if expected is None:
        if minimum is not None and maximum is not None:
            expected = f"an integer from {minimum} to {maximum}"
        elif minimum is not None:
            expected = f"an integer >= {minimum}"
        elif maximum is not None:
            expected = f"an integer <= {maximum}"
        else:
            expected = "an integer"
    error = InputError if _is_int(value) else InputTypeError
    raise error(f"{name}: expected {expected}, found {short_repr(value)}")


def check_int_list(name: str, value, minimum: int | None = 1, maximum: int | None = None, *,
                   distinct: bool = False) -> list[int]:
    """``value`` as a non-empty list of ints, each checked as ``check_int(f"{name}[{i}]", ...)``;
    all different when ``distinct``."""
    if not isinstance(value, (list, tuple)) or not value:
        raise InputError(f"{name}: expected a non-empty list of integers, found {short_repr(value)}")
    for index, item in enumerate(value):
        check_int(f"{name}[{index}]", item, minimum, maximum)
    if distinct and len(set(value)) != len(value):
        raise InputError(f"{name}: expected distinct values, found {short_repr(value)}")
    return list(value)


MAX_WIDTH = 16_384
"""The most channels (or features) of one layer a model config may ask for; no real model needs more."""

MAX_DEPTH = 256
"""The most layers in one stage, and the most stages, a model config may ask for."""

MAX_EXPERTS = 64
"""The most experts (kernel_size, dilation) one QuARF block may have."""


def check_sizes(name: str, value, maximum: int, *, max_length: int = MAX_DEPTH) -> list[int]:
    """``value`` as a non-empty list of at most ``max_length`` ints in ``[1, maximum]``: a model config's
    widths or depths, checked in full before any module is built (the length first, so a list of a
    million entries is refused without being read)."""
    if isinstance(value, (list, tuple)) and len(value) > max_length:
        raise InputError(f"{name}: expected at most {max_length} entries, found {len(value):,}")
    return check_int_list(name, value, 1, maximum)


def check_number(name: str, value, minimum: float | None = None, *, exclusive: bool = False,
                 maximum: float | None = None) -> float:
    """``value`` as a finite float; above ``minimum`` (strictly when ``exclusive``) and at most
    ``maximum``. Strings that read as numbers are accepted, since YAML reads ``6e-4`` as a string."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
        error = InputError if isinstance(value, (str, float)) else InputTypeError  # "abc", nan: wrong value
        raise error(f"{name}: expected a finite number, found {short_repr(value)}")
    low_ok = minimum is None or (number > minimum if exclusive else number >= minimum)
    if not low_ok or (maximum is not None and number > maximum):
        bounds = []
        if minimum is not None:
            bounds.append(f"{'>' if exclusive else '>='} {minimum:g}")
        if maximum is not None:
            bounds.append(f"<= {maximum:g}")
        raise InputError(f"{name}: expected a number {' and '.join(bounds)}, found {short_repr(value)}")
    return float(number)


def check_probability(name: str, value) -> float:
    """``value`` as a float in [0, 1]."""
    return check_number(name, value, 0.0, maximum=1.0)


def check_choice(name: str, value, choices: Iterable):
    """``value`` if it is one of ``choices``, else an error listing them."""
    choices = list(choices)
    if value not in choices:
        raise InputError(f"{name}: expected one of {', '.join(map(str, choices))}, found {short_repr(value)}")
    return value


def check_type(name: str, value, types, expected: str):
    """``value`` if it is an instance of ``types``; else an :class:`InputTypeError` saying ``expected``."""
    if not isinstance(value, types):
        raise InputTypeError(f"{name}: expected {expected}, found {type(value).__name__}")
    return value


def check_shape(name: str, shape: Iterable[int], expected: Iterable[int | None]) -> None:
    """``shape`` equals ``expected`` where ``expected`` is not ``None`` (``None`` matches any size)."""
    shape, expected = tuple(shape), tuple(expected)
    if len(shape) != len(expected) or any(e is not None and s != e for s, e in zip(shape, expected)):
        readable = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise InputError(f"{name}: expected shape {readable}, found {shape}")


def check_path_name(name: str, value) -> str:
    """``value`` as a name that may become one folder or file name under the package's own folder.

    The one gate through which names (study arms, run names, photo names, model roles) become paths:
    text only, not empty, no path separator, no NUL, not ``.`` or ``..``, so a joined path never
    leaves its folder::

        >>> check_path_name("arms", "../../escaped")
        Traceback (most recent call last):
        ...
        quarf_hf.models.checks.InputError: arms: expected a plain name (no path separator, '..' or NUL) to use as a folder name, found '../../escaped'
    """
    if not isinstance(value, str):
        raise InputTypeError(f"{name}: expected a name (text) to use as a folder name, found {short_repr(value)}")
    if not value.strip() or value in (".", "..") or any(c in value for c in "/\\\0") or value.startswith("~"):
        raise InputError(f"{name}: expected a plain name (no path separator, '..' or NUL) to use as a folder name, "
                         f"found {short_repr(value)}")
    return value


def looks_like_hub_id(text: str) -> bool:
    """Whether ``text``, which is not an existing path, may be a Hub repo id: ``"name"`` or
    ``"owner/name"``. Anything absolute, dotted-relative, deeper or with a backslash can only be a
    local path (so a missing folder is reported as missing, not as an unknown Hub repo)."""
    return not text.startswith((".", "/", "~")) and text.count("/") <= 1 and "\\" not in text


def check_groups(name: str, channels: int, groups, *, what: str = "channels") -> int:
    """``groups`` (the setting ``name``) as a positive integer that divides ``channels``.

    ``what`` says which channels, for the message (``"in_channels"``, ``"stage 2's width"``):
    ``num_groups: expected a divisor of in_channels (16), found 3``. The QuARF block's whole channel
    rule (in, out, residual) is ``quarf.check_block_channels``, which calls this.
    """
    check_int(what, channels)
    check_int(name, groups)
    if channels % groups:
        raise InputError(f"{name}: expected a divisor of {what} ({channels}), found {groups}")
    return groups


def refuse_unknown_arguments(model, kwargs: dict) -> None:
    """One line naming the keyword arguments ``model.forward`` does not take (a misspelled
    ``output_hidden_states`` would otherwise be swallowed by ``**kwargs`` and ignored)."""
    if kwargs:
        import inspect

        known = [name for name in inspect.signature(type(model).forward).parameters if name not in ("self", "kwargs")]
        raise InputError(f"{type(model).__name__}.forward: unknown keyword arguments {sorted(kwargs)}; expected some of {known}")
