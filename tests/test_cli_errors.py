"""How ``quarf-hf`` reports a failure: one line for the user's mistakes, a traceback for bugs.

The rule is by type, not by message: :class:`~quarf_hf.models.checks.InputError` (and
``InputTypeError``), ``OSError`` and YAML errors are the user's to fix; anything else is a bug.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import quarf_hf.cli
from quarf_hf.cli import main, user_error_message
from quarf_hf.models.checks import InputError, InputTypeError, check_int

PACKAGE = Path(quarf_hf.cli.__file__).parent


def run_command(monkeypatch, func) -> int:
    """``quarf-hf`` with a command whose body is ``func`` (the real dispatch and error handling)."""

    class Parser:
        def parse_args(self, argv):
            return argparse.Namespace(command="fake", func=func)

    monkeypatch.setattr(quarf_hf.cli, "build_parser", lambda: Parser())
    return main([])


def raising(err: BaseException):
    def func(args):
        raise err

    return func


def yaml_error() -> yaml.YAMLError:
    try:
        yaml.safe_load("key: [unclosed")
    except yaml.YAMLError as err:
        return err
    raise AssertionError("the YAML above should not parse")


@pytest.mark.parametrize("err, named", [
    (InputError("--out: expected an empty folder, found a file"), "--out"),
    (InputTypeError("images[0]: expected a path, found int"), "images[0]"),
    (FileNotFoundError(2, "No such file or directory", "missing.png"), "missing.png"),
    (yaml_error(), "invalid YAML"),
], ids=["InputError", "InputTypeError", "OSError", "YAMLError"])
def test_user_errors_are_one_line_and_exit_2(monkeypatch, capsys, err, named):
    assert run_command(monkeypatch, raising(err)) == 2
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("quarf-hf fake: error: ") and named in lines[0], lines[0]


def test_a_check_helper_failure_is_a_user_error(monkeypatch, capsys):
    assert run_command(monkeypatch, lambda args: check_int("--steps", 0)) == 2
    assert "--steps: expected an integer >= 1, found 0" in capsys.readouterr().err


def test_a_plain_value_error_is_a_bug_even_when_it_reads_like_bad_input(monkeypatch):
    """No message matching: a ``raise ValueError("bad value")`` from package code keeps its traceback."""
    with pytest.raises(ValueError, match="bad value"):
        run_command(monkeypatch, raising(ValueError("--out: bad value")))
    with pytest.raises(TypeError):
        run_command(monkeypatch, lambda args: len(5))


def test_user_error_message():
    assert user_error_message(InputError("x:   expected\n a tensor")) == "x: expected a tensor"
    assert user_error_message(ValueError("--out: exists")) is None
    try:
        int("seven")
    except ValueError as err:  # Python's own, with a colon in it
        assert user_error_message(err) is None
    message = user_error_message(FileNotFoundError(2, "No such file or directory", "a.png"))
    assert message == "a.png: No such file or directory"


def test_the_real_cli_prints_one_line(tmp_path):
    """End to end, in a fresh Python: a bad argument is one line on stderr and exit status 2."""
    result = subprocess.run([sys.executable, "-m", "quarf_hf", "bench", "warp-speed"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-1000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "warp-speed" in lines[0], result.stderr[-1000:]


def test_no_plain_value_or_type_error_raises_in_the_package():
    """Every deliberate refusal in quarf_hf raises InputError / InputTypeError (else the CLI shows a
    traceback for it). Convert new ones with the checks helpers or ``raise InputError(...)``."""
    plain = re.compile(r"\braise\s+(ValueError|TypeError)\(")
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if plain.search(line)]
    assert found == [], "\n".join(found)
