"""Every Python example in README.md runs, in order, in one namespace, and its asserts hold."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(python_blocks()) >= 2


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """Every Python block runs, in order; then every bash line that uses the folder they saved
    (`my-quarf-segformer`: evaluate, predict) runs verbatim through the real CLI."""
    import json
    import shlex

    from PIL import Image

    from quarf_hf.cli import main

    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for index, block in enumerate(python_blocks()):
        try:
            exec(compile(block, f"README.md python block {index}", "exec"), namespace)
        except Exception as err:  # name the block that failed
            raise AssertionError(f"README python block {index} failed: {err!r}\n{block}") from err
    Image.new("RGB", (96, 80), (120, 160, 200)).save("photo.png")  # the user's photo
    commands = [c for c in bash_commands() if c.startswith("quarf-hf") and "my-quarf-segformer" in c]
    assert {shlex.split(c)[1] for c in commands} == {"evaluate", "predict"}
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert len(results["corruptions"]) >= 15 and results["severities"] == [1, 2, 3, 4, 5]
    assert Image.open(tmp_path / "predictions" / "photo_segmentation.png").size == (96, 80)


def test_readme_quick_start_is_two_commands():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
    assert len(commands) == 2
    assert "quarf-hf demo" in commands[0]
    assert "pytest" in commands[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1].strip() in ci, ".ci/run must run the README's test command verbatim"


def bash_commands():
    """Every command of the README's bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line:
                commands.append(line)
    return commands


def test_readme_cli_commands_parse_with_the_real_parser():
    """Each `quarf-hf ...` line (and each `-m quarf_hf COMMAND ...` launch) names real sub-commands
    and flags: argparse exits on any unknown one, so a renamed flag fails here."""
    import shlex

    from quarf_hf.cli import build_parser

    parser = build_parser()
    checked = 0
    for command in bash_commands():
        for part in command.split("&&"):
            words = shlex.split(part)
            if words and words[0] == "quarf-hf":
                arguments = words[1:]
            elif "-m" in words and words[words.index("-m") + 1].startswith("quarf_hf"):
                module = words[words.index("-m") + 1]
                # The one module entry point takes the CLI's words: -m quarf_hf train CONFIG.
                assert module == "quarf_hf", f"README launches a module that does not exist: -m {module}"
                arguments = words[words.index("-m") + 2:]
            else:
                continue
            parser.parse_args(arguments)
            for word in arguments:
                if word.startswith("configs/"):
                    assert (README.parent / word).is_file(), f"README names a missing config: {word}"
            checked += 1
    assert checked >= 10
