"""``quarf-hf bench``: lists the repository's benchmarks, rejects unknown names, forwards arguments."""

import re
from pathlib import Path

import pytest

from quarf_hf.commands import bench
from quarf_hf.cli import main

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_list_names_every_script(capsys):
    scripts = sorted(BENCHMARKS.glob("bench_*.py"))
    assert scripts
    assert main(["bench", "--list"]) == 0
    printed = capsys.readouterr().out
    for script in scripts:
        assert re.search(rf"^{script.stem[len('bench_'):]}\s+{script.name}", printed, flags=re.M), script.name


def test_unknown_name_exits_2_naming_the_known_ones(capsys):
    assert main(["bench", "no_such_benchmark", "--", "--quick"]) == 2
    error = capsys.readouterr().err
    assert "no_such_benchmark" in error
    for script in BENCHMARKS.glob("bench_*.py"):
        assert script.stem[len("bench_"):] in error


def test_missing_benchmarks_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "benchmarks_dir", lambda: tmp_path / "benchmarks")
    assert main(["bench", "--list"]) == 2
    assert "source repository" in capsys.readouterr().err


@pytest.mark.parametrize(
    "words, expected",
    [
        ([], ([], [], False)),
        (["a", "b"], (["a", "b"], [], False)),
        (["a", "--", "--quick", "x"], (["a"], ["--quick", "x"], False)),
        (["--", "--quick"], ([], ["--quick"], False)),
        (["a", "--quick"], (["a"], ["--quick"], False)),  # a Python that drops `--`
        (["a", "--list"], (["a"], [], True)),
    ],
)
def test_split_arguments(words, expected):
    assert bench.split_arguments(words) == expected


def test_exit_code_and_forwarded_arguments(monkeypatch, tmp_path, capsys):
    """Scripts run with the arguments after `--`; every selected script runs; the first failure's code is returned."""
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "bench_ok.py").write_text('"""Fine."""\nimport sys\nprint("ok", sys.argv[1:])\n')
    (folder / "bench_fail.py").write_text("import sys\nprint('failing', file=sys.stderr)\nsys.exit(3)\n")
    monkeypatch.setattr(bench, "benchmarks_dir", lambda: folder)
    assert main(["bench", "fail", "ok", "--", "--size", "8"]) == 3
    captured = capsys.readouterr()
    assert "ok ['--size', '8']" in captured.out and "failing" in captured.err


@pytest.mark.slow
def test_quarf_block_quick_runs(capsys):
    """The block benchmark's smoke run (about 5 s) prints its ratio columns."""
    assert main(["bench", "quarf_block", "--", "--quick", "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert "ref/ours" in printed
    assert re.search(r"\d+\.\d+x", printed)


@pytest.mark.slow
def test_end_to_end_quick_runs(capsys):
    """The end-to-end benchmark's smoke run prints a ratio for inference, the training step and the profile."""
    assert main(["bench", "end_to_end", "--", "--quick", "--qualities", "brisque", "--no-memory"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"infer b1\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+x", printed)
    assert re.search(r"train b1\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+x", printed)
    assert "quality extraction" in printed and "block (incl. router)" in printed
