"""The training loop's settings are defined and checked once (``training/settings.LoopSettings``) and
inherited by both training configs; the load-balancing weight lives in the model's config only."""

import ast
import dataclasses
from pathlib import Path

import pytest
import yaml

from quarf_hf.quality_training import QualityTrainConfig
from quarf_hf.training import LoopSettings, TrainConfig, load_train_config
from quarf_hf.training.loop import accelerator_settings
from test_quality_training import tiny_config as quality_config
from test_training import tiny_config as train_config

PACKAGE = Path(__file__).resolve().parents[1] / "quarf_hf"
CONFIGS = {"train": (TrainConfig, train_config), "train-quality": (QualityTrainConfig, quality_config)}


def own_fields(cls) -> set[str]:
    """The fields a config class declares itself (not inherited, no ClassVar)."""
    inherited = {f.name for base in cls.__mro__[1:] if dataclasses.is_dataclass(base) for f in dataclasses.fields(base)}
    return {f.name for f in dataclasses.fields(cls)} - inherited


def test_no_loop_setting_is_defined_in_both_training_configs():
    """Both configs are LoopSettings; what each declares itself is its task's, and the only names they
    share are the two task sections ``model`` and ``data`` (different keys, checked by each task)."""
    loop = {f.name for f in dataclasses.fields(LoopSettings)}
    assert {"output_dir", "seed", "max_steps", "batch_size", "gradient_accumulation_steps", "learning_rate",
            "schedule", "mixed_precision", "checkpoint_every", "tracker", "push_to_hub", "overwrite"} <= loop
    train, quality = own_fields(TrainConfig), own_fields(QualityTrainConfig)
    assert issubclass(TrainConfig, LoopSettings) and issubclass(QualityTrainConfig, LoopSettings)
    assert not (train | quality) & loop
    assert train & quality == {"model", "data"}


@pytest.mark.parametrize("command", CONFIGS)
def test_each_config_keeps_its_own_defaults(tmp_path, command):
    """The defaults each command had before the settings were shared (the values the two classes
    declared), now each config's LOOP_DEFAULTS."""
    cls, make = CONFIGS[command]
    data = make(tmp_path)
    for key in ("output_dir", "max_steps", "batch_size", "learning_rate", "weight_decay", "schedule"):
        data.pop(key, None)
    if command == "train-quality":
        data["corruptions"] = "all"  # the default batch of 16 needs 8 classes
    config = cls.from_dict(data)
    expected = {"train": ("outputs/train", 100, 8, 6e-4, 0.01, "poly"),
                "train-quality": ("outputs/train-quality", 200, 16, 1e-3, 1e-4, "cosine")}[command]
    assert (config.output_dir, config.max_steps, config.batch_size, config.learning_rate, config.weight_decay,
            config.schedule) == expected
    assert config.seed == 0 and config.max_grad_norm == 1.0 and config.max_minutes is None


BAD_LOOP_VALUES = [
    ("schedule", "step"), ("mixed_precision", "fp8"), ("tracker", "wandbb"), ("batch_size", 0),
    ("max_steps", "many"), ("gradient_accumulation_steps", 0), ("warmup_steps", -1), ("keep_checkpoints", 0),
    ("checkpoint_every", -2), ("learning_rate", "fast"), ("weight_decay", -1), ("max_minutes", "abc"),
    ("max_grad_norm", "big"), ("seed", "x"), ("output_dir", 5), ("overwrite", "yes"), ("push_to_hub", 5),
    ("name", ["a"]),
]


@pytest.mark.parametrize("key, value", BAD_LOOP_VALUES, ids=[key for key, _ in BAD_LOOP_VALUES])
def test_a_bad_loop_value_gets_the_same_one_line_error_from_both_configs(tmp_path, key, value):
    """One check: the same message from train's and train-quality's config, one line naming the key
    (before, train-quality did not check output_dir, seed, push_to_hub, name or max_grad_norm)."""
    messages = []
    for cls, make in CONFIGS.values():
        data = make(tmp_path)
        data[key] = value  # (not as an argument: the helpers' ``name`` is the output folder's)
        with pytest.raises(ValueError) as caught:
            cls.from_dict(data)
        messages.append(str(caught.value))
    assert messages[0] == messages[1], messages
    assert messages[0].startswith(f"{key}: ") and "\n" not in messages[0]


@pytest.mark.parametrize("schedule", ["poly", "cosine", "constant"])
def test_both_configs_take_every_schedule_the_loop_has(tmp_path, schedule):
    for cls, make in CONFIGS.values():
        assert cls.from_dict(make(tmp_path, schedule=schedule)).schedule == schedule


def test_the_loop_reads_either_config():
    """accelerate's settings come from the shared fields of either training config."""
    for cls, make in CONFIGS.values():
        config = cls.from_dict(make(Path("unused"), mixed_precision="no", gradient_accumulation_steps=3))
        kwargs, _ = accelerator_settings(config, {})
        assert kwargs["mixed_precision"] == "no" and kwargs["gradient_accumulation_plugin"].num_steps == 3


def test_quality_training_imports_nothing_private_from_training():
    """train-quality is a second task of the same loop: it uses only training's public names."""
    private = []
    for path in sorted((PACKAGE / "quality_training").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and "training" in (node.module or "") and node.level >= 2:
                private += [f"{path.name}: {alias.name}" for alias in node.names if alias.name.startswith("_")]
    assert private == []


def test_the_load_balancing_weight_is_the_models_setting(tmp_path):
    """At the top level (its old place) it is refused with where it moved; in ``model.config`` it is
    checked with the config, naming that key."""
    with pytest.raises(ValueError, match=r"^load_balancing_weight: .*model\.config\.load_balancing_weight") as caught:
        TrainConfig.from_dict(train_config(tmp_path, load_balancing_weight=0.1))
    assert "\n" not in str(caught.value)
    data = train_config(tmp_path)
    data["model"] = {**data["model"], "config": {**data["model"]["config"], "load_balancing_weight": "heavy"}}
    with pytest.raises(ValueError, match=r"^model\.config\.load_balancing_weight: expected a finite number"):
        TrainConfig.from_dict(data)
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(train_config(tmp_path, load_balancing_weight=0.0)))
    with pytest.raises(ValueError, match="model.config.load_balancing_weight"):
        load_train_config(path)


def test_the_shipped_configs_set_the_weight_in_the_model_section():
    root = PACKAGE.parent / "configs"
    for name in ("quarf", "static"):
        raw = yaml.safe_load((root / f"{name}.yaml").read_text())
        assert "load_balancing_weight" not in raw and raw["model"]["config"]["load_balancing_weight"] == 0.0
        assert load_train_config(root / f"{name}.yaml").model["config"]["load_balancing_weight"] == 0.0
