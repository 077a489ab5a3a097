"""accelerate's own settings: what the YAML leaves unset comes from ``accelerate launch`` (flags or
its config file); set in both, the YAML wins and a line says so; any tracker accelerate supports."""

import json
import sys
from pathlib import Path

import pytest
import yaml

import quarf_hf  # noqa: F401  (registers the Auto classes)
from quarf_hf.training import TrainConfig, train
from quarf_hf.training.loop import accelerator_settings
from test_training import _launch, tiny_config


def test_unset_settings_are_left_to_accelerate(tmp_path):
    config = TrainConfig.from_dict(tiny_config(tmp_path))
    assert config.mixed_precision is None and config.gradient_accumulation_steps is None
    kwargs, notes = accelerator_settings(config, {"ACCELERATE_MIXED_PRECISION": "bf16",
                                                  "ACCELERATE_GRADIENT_ACCUMULATION_STEPS": "2"})
    assert kwargs == {} and notes == []


def test_the_yaml_wins_and_says_so(tmp_path):
    config = TrainConfig.from_dict(tiny_config(tmp_path, mixed_precision="no", gradient_accumulation_steps=3))
    kwargs, notes = accelerator_settings(config, {"ACCELERATE_MIXED_PRECISION": "bf16",
                                                  "ACCELERATE_GRADIENT_ACCUMULATION_STEPS": "2"})
    assert kwargs["mixed_precision"] == "no" and kwargs["gradient_accumulation_plugin"].num_steps == 3
    assert notes == ["mixed_precision: the config's 'no' overrides accelerate's 'bf16' (ACCELERATE_MIXED_PRECISION)",
                     "gradient_accumulation_steps: the config's 3 overrides accelerate's '2' "
                     "(ACCELERATE_GRADIENT_ACCUMULATION_STEPS)"]
    # The same value in both places: nothing to say.
    assert accelerator_settings(config, {"ACCELERATE_MIXED_PRECISION": "no",
                                         "ACCELERATE_GRADIENT_ACCUMULATION_STEPS": "3"})[1] == []


def test_accelerates_environment_reaches_the_run(tmp_path, monkeypatch):
    """In-process, the variables `accelerate launch` sets decide the run's precision and accumulation."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "2")
    try:
        summary = train(TrainConfig.from_dict(tiny_config(tmp_path, max_steps=1, checkpoint_every=0, evaluation={},
                                                          data={"train": tiny_config(tmp_path)["data"]["train"]})))
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    assert summary["mixed_precision"] == "bf16" and summary["gradient_accumulation_steps"] == 2


@pytest.mark.parametrize("tracker", ["tensorboard", "wandb"])
def test_trackers_accelerate_supports_log_offline(tmp_path, monkeypatch, tracker):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    data = tiny_config(tmp_path, max_steps=2, checkpoint_every=0, tracker=tracker, evaluation={},
                       data={"train": tiny_config(tmp_path)["data"]["train"]})
    summary = train(TrainConfig.from_dict(data))
    assert summary["steps"] == 2
    if tracker == "tensorboard":
        events = list(Path(data["output_dir"]).rglob("events.out.tfevents.*"))
    else:
        events = list(tmp_path.rglob("*.wandb"))
    assert events and all(e.stat().st_size > 0 for e in events)


def test_unknown_tracker_is_refused_with_the_list(tmp_path):
    with pytest.raises(ValueError, match="tracker: expected one of .*wandb.*mlflow"):
        TrainConfig.from_dict(tiny_config(tmp_path, tracker="wandbb"))


@pytest.mark.slow
def test_accelerate_launch_mixed_precision_flag_is_honoured(tmp_path):
    """``accelerate launch --mixed_precision bf16`` with a YAML that does not set it: the run is bf16;
    with a YAML that says "no", the YAML wins and the log says so."""
    results = {}
    for name, extra in (("silent", {}), ("explicit", {"mixed_precision": "no"})):
        data = tiny_config(tmp_path, name=name, max_steps=1, checkpoint_every=0, evaluation={},
                           data={"train": tiny_config(tmp_path)["data"]["train"]}, **extra)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        result = _launch([sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
                          "--num_machines", "1", "--mixed_precision", "bf16", "--dynamo_backend", "no",
                          "-m", "quarf_hf", "train", str(path)], tmp_path)
        results[name] = (json.loads((Path(data["output_dir"]) / "summary.json").read_text()), result.stdout)
    assert results["silent"][0]["mixed_precision"] == "bf16"
    assert results["explicit"][0]["mixed_precision"] == "no"
    assert "mixed_precision: the config's 'no' overrides accelerate's 'bf16'" in results["explicit"][1]
