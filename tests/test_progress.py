"""The one progress bar (quarf_hf.progress.progress_bar): a log file gets a few lines however
many steps a run has, a terminal is still redrawn on every update, and every bar in the package
goes through it."""

import ast
import io
from pathlib import Path

from quarf_hf.progress import LOG_INTERVAL, progress_bar

ROOT = Path(__file__).resolve().parents[1]


class Terminal(io.StringIO):
    """An in-memory stream that says it is a terminal."""

    def isatty(self):
        return True


def run_bar(stream, steps: int) -> str:
    """What a training-loop-like bar writes to ``stream``: one update and one postfix per step.
    ``mininterval=0`` is what makes plain tqdm write on every step."""
    bar = progress_bar(total=steps, file=stream, desc="train", mininterval=0)
    for step in range(steps):
        bar.update(1)
        bar.set_postfix(loss=f"{1 / (step + 1):.4f}")
    bar.close()
    return stream.getvalue()


def test_a_log_file_gets_the_first_and_the_last_state_only():
    """Plain tqdm with these arguments writes about 5000 redraws (hundreds of KB) to the log;
    the whole run takes far less than LOG_INTERVAL, so only the opening and closing lines remain."""
    text = run_bar(io.StringIO(), steps=2500)
    assert LOG_INTERVAL >= 30
    assert text.count("\r") <= 3, text
    assert len(text) < 1000, len(text)
    assert "2500/2500" in text and "loss=0.0004" in text  # the last state is written


def test_a_terminal_is_still_redrawn_on_every_update():
    text = run_bar(Terminal(), steps=200)
    assert text.count("\r") >= 200
    assert "100/200" in text and "200/200" in text


def test_a_stream_without_isatty_counts_as_a_log():
    class Pipe:
        def __init__(self):
            self.parts = []

        def write(self, text):
            self.parts.append(text)

        def flush(self):
            pass

    pipe = Pipe()
    bar = progress_bar(total=500, file=pipe, mininterval=0)
    for _ in range(500):
        bar.update(1)
    bar.close()
    assert len("".join(pipe.parts)) < 500


def test_every_progress_bar_in_the_package_is_the_helper():
    """No module but quarf_hf/progress.py imports tqdm, so no bar writes a line per step to a log."""
    importers = []
    for path in sorted((ROOT / "quarf_hf").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "tqdm" for name in names):
                importers.append(path.relative_to(ROOT).as_posix())
    assert sorted(set(importers)) == ["quarf_hf/progress.py"]
