"""The ``quarf-hf`` command line.

Each sub-command is one module of :mod:`quarf_hf.commands`; that module exposes
``register(subparsers)`` which adds the parser and sets ``func``. Modules are imported
only when the CLI starts, so ``import quarf_hf`` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules with a ``register(subparsers)``, in the order the commands appear in ``--help``.
COMMAND_MODULES = [
    "quarf_hf.commands.demo",
    "quarf_hf.commands.study",
    "quarf_hf.commands.build",
    "quarf_hf.commands.convert_contrique",
    "quarf_hf.commands.degradations",
    "quarf_hf.commands.train",
    "quarf_hf.commands.evaluate",
    "quarf_hf.commands.predict",
    "quarf_hf.commands.bench",
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as err:
        # Bad input is the user's to fix: a one-line message, not a traceback.
        print(f"quarf-hf {args.command}: error: {err}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
