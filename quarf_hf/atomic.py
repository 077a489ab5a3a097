"""Writing files and folders atomically: readers (and a crash) never see half of one.

Both helpers work beside the destination (same file system, so ``os.replace`` is a rename) and
remove their temporary on failure. Not shipped to the Hub: no model code imports it.
"""

from __future__ import annotations

import os
import re
import shutil
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


_NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def _create_beside(folder: Path, make, prefix: str, suffix: str = "") -> Path:
    """``make(path)`` on a new ``folder/prefix + 8 random characters + suffix`` (as tempfile names them),
    retrying on a name taken. ``make`` creates with an explicit mode (0o666 files, 0o777 folders) that
    the kernel narrows by the process umask: the usual modes, without reading or changing the umask
    (``os.umask`` is process-wide: changing it for a moment races with other threads)."""
    for _ in range(100):
        path = folder / f"{prefix}{''.join(secrets.choice(_NAME_CHARACTERS) for _ in range(8))}{suffix}"
        try:
            make(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{folder}: no free temporary name starting with {prefix!r}")


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))


# tempfile's random part: 8 characters from [a-z0-9_].
_RANDOM = r"[a-z0-9_]{8}"


def _is_staging(name: str, destination: str | None = None) -> bool:
    target = re.escape(destination) if destination is not None else r".+"
    return bool(re.fullmatch(rf"\.{target}-{_RANDOM}", name) or re.fullmatch(rf"\.{target}\.{_RANDOM}\.tmp", name))


def remove_stale_staging(folder, destination: str | None = None) -> list[Path]:
    """Removes what a killed run left in ``folder``: the helpers' staging folders (``.NAME-xxxxxxxx``)
    and temporary files (``.NAME.xxxxxxxx.tmp``), only those of ``destination`` when given. Returns
    what it removed. Call it where a run starts writing, before it stages anything of its own."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if _is_staging(entry.name, destination):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yields a temporary file path next to ``path``; renamed onto ``path`` if the block succeeds.

    Name the format explicitly when writing (``format="PNG"``): the temporary ends in ``.tmp``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(path.parent, path.name)  # a killed earlier write of the same file
    temporary = _create_beside(path.parent, _new_file, f".{path.name}.", ".tmp")  # the usual mode, not mkstemp's 0o600
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(path, text: str) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


@contextmanager
def atomic_folder(path) -> Iterator[Path]:
    """Yields an empty staging folder next to ``path``; it replaces ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(path.parent, path.name)  # a killed earlier write of the same folder
    staging = _create_beside(path.parent, lambda p: os.mkdir(p, 0o777), f".{path.name}-")  # not mkdtemp's 0o700
    try:
        yield staging
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
