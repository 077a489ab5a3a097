"""Bad training configs (``TrainConfig``), each refused in one line naming the setting. The rows are
``(id, entry point, call(world, out), exception type, text the message must contain)``; bad_input_world.py
says what every row asserts."""

import pytest

from bad_input_world import assert_api_refuses, train_config


def _train_config(**changes):
    def call(w, out):
        from quarf_hf.training import TrainConfig

        data = train_config(**changes)
        data["output_dir"] = str(out) if data.get("output_dir") == "{OUT}" else data["output_dir"]
        return TrainConfig.from_dict(data)
    return call


API = [
    # --- training config
    ("train task", "TrainConfig", _train_config(task="detection"), ValueError, "task"),
    ("train model type", "TrainConfig", _train_config(model={"type": "unet"}), ValueError, "model.type"),
    ("train model mismatch", "TrainConfig", _train_config(model={"type": "quarf_restoration"}), ValueError, "model.type"),
    ("train model list", "TrainConfig", _train_config(model=["quarf"]), ValueError, "model"),
    ("train no data", "TrainConfig", _train_config(data={}), ValueError, "data.train"),
    ("train data number", "TrainConfig", _train_config(data=5), ValueError, "data"),
    ("train data.train number", "TrainConfig", _train_config(data={"train": 5}), ValueError, "data.train"),
    ("train seed", "TrainConfig", _train_config(seed="x"), ValueError, "seed"),
    ("train batch size", "TrainConfig", _train_config(batch_size=0), ValueError, "batch_size"),
    ("train batch size text", "TrainConfig", _train_config(batch_size="eight"), ValueError, "batch_size"),
    ("train max steps", "TrainConfig", _train_config(max_steps=-1), ValueError, "max_steps"),
    ("train learning rate", "TrainConfig", _train_config(learning_rate="fast"), ValueError, "learning_rate"),
    ("train learning rate negative", "TrainConfig", _train_config(learning_rate=-1), ValueError, "learning_rate"),
    ("train schedule", "TrainConfig", _train_config(schedule="step"), ValueError, "schedule"),
    ("train precision", "TrainConfig", _train_config(mixed_precision="fp8"), ValueError, "mixed_precision"),
    ("train aug p", "TrainConfig", _train_config(augmentation={"policy": "degradation", "p": 2}), ValueError, "augmentation.p"),
    ("train aug corruption", "TrainConfig", _train_config(augmentation={"policy": "degradation", "corruptions": ["sunburn"]}), ValueError, "augmentation.corruptions"),
    ("train eval severity", "TrainConfig", _train_config(evaluation={"severities": [9]}), ValueError, "evaluation.severities"),
    ("train output_dir number", "TrainConfig", _train_config(output_dir=5), ValueError, "output_dir"),
    ("train grad norm", "TrainConfig", _train_config(max_grad_norm="big"), ValueError, "max_grad_norm"),
    ("train max minutes", "TrainConfig", _train_config(max_minutes="abc"), ValueError, "max_minutes"),
    ("train unknown key", "TrainConfig", _train_config(epochs=3), ValueError, "epochs"),
    ("train model base", "TrainConfig", _train_config(model={"type": "segformer", "base": 5}), ValueError, "model.base"),
    ("train keep checkpoints", "TrainConfig", _train_config(keep_checkpoints=0), ValueError, "keep_checkpoints"),
    ("train log ids", "TrainConfig", _train_config(log_sample_ids="yes"), ValueError, "log_sample_ids"),
]


@pytest.mark.parametrize("case", API, ids=[row[0] for row in API])
def test_api_refuses(bad_input_world, tmp_path, case):
    assert_api_refuses(bad_input_world, tmp_path, case)
