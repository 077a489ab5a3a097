"""The ``quarf-hf`` command line.

Each sub-command is one module of :mod:`quarf_hf.commands`; that module exposes
``register(subparsers)`` which adds the parser and sets ``func``. Modules are imported
only when the CLI starts, so ``import quarf_hf`` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

# Modules with a ``register(subparsers)``, in the order the commands appear in ``--help``.
COMMAND_MODULES = [
    "quarf_hf.commands.demo",
    "quarf_hf.commands.study",
    "quarf_hf.commands.build",
    "quarf_hf.commands.convert_contrique",
    "quarf_hf.commands.degradations",
    "quarf_hf.commands.train",
    "quarf_hf.commands.train_quality",
    "quarf_hf.commands.evaluate_quality",
    "quarf_hf.commands.evaluate",
    "quarf_hf.commands.predict",
    "quarf_hf.commands.bench",
    "quarf_hf.commands.space",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quarf-hf",
        description="QuARF: quality-adaptive receptive fields for models that see degraded images.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


# Our own bad-input errors start with what they name: an argument (``--out``, ``MODEL``, ``images[0]``,
# ``data.train``), a file path, or a config key, then a colon.
_NAME = r"(?:--?[\w-]+|[\w.\[\]-]+|\S*[/\\.]\S*)"
# One name, a comma-separated list of names ("weight_decay, load_balancing_weight:"), or a name and a
# qualifier ("folder spec:", "experts[0] dilation:"); Python's own messages have longer prefixes.
_NAMED = re.compile(rf"^\s*{_NAME}(?:,\s*{_NAME})*(?:\s+[\w.\[\]-]+)?:\s")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _raised_by_us(err: BaseException) -> bool:
    """Whether the innermost frame that raised ``err`` is quarf_hf code (or a model's copied code)."""
    tb = err.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    if last is None:
        return False
    last = os.path.abspath(last)
    return last.startswith(_PACKAGE_DIR + os.sep) or "transformers_modules" in last


def user_error_message(err: BaseException) -> str | None:
    """The one-line message for a user error, or None for anything else (a bug: full traceback).

    User errors are: ``ValueError``/``TypeError``/``KeyError`` that quarf_hf raised on purpose (raised in
    quarf_hf's code, with a message that starts with the argument, key or file it names); any
    ``OSError`` (a missing, unreadable or damaged file; named when the error carries its name);
    YAML errors (with their line). A ``TypeError`` or ``ValueError`` raised anywhere else, or
    without that form, is a programming bug and keeps its traceback.
    """
    text = " ".join(str(err).split())
    if isinstance(err, OSError):
        filename = getattr(err, "filename", None)
        if filename and str(filename) not in text:
            text = f"{filename}: {err.strerror or text}"
        return text or type(err).__name__
    try:
        import yaml

        if isinstance(err, yaml.YAMLError):
            return f"invalid YAML: {text}"
    except ImportError:  # pragma: no cover - yaml is a dependency
        pass
    if isinstance(err, (ValueError, TypeError, LookupError)) and _raised_by_us(err) and _NAMED.match(text):
        return text
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except Exception as err:  # noqa: BLE001 - sorted into user errors and bugs below
        message = user_error_message(err)
        if message is None:
            raise  # a bug: the full traceback
        # Bad input is the user's to fix: a one-line message, not a traceback.
        print(f"quarf-hf {args.command}: error: {message}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
