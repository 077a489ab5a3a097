"""The ``quarf-hf`` command line.

Each sub-command is one module of :mod:`quarf_hf.commands`; that module exposes
``register(subparsers)`` which adds the parser and sets ``func``. Modules are imported
only when the CLI starts, so ``import quarf_hf`` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .models.checks import InputError

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
    "quarf_hf.commands.export",
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


def user_error_message(err: BaseException) -> str | None:
    """The one-line message for a user error, or None for anything else (a bug: full traceback).

    User errors are :class:`~quarf_hf.models.checks.InputError` (every check of a user-given value
    raises it; its message names the argument, key or file), any ``OSError`` (a missing, unreadable
    or damaged file, named when the error carries its name) and YAML errors (with their line).
    Anything else, a plain ``ValueError`` included, is a programming bug and keeps its traceback.
    """
    text = " ".join(str(err).split())
    if isinstance(err, InputError):
        return text or type(err).__name__
    if isinstance(err, OSError):
        # Python's own file errors read "[Errno 2] No such file or directory: 'x'": say "x: No such ...".
        filename = getattr(err, "filename", None)
        if filename and (err.strerror or str(filename) not in text):
            text = f"{filename}: {err.strerror or text}"
        return text or type(err).__name__
    try:
        import yaml

        if isinstance(err, yaml.YAMLError):
            return f"invalid YAML: {text}"
    except ImportError:  # pragma: no cover - yaml is a dependency
        pass
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
