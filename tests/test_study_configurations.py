"""Every config the repository ships or keeps loads with today's loaders (configs/, benchmarks/study/), and
benchmarks/study/configurations.py reads the study's output layout (so neither can rot silently again)."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from quarf_hf.study import load_study_config
from quarf_hf.study.runner import run_dir
from quarf_hf.training import load_train_config

REPO = Path(__file__).resolve().parents[1]
YAMLS = sorted([*(REPO / "configs").rglob("*.yaml"), *(REPO / "benchmarks" / "study").rglob("*.yaml")])


def test_the_kept_configs_are_all_found():
    names = {p.relative_to(REPO).as_posix() for p in YAMLS}
    assert {"configs/study.yaml", "configs/study-restoration.yaml", "configs/quarf.yaml",
            "benchmarks/study/quarf_d1234.yaml", "benchmarks/study/quarf_mlp.yaml",
            "benchmarks/study/single_expert.yaml", "benchmarks/study/study_issue11.yaml"} <= names


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_config_loads(path):
    data = yaml.safe_load(path.read_text())
    if "arms" in data:  # a study config
        config = load_study_config(path)
        assert config.run_names()[0] == "base" and set(config.arms) <= set(config.run_names())
    else:
        config = load_train_config(path)
        assert config.max_steps > 0


def test_the_tuning_configs_keep_the_first_studys_recipe():
    """The two tuning configs of the first segmentation study (study_issue11.yaml) keep its protocol, seeds and
    evaluated scenes, and share their runs."""
    d1234, mlp = (load_study_config(REPO / "benchmarks" / "study" / f"{n}.yaml") for n in ("quarf_d1234", "quarf_mlp"))
    assert d1234.protocol == "scratch" and d1234.pilot == [0, 1, 2, 3, 4]
    assert d1234.images["development"] == {"type": "quarf-shapes", "num_samples": 48, "size": 48, "seed": 10000}
    for arm in ("base", "augmentation", "static", "quarf"):
        assert d1234.fingerprint(arm, 0) == mlp.fingerprint(arm, 0), arm
    for key in ("base", "kinds", "images", "protocol", "pretrain", "effect", "primary"):  # what an --out folder pins
        assert getattr(d1234, key) == getattr(mlp, key), key


def _load_script():
    spec = importlib.util.spec_from_file_location("configurations", REPO / "benchmarks" / "study" / "configurations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_result(out, arm, seed, score):
    folder = run_dir(out, arm, seed)
    folder.mkdir(parents=True)
    evaluation = {"mean_corrupted": {"mIoU": score}, "clean": {"mIoU": score + 0.1},
                  "per_image": {"clean": [score + 0.1] * 3, "shot_noise/3": [score - 0.01, score, score + 0.01]}}
    (folder / "result.json").write_text(json.dumps({"name": arm, "seed": seed, "splits": {"development": evaluation}}))


def test_configurations_table_reads_the_runner_layout(tmp_path):
    scores = {"augmentation": 0.25, "static": 0.26, "quarf": 0.24, "quarf_d1234": 0.29}
    for arm, score in scores.items():
        for seed in range(5):
            _write_result(tmp_path, arm, seed, score + 0.01 * seed * (arm == "quarf_d1234"))
    rows = {line.split(" | ")[0].lstrip("| "): line for line in _load_script().table(tmp_path).splitlines()[2:]}
    assert "| 5 | 0.250 ± 0.000 |" in rows["augmentation (control)"]
    # quarf_d1234 minus static: 0.03 + 0.01 * seed, every seed won; minus augmentation 0.04 + ...
    assert "| 5 | 0.310 ± 0.016 | +0.050 [" in rows["quarf_d1234"] and "won 5/5 | +0.060 [" in rows["quarf_d1234"]
    assert "won 0/5" in rows["quarf"]
    assert "not run to completion" in rows["quarf_mlp"]  # no runs: said, not skipped
    main = tmp_path / "first-study"
    for seed in range(5):
        _write_result(main, "static", seed, 0.27)
    text = _load_script().table(tmp_path, main)
    assert "| static (control, dilations 1/2/3/4: run after the choice) | - | 5 | 0.270 ± 0.000 |" in text
