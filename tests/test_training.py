"""Fine-tuning with accelerate on the tiny synthetic task: configs, a run and its outputs, resume,
and a real two-process run (torchrun, gloo on CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import quarf_hf  # noqa: F401  (registers the Auto classes)
from quarf_hf.training import TrainConfig, load_train_config, train
from quarf_hf.training import loop as training_loop
from tiny_models import segformer_config

REPO = Path(__file__).resolve().parents[1]
TINY_SEGFORMER = segformer_config(sr_ratios=[2, 1, 1, 1])


def tiny_config(tmp_path, name="run", **overrides) -> dict:
    config = {
        "task": "segmentation",
        "output_dir": str(tmp_path / name),
        "model": {"type": "quarf_segformer", "quality": "brisque", "config": TINY_SEGFORMER,
                  "quarf": {"num_groups": 2, "experts": [[3, 1], [3, 2]], "top_k": 2}},
        "data": {"train": {"type": "quarf-shapes", "num_samples": 16, "size": 32, "seed": 0},
                 "validation": {"type": "quarf-shapes", "num_samples": 4, "size": 32, "seed": 99}},
        "augmentation": {"policy": "degradation", "p": 0.5, "corruptions": ["gaussian_noise", "gaussian_blur"]},
        "evaluation": {"corruptions": ["shot_noise"], "severities": [2]},
        "max_steps": 4,
        "batch_size": 4,
        "learning_rate": 0.002,
        "checkpoint_every": 2,
        "keep_checkpoints": 1,
    }
    config.update(overrides)
    return config


def weights(folder) -> dict:
    return load_file(str(Path(folder) / "model.safetensors"))


def test_configs_of_the_four_arms_load():
    """configs/ holds the demo's four arms; they differ only where the comparison says."""
    arms = {name: load_train_config(REPO / "configs" / f"{name}.yaml")
            for name in ("baseline", "augmentation", "static", "quarf")}
    assert arms["baseline"].model["type"] == "segformer" and arms["baseline"].augmentation["policy"] == "none"
    assert arms["augmentation"].model["type"] == "segformer" and arms["augmentation"].augmentation["policy"] == "degradation"
    assert arms["quarf"].model["type"] == "quarf_segformer" and arms["quarf"].augmentation == arms["augmentation"].augmentation
    assert arms["quarf"].data == arms["baseline"].data and arms["quarf"].evaluation == arms["baseline"].evaluation
    # The static control is the QuARF arm with a constant in place of the quality features.
    assert arms["static"].model["quality"] == {"type": "constant", "dim": 36} and arms["quarf"].model["quality"] == "brisque"
    assert {k: v for k, v in arms["static"].model.items() if k != "quality"} == \
        {k: v for k, v in arms["quarf"].model.items() if k != "quality"}
    assert arms["static"].augmentation == arms["quarf"].augmentation and arms["static"].data == arms["quarf"].data
    # Evaluation kinds are held out from the augmentation kinds.
    assert not set(arms["quarf"].evaluation["corruptions"]) & set(arms["quarf"].augmentation["corruptions"])


@pytest.mark.parametrize("change, message", [
    ({"task": "detection"}, "task"),
    ({"model": {"type": "resnet"}}, "model.type"),
    ({"model": {"type": "quarf_restoration"}}, "model.type"),
    ({"batch_size": 0}, "batch_size"),
    ({"augmentation": {"policy": "degradation", "p": 1.5}}, "augmentation.p"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"colour": "red"}, "unknown keys"),
    ({"data": {}}, "data.train"),
])
def test_bad_config_names_the_key(tmp_path, change, message):
    data = tiny_config(tmp_path)
    data.update(change)
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(data)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="CONFIG"):
        load_train_config(tmp_path / "nope.yaml")


def test_run_writes_a_loadable_model_with_card_and_keeps_last_checkpoints(tmp_path):
    """A short QuARF run: loss is finite, the final folder loads through the Auto classes (outside
    quarf_hf too, as the card says), the card holds the evaluation table, only K checkpoints stay."""
    from transformers import AutoModelForSemanticSegmentation

    config = TrainConfig.from_dict(tiny_config(tmp_path, max_steps=6))
    summary = train(config)
    out = Path(config.output_dir)
    assert summary["steps"] == 6 and not summary["stopped_early"]
    evaluation = summary["evaluation"]
    assert 0.0 <= evaluation["clean"]["mIoU"] <= 1.0
    assert set(evaluation["corruptions"]) == {"shot_noise"}
    assert len(evaluation["clean"]["routing"]) == 2 and abs(sum(evaluation["clean"]["routing"]) - 1) < 1e-4
    assert json.loads((out / "summary.json").read_text())["steps"] == 6
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["step-00000006"]  # keep_checkpoints=1: older ones removed, no staging left
    folder = out / "model"
    card = (folder / "README.md").read_text()
    assert "## Evaluation" in card and "shot_noise" in card and "pipeline_tag: image-segmentation" in card
    assert (folder / "preprocessor_config.json").is_file() and (folder / "modeling_quarf_segformer.py").is_file()
    model = AutoModelForSemanticSegmentation.from_pretrained(folder).eval()
    assert type(model).__name__ == "QuarfSegformerForSemanticSegmentation"
    assert model.config.num_labels >= 3 and model.config.id2label[0] == "background"


def test_training_changes_the_weights_and_keeps_the_quality_extractor_frozen(tmp_path):
    """The trained folder against the initial weights (rebuilt from the same seed, as the loop does)."""
    from accelerate.utils import set_seed

    from quarf_hf.data import load_dataset_spec
    from quarf_hf.training.models import build_model

    config = TrainConfig.from_dict(tiny_config(tmp_path, max_steps=3, checkpoint_every=0))
    train(config)
    trained = weights(Path(config.output_dir) / "model")
    set_seed(config.seed)
    data = load_dataset_spec(config.data["train"])
    initial = build_model(config.model, num_labels=data.num_labels, id2label=data.id2label).state_dict()
    assert trained.keys() <= initial.keys()
    moved = [k for k in trained if not torch.equal(trained[k], initial[k])]
    assert any(k.startswith("segformer.quarf.") for k in moved)
    assert any(k.startswith("decode_head.") for k in moved)
    assert not any("quality_extractor" in k for k in moved)


@pytest.mark.parametrize("accumulation, crash_step", [(1, 2), (3, 3)])
def test_resume_after_a_crash_ends_with_the_same_weights(tmp_path, monkeypatch, accumulation, crash_step):
    """Run A: 6 steps uninterrupted. Run B: same seed, crashes right after a checkpoint, then
    ``--resume`` finishes it. Model weights must be identical (CPU is deterministic). With
    accumulation 3 over 4 batches an epoch has 2 steps (3 batches, then 1 at the epoch's end),
    and the crash falls in the second epoch."""
    common = {"max_steps": 6, "gradient_accumulation_steps": accumulation}
    uninterrupted = TrainConfig.from_dict(tiny_config(tmp_path, name="a", checkpoint_every=0, **common))
    train(uninterrupted)

    resumed = TrainConfig.from_dict(tiny_config(tmp_path, name="b", checkpoint_every=crash_step, **common))
    real_save = training_loop.save_checkpoint

    def save_then_crash(accelerator, output_dir, step, keep):
        real_save(accelerator, output_dir, step, keep)
        if step == crash_step:
            raise KeyboardInterrupt("simulated crash right after a checkpoint")

    monkeypatch.setattr(training_loop, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(resumed)
    assert not (Path(resumed.output_dir) / "model").exists()
    monkeypatch.setattr(training_loop, "save_checkpoint", real_save)
    summary = train(resumed, resume=True)
    assert summary["steps"] == 6
    a, b = weights(Path(uninterrupted.output_dir) / "model"), weights(Path(resumed.output_dir) / "model")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed weights differ: {different[:5]}"


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    config = TrainConfig.from_dict(tiny_config(tmp_path, name="empty"))
    with pytest.raises(FileNotFoundError, match="--resume"):
        train(config, resume=True)


def test_a_fresh_run_refuses_a_folder_with_another_runs_checkpoints(tmp_path):
    config = TrainConfig.from_dict(tiny_config(tmp_path, name="used", max_steps=2, checkpoint_every=2))
    train(config)
    with pytest.raises(ValueError, match="output_dir.*--resume"):
        train(config)


@pytest.mark.parametrize("schedule", ["poly", "cosine", "constant"])
def test_schedule_is_laid_out_for_accelerates_per_process_steps(schedule):
    """accelerate steps a prepared scheduler once per process for each optimiser step: with 2
    processes the learning rate after every training step equals the 1-process one."""
    config = TrainConfig.from_dict({**tiny_config(Path("unused")), "schedule": schedule, "warmup_steps": 2,
                                    "max_steps": 6})

    def rates(num_processes):
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=config.learning_rate)
        scheduler = training_loop._scheduler(config, optimizer, num_processes)
        values = []
        for _ in range(config.max_steps):
            optimizer.step()
            for _ in range(num_processes):
                scheduler.step()
            values.append(scheduler.get_last_lr()[0])
        return values

    assert rates(2) == pytest.approx(rates(1), rel=1e-6)
    assert len(set(rates(1))) > 1  # the schedule really moves (warm-up at least)


@pytest.mark.parametrize("change, message", [
    ({"evaluation": {"corruptions": ["gausian_noise"], "severities": [3]}}, "evaluation.corruptions"),
    ({"evaluation": {"corruptions": ["fog"], "severities": [6]}}, "evaluation.severities"),
    ({"augmentation": {"policy": "degradation", "corruption": ["fog"]}}, "augmentation: unknown keys"),
    ({"learning_rate": "fast"}, "learning_rate"),
    ({"warmup_steps": -1}, "warmup_steps"),
])
def test_config_typos_fail_before_training(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict({**tiny_config(tmp_path), **change})


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    """PyYAML reads ``6e-4`` as a string; the config takes it as the number it means."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path)).replace("learning_rate: 0.002", "learning_rate: 6e-4"))
    assert load_train_config(path).learning_rate == pytest.approx(6e-4)


def test_baseline_segformer_and_restoration_arms_train(tmp_path):
    """The plain-SegFormer baseline and the restoration task run through the same loop."""
    from transformers import SegformerForSemanticSegmentation

    baseline = TrainConfig.from_dict(tiny_config(tmp_path, name="baseline", max_steps=2, checkpoint_every=0,
                                                 model={"type": "segformer", "config": TINY_SEGFORMER},
                                                 augmentation={"policy": "none"}))
    summary = train(baseline)
    assert "routing" not in summary["evaluation"]["clean"]
    assert type(SegformerForSemanticSegmentation.from_pretrained(Path(baseline.output_dir) / "model")).__name__ == \
        "SegformerForSemanticSegmentation"

    restoration = TrainConfig.from_dict(tiny_config(
        tmp_path, name="restoration", task="restoration", max_steps=2, checkpoint_every=0,
        model={"type": "quarf_restoration", "quality": "brisque",
               "config": {"block_out_channels": [8, 16], "norm_num_groups": 4}, "quarf": {"num_groups": 2}},
        data={"train": {"type": "quarf-shapes", "task": "restoration", "num_samples": 8, "size": 32, "seed": 0},
              "validation": {"type": "quarf-shapes", "task": "restoration", "num_samples": 4, "size": 32, "seed": 5}},
        augmentation={"policy": "none"}))
    summary = train(restoration)
    assert summary["evaluation"]["clean"]["psnr"] > 5
    card = (Path(restoration.output_dir) / "model" / "README.md").read_text()
    assert "pipeline_tag: image-to-image" in card


def _launch(command, tmp_path, timeout=600):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), ACCELERATE_USE_CPU="true")
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.mark.slow
def test_two_process_run_with_torchrun_shards_data_and_reduces_metrics(tmp_path):
    """Two gloo ranks on CPU: the ranks see disjoint samples covering the epoch, only the main
    process writes, and the reduced evaluation equals a single-process evaluation of the model."""
    from transformers import AutoModelForSemanticSegmentation

    from quarf_hf.data import load_dataset_spec
    from quarf_hf.evaluation import evaluate_model

    data = tiny_config(tmp_path, name="ddp", max_steps=2, batch_size=2, checkpoint_every=2, log_sample_ids=True,
                       data={"train": {"type": "quarf-shapes", "num_samples": 8, "size": 32, "seed": 0},
                             "validation": {"type": "quarf-shapes", "num_samples": 5, "size": 32, "seed": 99}})
    config_path = tmp_path / "ddp.yaml"
    config_path.write_text(yaml.safe_dump(data))
    _launch([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
             "-m", "quarf_hf", "train", str(config_path)], tmp_path)
    out = Path(data["output_dir"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["steps"] == 2
    rank0 = json.loads((out / "sample_ids_rank0.json").read_text())
    rank1 = json.loads((out / "sample_ids_rank1.json").read_text())
    assert len(rank0) == len(rank1) == 4 and not set(rank0) & set(rank1)
    assert sorted(rank0 + rank1) == list(range(8))  # 2 steps x 2 ranks x batch 2 = one epoch of 8
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002"]
    # Nothing else (no second model folder, no leftovers of rank 1): only these were written.
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "model", "sample_ids_rank0.json",
                                                     "sample_ids_rank1.json", "summary.json"]
    model = AutoModelForSemanticSegmentation.from_pretrained(out / "model")
    single = evaluate_model(model, load_dataset_spec(data["data"]["validation"]), corruptions=["shot_noise"],
                            severities=[2], seed=0, batch_size=2, progress=False)
    assert single["clean"]["mIoU"] == pytest.approx(summary["evaluation"]["clean"]["mIoU"], abs=1e-6)
    assert single["corruptions"]["shot_noise"]["2"]["mIoU"] == pytest.approx(
        summary["evaluation"]["corruptions"]["shot_noise"]["2"]["mIoU"], abs=1e-6)


@pytest.mark.slow
def test_accelerate_launch_runs_the_module(tmp_path):
    """The documented entry point: ``accelerate launch -m quarf_hf train CONFIG`` (one CPU process)."""
    data = tiny_config(tmp_path, name="launched", max_steps=1, checkpoint_every=0)
    config_path = tmp_path / "launched.yaml"
    config_path.write_text(yaml.safe_dump(data))
    result = _launch([sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
                      "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                      "-m", "quarf_hf", "train", str(config_path)], tmp_path)
    assert '"steps": 1' in result.stdout
    assert (Path(data["output_dir"]) / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize("kind", ["segformer", "quarf_segformer"])
def test_base_checkpoint_with_other_classes_gets_the_datas_head(tmp_path, kind):
    """Fine-tuning from a SegFormer trained on 3 classes on data with 5: the encoder is the
    base's, the head is new with the data's label names, and the data's ignore index is the loss's."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    from quarf_hf.data import QuarfShapes
    from quarf_hf.training.models import build_model

    base = SegformerForSemanticSegmentation(SegformerConfig(**TINY_SEGFORMER, num_labels=3))
    base.save_pretrained(tmp_path / "base")
    data = QuarfShapes(4, size=32)
    model = build_model({"type": kind, "base": str(tmp_path / "base"), "quality": "brisque"},
                        num_labels=data.num_labels, id2label=data.id2label, ignore_index=0)
    assert model.config.num_labels == 5 and model.config.id2label[1] == data.id2label[1]
    assert model.config.semantic_loss_ignore_index == 0
    assert model.decode_head.classifier.weight.shape[0] == 5
    ours, theirs = model.state_dict(), base.state_dict()
    name = "segformer.stages.0.patch_embeddings.proj.weight"
    assert torch.equal(ours[name], theirs[name])
