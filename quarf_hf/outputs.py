"""Output folders: a run never silently replaces an earlier run's outputs, nor writes through a link.

Every writing command checks its folder here before any work: :func:`check_output_folder` with the
names it writes into the folder (everything else there is the user's and stays as it is), or
:func:`check_model_folder` where the folder is the model itself (``build``, ``convert-contrique``).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from .models.checks import InputError


def check_output_folder(folder, outputs, argument: str, overwrite: bool = False,
                        to_replace: str = "pass --overwrite to replace them") -> list[Path]:
    """Refuses ``folder`` when it is a file (or below one), when one of ``outputs`` (names or glob
    patterns inside it) is a symbolic link, or, unless ``overwrite``, when one of them exists.
    ``argument`` (``--out``, ``output_dir``) starts the one-line message; ``to_replace`` says how
    to go on anyway. Returns the outputs that exist."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{argument}: {str(folder)!r} exists and is not a folder; choose another folder")
    for parent in folder.parents:
        if parent.exists() and not parent.is_dir():
            raise FileExistsError(f"{argument}: {str(parent)!r} (a parent of {str(folder)!r}) is a file, not a folder")
    if not folder.is_dir():
        return []
    found = set()
    for pattern in outputs:
        if glob.has_magic(pattern):
            found.update(folder.glob(pattern))
        elif os.path.lexists(folder / pattern):  # a dangling link too, which glob would skip
            found.add(folder / pattern)
    found = sorted(found)
    for path in found:
        if path.is_symlink():
            raise InputError(f"{argument}: {path} is a symbolic link; quarf-hf replaces what it writes and does not "
                             "write through links: remove the link or choose another folder")
    if found and not overwrite:
        names = ", ".join(path.name for path in found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise InputError(f"{argument}: {folder} already holds an earlier run's {names}; {to_replace}, "
                         "or choose another folder")
    return found


def check_model_folder(folder, argument: str, overwrite: bool = False, holds: str = "config.json",
                       what: str = "model folder") -> None:
    """For commands whose output folder *is* what they write (``build``, ``convert-contrique``: a model;
    ``export``: an export): refuses a link or a file, a non-empty folder unless ``overwrite``, and, even
    with ``overwrite``, a non-empty folder without ``holds`` (the file that makes it a ``what``):
    replacing it would remove files quarf-hf did not write."""
    from .atomic import MARKER

    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise InputError(f"{argument}: {folder} is a symbolic link or a file; quarf-hf does not write through links "
                         "or over files: choose a folder")
    entries = [p for p in folder.iterdir() if p.name != MARKER] if folder.is_dir() else []  # a staging folder's marker
    if not entries:
        return
    if not overwrite:
        raise FileExistsError(f"{argument}: {folder} exists and is not empty (pass --overwrite to replace it)")
    if not (folder / holds).is_file():
        raise InputError(f"{argument}: {folder} holds no {holds}, so it is no {what} that --overwrite "
                         "may replace; choose an empty or new folder")
