"""Reading a YAML config file with errors a user can act on: the file, the line, what is wrong."""

from __future__ import annotations

from pathlib import Path

import yaml

from .models.checks import InputError


def read_yaml_mapping(path, argument: str = "CONFIG") -> dict:
    """The mapping in the YAML file ``path``; a one-line ``ValueError`` naming ``argument``, the file
    and the line for a syntax error, ``FileNotFoundError`` for a missing file, ``ValueError`` for
    a file that is not UTF-8 text or holds something other than a mapping. An empty file is ``{}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: no such file {str(path)!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{argument}: {path} is not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputError(f"{argument}: {path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{argument}: {path} must hold a YAML mapping (key: value lines), found {type(data).__name__}")
    return data
