"""The README and docs/ say only what runs.

Every ```python block of README.md and docs/*.md runs ON ITS OWN (a fresh namespace, an empty
temporary working directory), so a reader can copy any one of them; every `quarf-hf ...` line
(and every `-m quarf_hf COMMAND ...` launch) parses with the real CLI parser; the commands that
use the README's saved model run through the real CLI; every repository path the text names
exists; the README stays a front page of at most 10 KB whose quick start is the two commands that
.ci/run runs.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_LIMIT = 10_000  # bytes
# Fences a page may use; anything else (``python no-run``, ``py``) would hide a block from the tests.
FENCE_LANGUAGES = {"", "python", "bash", "yaml"}
# Top-level folders of the repository: a backticked word starting with one of them is a path.
REPO_PATH = re.compile(r"^(?:quarf_hf|configs|benchmarks|tests|hub_configs|spaces|docs|\.ci)/[\w./-]*$")


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def python_blocks() -> list[tuple[str, int, str]]:
    return [(relative(page), index, code)
            for page in PAGES for index, code in enumerate(fenced(page.read_text(), "python"))]


PYTHON_BLOCKS = python_blocks()


def make_contrique_folder(folder: Path) -> None:
    """A tiny ContriqueModel folder standing in for the converted CONTRIQUE (whose weights are not in
    the repository): quality.md's block uses the folder `quarf-hf convert-contrique` writes."""
    from quarf_hf import ContriqueConfig, ContriqueModel

    ContriqueModel(ContriqueConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1])
                   ).save_pretrained(folder)


# Folders that a bash command above a block writes (a download or a conversion of files the
# repository does not hold); the test makes a tiny stand-in when a block names one it does not make.
STAND_INS = {"contrique-resnet50": make_contrique_folder}


def test_pages_have_python_blocks():
    counts = {relative(page): len(fenced(page.read_text(), "python")) for page in PAGES}
    assert counts["README.md"] >= 3, counts
    assert sum(counts.values()) >= 15, counts


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_fences_are_known_languages(page):
    """A block fenced as anything but python/bash/yaml/plain would silently escape these tests."""
    fences = re.findall(r"^```(.*)$", page.read_text(), flags=re.M)
    assert len(fences) % 2 == 0, f"{relative(page)}: an unclosed ``` fence"
    openings = fences[0::2]
    assert set(openings) <= FENCE_LANGUAGES, f"{relative(page)}: fences {sorted(set(openings) - FENCE_LANGUAGES)}"


@pytest.mark.parametrize("page, index, code", PYTHON_BLOCKS,
                         ids=[f"{page}#{index}" for page, index, _ in PYTHON_BLOCKS])
def test_python_block_runs_alone(page, index, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, make in STAND_INS.items():
        if f'"{name}"' in code and f'save_pretrained("{name}")' not in code:
            make(tmp_path / name)
    namespace = {"__name__": "__main__"}  # fresh: nothing from another block
    try:
        exec(compile(code, f"{page} python block {index}", "exec"), namespace)
    except Exception as err:  # name the block that failed
        raise AssertionError(f"{page} python block {index} failed alone: {err!r}\n{code}") from err


def bash_commands(page: Path) -> list[str]:
    """Every command of a page's bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in fenced(page.read_text(), "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line:
                commands.append(line)
    return commands


def cli_arguments(command: str) -> list[str] | None:
    """The words the quarf-hf parser gets from one shell command, or None when it runs no quarf_hf
    command: `quarf-hf ARGS` and `... -m quarf_hf ARGS` (accelerate launch, torchrun, python)."""
    words = shlex.split(command)
    if words and words[0] == "quarf-hf":
        return words[1:]
    if "-m" in words:
        module = words[words.index("-m") + 1]
        if module == "quarf_hf":
            return words[words.index("-m") + 2:]
        assert not module.startswith("quarf_hf."), f"{command!r}: the entry point is `-m quarf_hf COMMAND`"
    return None


def test_cli_commands_parse_with_the_real_parser():
    """Each `quarf-hf ...` line and `-m quarf_hf ...` launch names real sub-commands and flags:
    argparse exits on any unknown one, so a renamed flag fails here."""
    from quarf_hf.cli import build_parser

    parser = build_parser()
    checked = set()
    for page in PAGES:
        for command in bash_commands(page):
            for part in command.split("&&"):
                arguments = cli_arguments(part)
                if arguments is None:
                    continue
                try:
                    parser.parse_args(arguments)
                except SystemExit:
                    raise AssertionError(f"{relative(page)}: {part.strip()!r} does not parse") from None
                checked.add(arguments[0])
    # every training entry point and most commands appear somewhere
    assert checked >= {"demo", "train", "train-quality", "evaluate", "predict", "build", "space"}, checked


def test_commands_on_the_readme_model_run(tmp_path, monkeypatch):
    """The README block that saves `my-quarf-segformer` runs alone; then every bash line of the README
    and docs that uses that folder (evaluate, predict) runs verbatim through the real CLI."""
    import json

    from PIL import Image

    from quarf_hf.cli import main

    monkeypatch.chdir(tmp_path)
    makers = [code for page, _, code in PYTHON_BLOCKS
              if page == "README.md" and 'save_pretrained("my-quarf-segformer")' in code]
    assert len(makers) == 1
    exec(compile(makers[0], "README.md model block", "exec"), {"__name__": "__main__"})
    Image.new("RGB", (96, 80), (120, 160, 200)).save("photo.png")  # the user's photo
    commands = {command for page in PAGES for command in bash_commands(page)
                if command.startswith("quarf-hf") and "my-quarf-segformer" in command}
    assert {shlex.split(c)[1] for c in commands} == {"evaluate", "export", "predict"}
    for command in sorted(commands):
        assert main(shlex.split(command)[1:]) == 0, command
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert len(results["corruptions"]) >= 15 and results["severities"] == [1, 2, 3, 4, 5]
    assert Image.open(tmp_path / "predictions" / "photo_segmentation.png").size == (96, 80)
    assert (tmp_path / "my-quarf-segformer-onnx" / "model.onnx").is_file()


def test_readme_quick_start_is_two_commands():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = fenced(quick, "bash")
    assert len(commands) == 2
    assert "quarf-hf demo" in commands[0]
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].strip() in ci, ".ci/run must run the README's test command verbatim"


def test_readme_is_a_front_page():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move detail to docs/ (limit {README_LIMIT})"


def test_every_command_is_in_the_tables():
    """README's and docs/cli.md's command tables list every sub-command of the CLI, one row each."""
    from quarf_hf.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    names = set(subparsers.choices)
    for page in (README, ROOT / "docs" / "cli.md"):
        rows = re.findall(r"^\| `([\w-]+)` \|", page.read_text(), flags=re.M)
        assert sorted(rows) == sorted(names), f"{relative(page)}: rows {rows}, commands {sorted(names)}"


def test_docs_index_links_every_page():
    index = (ROOT / "docs" / "index.md").read_text()
    for page in DOCS:
        if page.name != "index.md":
            assert f"]({page.name})" in index, f"docs/index.md does not link {page.name}"


@pytest.mark.parametrize("page", [*PAGES, ROOT / "ARCHITECTURE.md", *sorted((ROOT / "benchmarks").glob("*.md")),
                                  ROOT / "spaces" / "quarf-demo" / "README.md"], ids=relative)
def test_named_paths_exist(page):
    """Every repository path written in backticks, and every relative link, exists."""
    text = page.read_text()
    missing = []
    for word in re.findall(r"`([^`\s]+)`", text):
        if REPO_PATH.match(word) and not (ROOT / word).exists():
            missing.append(word)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"^[a-z]+:", target) and not (page.parent / target.split("#")[0]).exists():
            missing.append(target)
    assert not missing, f"{relative(page)} names missing paths: {missing}"
