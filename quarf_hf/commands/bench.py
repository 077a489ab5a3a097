"""``quarf-hf bench``: run the scripts of the repository's ``benchmarks/`` folder.

    quarf-hf bench --list                      # the benchmarks there are
    quarf-hf bench                             # all of them, one after another
    quarf-hf bench quarf_block -- --quick      # one, with arguments for the script

NAME is a script's name without ``bench_`` and ``.py`` (``quarf_block`` runs
``benchmarks/bench_quarf_block.py``). Each runs as ``sys.executable script [args after --]`` in
the current folder, its output streamed as it comes. The benchmarks are not part of the
installed package: they are found next to the package source, so the command needs a source
checkout (``pip install -e .``).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from ..models.checks import InputError


def benchmarks_dir() -> Path:
    """The ``benchmarks/`` folder of the source checkout this package was imported from."""
    import quarf_hf

    return Path(quarf_hf.__file__).resolve().parents[1] / "benchmarks"


def available(folder: Path | None = None) -> dict[str, Path]:
    """``{name: script}`` for every ``bench_*.py`` in the benchmarks folder, sorted by name."""
    folder = benchmarks_dir() if folder is None else Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no benchmarks folder at {str(folder)!r}: the benchmarks ship with the source repository, "
            "not with the installed package; run this command from a clone installed with `pip install -e .`"
        )
    return {path.stem[len("bench_"):]: path for path in sorted(folder.glob("bench_*.py")) if path.is_file()}


def _summary(script: Path) -> str:
    """The first line of a script's docstring ('' when it has none or does not parse)."""
    try:
        doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return ""
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""


def split_arguments(words: list[str]) -> tuple[list[str], list[str], bool]:
    """(names, arguments for the scripts, --list seen) from the words after ``bench``.

    Names come before ``--`` and the scripts' arguments after it. Without ``--`` (some Python
    versions drop it) the leading words that are not options are names and the rest arguments.
    """
    words = list(words)
    if "--" in words:
        cut = words.index("--")
        before, extra = words[:cut], words[cut + 1:]
    else:
        cut = next((i for i, word in enumerate(words) if word.startswith("-")), len(words))
        before, extra = words[:cut], words[cut:]
        if "--list" in extra:
            extra = [word for word in extra if word != "--list"]
            return before, extra, True
    listing = "--list" in before
    before = [word for word in before if word != "--list"]
    options = [word for word in before if word.startswith("-")]
    if options:
        raise InputError(f"NAME: {options[0]!r} is not a benchmark; arguments for the scripts go after `--`")
    return before, extra, listing


def _resolve(names: list[str], known: dict[str, Path]) -> list[str]:
    resolved = []
    for name in names:
        key = name.removesuffix(".py").removeprefix("bench_")
        if key not in known:
            listed = ", ".join(known) or "none"
            raise InputError(f"NAME: unknown benchmark {name!r}; known benchmarks: {listed}")
        if key not in resolved:
            resolved.append(key)
    return resolved


def _pump(source, target) -> None:
    """Copy a child's output to ``target`` as it arrives (works when sys.stdout is redirected)."""
    while True:
        chunk = source.read1(65536) if hasattr(source, "read1") else source.read(65536)
        if not chunk:
            break
        target.write(chunk.decode("utf-8", errors="replace"))
        target.flush()


def run_script(script: Path, extra: list[str]) -> int:
    """Run one benchmark script with ``sys.executable``, streaming its stdout and stderr."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(script), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    threads = [
        threading.Thread(target=_pump, args=(process.stdout, sys.stdout), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, sys.stderr), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        code = process.wait()
    except BaseException:  # Ctrl-C: stop the benchmark too
        process.terminate()
        process.wait()
        raise
    finally:
        for thread in threads:
            thread.join()
    return code


def run(args) -> int:
    names, extra, listing = split_arguments(args.args)
    listing = listing or args.list
    known = available()
    selected = _resolve(names, known)  # checked before anything runs
    if listing:
        width = max((len(name) for name in known), default=0)
        file_width = max((len(script.name) for script in known.values()), default=0)
        for name, script in known.items():
            print(f"{name:<{width}}  {script.name:<{file_width}}  {_summary(script)}".rstrip())
        return 0
    if not known:
        raise FileNotFoundError(f"no bench_*.py scripts in {str(benchmarks_dir())!r}")
    selected = selected or list(known)
    first_failure = 0
    for name in selected:
        script = known[name]
        rule = "=" * min(100, shutil.get_terminal_size((100, 20)).columns)
        print(f"{rule}\n{name}: {Path(sys.executable).name} {script} {' '.join(extra)}".rstrip() + f"\n{rule}", flush=True)
        code = run_script(script, extra)
        if code != 0:
            print(f"{name}: exited with code {code}", file=sys.stderr, flush=True)
            first_failure = first_failure or code
    return first_failure


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run the repository's benchmarks (benchmarks/bench_*.py; source checkout only)",
        description=(
            "Run benchmark scripts from the repository's benchmarks/ folder, each with the current Python; "
            "NAME is the script name without 'bench_' and '.py'. No NAME runs them all. "
            "Arguments after '--' are passed to every script run. Needs a source checkout."
        ),
        usage="quarf-hf bench [-h] [--list] [NAME ...] [-- ARGS ...]",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("args", nargs="...", metavar="NAME", help="benchmarks to run (default: all), then -- and their arguments")
    parser.set_defaults(func=run)


__all__ = ["register", "run", "available", "benchmarks_dir", "split_arguments"]
