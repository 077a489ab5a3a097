"""The Space's four model roles (quarf_hf.space.models.ROLES): the command the page gives for a
missing pair trains that pair (checked with the real CLI parser), the roles' variables and demo
folders are the ones docs/space.md documents, and the Space is a library that imports no command."""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import pytest

from quarf_hf.models.checks import InputError
from quarf_hf.space.models import DEMO_COMMANDS, ROLES, SpaceModels, prepare, roles_of

ROOT = Path(__file__).resolve().parents[1]


def test_each_demo_command_trains_its_task():
    """Parsed by `quarf-hf`'s own parser: `quarf-hf demo --quick` alone trains restoration only, so
    the segmentation pair needs `--task segmentation`."""
    from quarf_hf.cli import build_parser

    assert set(DEMO_COMMANDS) == {"restoration", "segmentation"}
    for task, command in DEMO_COMMANDS.items():
        program, *words = shlex.split(command)
        args = build_parser().parse_args(words)
        assert program == "quarf-hf" and args.command == "demo" and args.task == task and args.quick


def test_the_page_gives_the_segmentation_command_for_the_segmentation_pair():
    """Before the fix the page sent a visitor without a segmentation model to `quarf-hf demo --quick`,
    which trains restoration models only."""
    pytest.importorskip("gradio")
    from quarf_hf.space.app import SpaceLogic, status_markdown

    segmentation, restoration = status_markdown(SpaceModels()).split("No restoration model is loaded")
    assert "No segmentation model is loaded" in segmentation
    assert "`quarf-hf demo --quick --task segmentation`" in segmentation
    assert "`quarf-hf demo --quick`" in restoration and "--task" not in restoration
    logic = SpaceLogic(SpaceModels())
    notes = logic.segment(None, "fog", 2, "chelsea")[-2]
    assert "`quarf-hf demo --quick --task segmentation`" in notes
    with pytest.raises(InputError, match=r"get one with `quarf-hf demo --quick --task segmentation`"):
        logic.sweep(None, "fog", "chelsea")
    with pytest.raises(InputError, match=r"get them with `quarf-hf demo --quick` "):
        logic.restore(None, "fog", 2, "chelsea")


def test_roles_match_the_documented_table():
    """docs/space.md's table of models: each role's variable and demo folder on one row."""
    text = (ROOT / "docs" / "space.md").read_text()
    rows = [line for line in text.split("## Models", 1)[1].splitlines() if line.startswith("|")]
    for role in ROLES.values():
        assert any(f"`{role.variable}`" in row and f"`outputs/demo/{role.demo_folders[0]}`" in row for row in rows), role
        assert role.revision_variable in text
    assert roles_of("segmentation") == ("quarf", "baseline")
    assert roles_of("restoration") == ("restoration", "plain_restoration")


def test_an_unknown_role_is_named():
    with pytest.raises(InputError, match=r"^role: expected one of quarf, baseline, restoration, plain_restoration, found 'segmenter'$"):
        prepare("segmenter", "somewhere", None)


def test_the_space_imports_no_command_module():
    """quarf_hf/space runs without the CLI (a Space has only the package): nothing in it imports
    quarf_hf.commands."""
    for path in sorted((ROOT / "quarf_hf" / "space").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                modules = ["." * node.level + (node.module or "")]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                assert "commands" not in module.split("."), f"{path.name} imports {module}"
