"""Writing files and folders atomically: readers (and a crash) never see half of one.

Both helpers work beside the destination (same file system, so ``os.replace`` is a rename) and
remove their temporary on failure. Every temporary carries the prefix ``.quarf-staging-``, which
no user file has, and a staging folder also holds a marker file naming its destination: only
names with that prefix (and, for folders, that marker) are ever removed as leftovers, so a
user's ``.backup-20241207/`` or ``.notes.20241207.tmp`` next to an output is never touched.
Not shipped to the Hub: no model code imports it.
"""

from __future__ import annotations

import os
import re
import shutil
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .models.checks import InputError

PREFIX = ".quarf-staging-"
MARKER = ".quarf-staging"  # inside a staging folder: "new NAME" (being written) or "old NAME" (being replaced)
_NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789_"
# tempfile's random part: 8 characters from [a-z0-9_].
_RANDOM = r"[a-z0-9_]{8}"


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


def _staging_destination(entry: Path) -> str | None:
    """The destination name a staging file or folder is for, or None when ``entry`` is not one.
    A folder counts only with its marker; links never count (the helpers make none)."""
    if entry.is_symlink():
        return None
    if entry.is_dir():
        match = re.fullmatch(rf"{re.escape(PREFIX)}(.+)-{_RANDOM}", entry.name)
        return match.group(1) if match and _marker_role(entry, match.group(1)) else None
    match = re.fullmatch(rf"{re.escape(PREFIX)}(.+)\.{_RANDOM}\.tmp", entry.name)
    return match.group(1) if match and entry.is_file() else None


def _marker_role(folder: Path, name: str) -> str | None:
    """"new" or "old" when ``folder`` holds the marker of a staging folder for ``name``, else None."""
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        role, _, marked = marker.read_text(encoding="utf-8").partition(" ")
    except (OSError, UnicodeDecodeError):
        return None
    return role if marked == name and role in ("new", "old") else None


def _mark(folder: Path, role: str, name: str) -> None:
    (folder / MARKER).write_text(f"{role} {name}", encoding="utf-8")


def staging_path(path, suffix: str) -> Path:
    """The staging folder's name beside ``path`` with the fixed last part ``suffix``."""
    path = Path(path)
    return path.parent / f"{PREFIX}{path.name}-{suffix}"


def staging_folder(path, suffix: str | None = None) -> Path:
    """A new, marked, empty staging folder beside ``path``: ``.quarf-staging-NAME-xxxxxxxx``, the
    last part random, or ``suffix`` (8 characters of [a-z0-9_]) when every process of a run must
    know the name; a marked leftover of that fixed name is removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        staging = _create_beside(path.parent, lambda p: os.mkdir(p, 0o777), f"{PREFIX}{path.name}-")  # not mkdtemp's 0o700
    else:
        staging = staging_path(path, suffix)
        if _staging_destination(staging) == path.name:
            shutil.rmtree(staging)
        os.mkdir(staging, 0o777)
    _mark(staging, "new", path.name)
    return staging


def _check_replaceable(path: Path) -> None:
    if path.is_symlink():
        raise InputError(f"{path}: is a symbolic link; quarf-hf replaces the folders it writes and does not write "
                         "through links: remove the link or choose another folder")
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a folder; remove it or choose another folder")


def commit_staging_folder(staging: Path, path) -> Path:
    """Puts the finished ``staging`` folder at ``path``: the old folder (if any) is renamed aside and
    marked, the new one renamed into place, then the old one removed. A crash at any point leaves
    one complete folder: the old one aside is put back by :func:`remove_stale_staging` when
    ``path`` is missing."""
    path = Path(path)
    _check_replaceable(path)
    old = None
    if path.exists():
        old = _create_beside(path.parent, lambda p: os.mkdir(p, 0o777), f"{PREFIX}{path.name}-")
        os.replace(path, old)  # onto the empty folder just made: a rename
        _mark(old, "old", path.name)
    try:
        (staging / MARKER).unlink(missing_ok=True)  # gone when a nested writer replaced the folder itself
        os.replace(staging, path)
    except BaseException:
        if staging.is_dir():
            _mark(staging, "new", path.name)  # still a leftover the next run may remove
        if old is not None and not path.exists():
            _restore(old, path)
        raise
    if old is not None:
        shutil.rmtree(old)
    return path


def _restore(old: Path, path: Path) -> None:
    (old / MARKER).unlink(missing_ok=True)
    os.replace(old, path)


def remove_stale_staging(folder, destination: str | None = None) -> list[Path]:
    """Cleans up what a killed run left in ``folder``: the helpers' marked staging folders and
    ``.quarf-staging-`` temporary files, only those of ``destination`` when given; anything else,
    however it is named, stays. An old folder set aside by :func:`commit_staging_folder` goes back
    to its place when that is empty (the crash came before the new one moved in). Returns what it
    removed or put back. Call it where a run starts writing, before it stages anything of its own."""
    folder = Path(folder)
    handled = []
    if not folder.is_dir():
        return handled
    for entry in sorted(folder.iterdir()):
        name = _staging_destination(entry)
        if name is None or (destination is not None and name != destination):
            continue
        if entry.is_dir():
            target = folder / name
            if _marker_role(entry, name) == "old" and not target.exists() and not target.is_symlink():
                _restore(entry, target)
            else:
                shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
        handled.append(entry)
    return handled


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yields a temporary file path next to ``path``; renamed onto ``path`` if the block succeeds.

    Name the format explicitly when writing (``format="PNG"``): the temporary ends in ``.tmp``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(path.parent, path.name)  # a killed earlier write of the same file
    temporary = _create_beside(path.parent, _new_file, f"{PREFIX}{path.name}.", ".tmp")  # the usual mode, not mkstemp's 0o600
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
    """Yields an empty staging folder next to ``path``; it replaces ``path`` if the block succeeds
    (:func:`commit_staging_folder`). A ``path`` that is a link or a file is refused before any work."""
    path = Path(path)
    _check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(path.parent, path.name)  # a killed earlier write of the same folder
    staging = staging_folder(path)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging)
        raise
    commit_staging_folder(staging, path)
