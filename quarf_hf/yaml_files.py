"""Reading a YAML config file with errors a user can act on: the file, the line, what is wrong.

Every YAML the package reads from a user goes through :func:`load_yaml_text`, which refuses a text
larger than :data:`MAX_YAML_BYTES`, with more than :data:`MAX_YAML_ALIASES` aliases, or whose aliases
expand to more than :data:`MAX_YAML_VALUES` values (a "billion laughs"), before any check walks it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .models.checks import InputError

MAX_YAML_BYTES = 1_000_000
"""The largest config text read: the project's own configs are a few kilobytes."""

MAX_YAML_ALIASES = 100
"""The most ``*alias`` references in one config (the project's own use at most five)."""

MAX_YAML_VALUES = 100_000
"""The most values a config may hold once its aliases are expanded."""


def _expanded_size(root) -> int:
    """How many values ``root`` (a composed YAML node) holds with aliases expanded; stops counting
    above :data:`MAX_YAML_VALUES`. Each shared node is counted once and reused, so this is linear
    in the text, not in the expansion."""
    sizes: dict[int, int] = {}

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            if sizes[key] < 0:  # an alias inside its own anchor: expands forever
                return MAX_YAML_VALUES + 1
            return sizes[key]
        sizes[key] = -1
        children = node.value if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) else []
        total = 1
        for child in children:
            for item in child if isinstance(child, tuple) else (child,):
                total += size(item)
                if total > MAX_YAML_VALUES:
                    break
        sizes[key] = min(total, MAX_YAML_VALUES + 1)
        return sizes[key]

    return size(root)


def load_yaml_text(text: str, argument: str, where: str = "the text"):
    """The value of the YAML ``text``, or a one-line :class:`InputError` naming ``argument`` and
    ``where`` (a file) for a syntax error (with its line) or a text above the bounds."""
    if len(text) > MAX_YAML_BYTES:
        raise InputError(f"{argument}: {where} holds {len(text):,} characters; expected at most {MAX_YAML_BYTES:,} (a config)")
    loader = yaml.SafeLoader(text)
    try:
        aliases = sum(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader))
        if aliases > MAX_YAML_ALIASES:
            raise InputError(f"{argument}: {where} holds {aliases} YAML aliases (*name); expected at most {MAX_YAML_ALIASES}")
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_YAML_VALUES:
            raise InputError(f"{argument}: {where} expands its YAML aliases to more than {MAX_YAML_VALUES:,} values; "
                             f"expected a config (write the values out)")
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputError(f"{argument}: {where} is not valid YAML{at}: {problem}") from None
    finally:
        loader.dispose()


def read_yaml_mapping(path, argument: str = "CONFIG") -> dict:
    """The mapping in the YAML file ``path``; a one-line ``ValueError`` naming ``argument``, the file
    and the line for a syntax error, ``FileNotFoundError`` for a missing file, ``ValueError`` for
    a file that is not UTF-8 text, is above the bounds of :func:`load_yaml_text` or holds something
    other than a mapping. An empty file is ``{}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: no such file {str(path)!r}")
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise InputError(f"{argument}: {path} is {size:,} bytes; expected at most {MAX_YAML_BYTES:,} (a config)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{argument}: {path} is not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    data = load_yaml_text(text, argument, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{argument}: {path} must hold a YAML mapping (key: value lines), found {type(data).__name__}")
    return data
