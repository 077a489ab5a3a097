"""Distributed runs: hard routing under DDP (experts an image did not choose get no gradient), and the
export through ``accelerator.get_state_dict`` (right under FSDP / ZeRO-3, where a process holds shards)."""

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import quarf_hf  # noqa: F401  (registers the Auto classes)
from quarf_hf.training import TrainConfig, train
from quarf_hf.training.segmentation import SegmentationTask
from test_training import _launch, tiny_config

# One group, four experts, one image per process: most experts idle in every step.
HARD = {"num_groups": 1, "experts": [[3, 1], [3, 2], [3, 4], [3, 8]], "mode": "hard", "top_k": 1}


def test_hard_routing_tells_ddp_about_unused_parameters(tmp_path):
    hard = tiny_config(tmp_path)
    hard["model"] = {**hard["model"], "quarf": HARD}
    assert SegmentationTask(TrainConfig.from_dict(hard)).unused_parameters
    assert not SegmentationTask(TrainConfig.from_dict(tiny_config(tmp_path))).unused_parameters


def test_export_saves_the_weights_accelerate_gathers(tmp_path, monkeypatch):
    """The exported folder holds what accelerator.get_state_dict returns (called on every process),
    not the unwrapped model's own state_dict."""
    from accelerate import Accelerator

    calls = []
    original = Accelerator.get_state_dict

    def gathered(self, model, unwrap=True):
        state = original(self, model, unwrap)
        calls.append((self.process_index, state["decode_head.classifier.bias"].clone()))
        return {k: (v + 1 if k == "decode_head.classifier.bias" else v) for k, v in state.items()}

    monkeypatch.setattr(Accelerator, "get_state_dict", gathered)
    data = tiny_config(tmp_path, max_steps=1, checkpoint_every=0, evaluation={},
                       data={"train": tiny_config(tmp_path)["data"]["train"]})
    train(TrainConfig.from_dict(data))
    saved = load_file(str(Path(data["output_dir"]) / "model" / "model.safetensors"))
    assert [index for index, _ in calls] == [0]
    torch.testing.assert_close(saved["decode_head.classifier.bias"], calls[0][1] + 1)


@pytest.mark.slow
def test_hard_routing_trains_under_two_process_ddp(tmp_path):
    """Two gloo ranks on CPU with hard routing (top-1: most experts idle in a batch): no unused-parameter
    error, and the folder the run saves loads and evaluates as the run's own evaluation said."""
    from transformers import AutoModelForSemanticSegmentation

    from quarf_hf.data import load_dataset_spec
    from quarf_hf.evaluation import evaluate_model

    data = tiny_config(tmp_path, name="hard", max_steps=3, batch_size=1, checkpoint_every=0,
                       data={"train": {"type": "quarf-shapes", "num_samples": 8, "size": 32, "seed": 0},
                             "validation": {"type": "quarf-shapes", "num_samples": 4, "size": 32, "seed": 99}},
                       evaluation={"corruptions": [], "severities": [3]})
    data["model"] = {**data["model"], "quarf": HARD}
    path = tmp_path / "hard.yaml"
    path.write_text(yaml.safe_dump(data))
    _launch([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
             "-m", "quarf_hf", "train", str(path)], tmp_path)
    out = Path(data["output_dir"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["steps"] == 3
    model = AutoModelForSemanticSegmentation.from_pretrained(out / "model")
    assert model.config.quarf["mode"] == "hard"
    single = evaluate_model(model, load_dataset_spec(data["data"]["validation"]), corruptions=[], severities=[3],
                            seed=0, batch_size=1, progress=False)
    assert single["clean"]["mIoU"] == pytest.approx(summary["evaluation"]["clean"]["mIoU"], abs=1e-6)
