"""Training checkpoints: resume falls back past a damaged newest checkpoint to the newest intact one
(saying which it skipped and why), and a run removes the staging folders and temporary files a killed run
left (the atomic helpers' own clean-up is tested in test_atomic.py)."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from quarf_hf.training import TrainConfig, train
from quarf_hf.training import loop as training_loop
from quarf_hf.training import segmentation
from quarf_hf.training.checkpoints import checkpoint_problem, latest_checkpoint

from test_training import tiny_config


def fake_checkpoint(root: Path, step: int, damage: str | None = None) -> Path:
    folder = root / "checkpoints" / f"step-{step:08d}"
    folder.mkdir(parents=True)
    save_file({"w": torch.full((4,), float(step))}, folder / "model.safetensors")
    (folder / "optimizer.bin").write_bytes(b"x" * 10)
    (folder / "progress.json").write_text(json.dumps({"step": step}))
    if damage == "truncated":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "random":
        (folder / "model.safetensors").write_bytes(b"\x01" * 300)
    elif damage == "progress":
        (folder / "progress.json").write_text("{")
    elif damage == "empty":
        (folder / "optimizer.bin").write_bytes(b"")
    elif damage == "no weights":
        (folder / "model.safetensors").unlink()
    return folder


@pytest.mark.parametrize("damage, reason", [
    ("truncated", "model.safetensors"), ("random", "model.safetensors"), ("progress", "progress.json"),
    ("empty", "optimizer.bin"), ("no weights", "no model weights"),
])
def test_damaged_newest_checkpoint_is_skipped(tmp_path, damage, reason):
    fake_checkpoint(tmp_path, 2)
    newest = fake_checkpoint(tmp_path, 4, damage)
    assert reason in checkpoint_problem(newest)
    path, step = latest_checkpoint(tmp_path)
    assert (path.name, step) == ("step-00000002", 2)


class RecordingAccelerator:
    is_main_process = True

    def __init__(self, fail_on=()):
        self.loaded, self.fail_on = [], set(fail_on)

    def load_state(self, path):
        if Path(path).name in self.fail_on:
            raise RuntimeError("unpickling failed: invalid load key")
        self.loaded.append(Path(path).name)


def test_resume_says_what_it_skipped(tmp_path, capsys):
    fake_checkpoint(tmp_path, 2)
    fake_checkpoint(tmp_path, 4)
    fake_checkpoint(tmp_path, 6, "truncated")
    accelerator = RecordingAccelerator(fail_on={"step-00000004"})  # intact on disk, fails in load_state
    assert training_loop._resume(accelerator, tmp_path) == 2
    assert accelerator.loaded == ["step-00000002"]
    printed = capsys.readouterr().out
    assert "skipping damaged checkpoint" in printed and "step-00000006" in printed and "model.safetensors" in printed
    assert "step-00000004" in printed and "invalid load key" in printed
    assert "resuming from" in printed and "step-00000002" in printed


def test_resume_with_every_checkpoint_damaged(tmp_path):
    fake_checkpoint(tmp_path, 2, "random")
    with pytest.raises(ValueError, match="--resume: every checkpoint"):
        training_loop._resume(RecordingAccelerator(), tmp_path)


def test_resume_past_a_damaged_checkpoint_in_a_real_run(tmp_path, capsys):
    """A real run: 3 steps with a checkpoint after each; then the newest checkpoint is truncated, the
    exported model removed, and the folder given a killed run's staging. --resume resumes from step 2,
    says so, removes the staging, and ends with the same weights as an uninterrupted 3-step run (the
    independent reference)."""
    reference = TrainConfig.from_dict(tiny_config(tmp_path, name="ref", max_steps=3, checkpoint_every=0,
                                                  augmentation={"policy": "none"}, data=_small_data()))
    train(reference)
    config = tiny_config(tmp_path, name="run", max_steps=3, checkpoint_every=1, keep_checkpoints=3,
                         augmentation={"policy": "none"}, data=_small_data())
    train(TrainConfig.from_dict(config))
    out = Path(config["output_dir"])
    newest = out / "checkpoints" / "step-00000003" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])
    import shutil

    from quarf_hf.atomic import staging_folder

    shutil.rmtree(out / "model")
    killed = staging_folder(out / "model", suffix="killed00")  # what a killed export leaves
    saving = staging_folder(out / "checkpoints" / "step-00000004", suffix="saving__")  # a killed checkpoint save
    capsys.readouterr()
    train(TrainConfig.from_dict(config), resume=True)
    printed = capsys.readouterr().out
    assert "skipping damaged checkpoint" in printed and "step-00000003" in printed
    assert "resuming from" in printed and "step-00000002" in printed
    assert not killed.exists() and not saving.exists()
    got, want = load_file(out / "model" / "model.safetensors"), load_file(Path(reference.output_dir) / "model" / "model.safetensors")
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)


def _small_data():
    return {"train": {"type": "quarf-shapes", "num_samples": 8, "size": 32, "seed": 0}}


def test_train_into_an_existing_file_fails_before_training(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(segmentation, "build_model", lambda *a, **k: called.append(1))
    target = tmp_path / "file"
    target.write_text("keep me")
    with pytest.raises(FileExistsError, match="output_dir"):
        train(TrainConfig.from_dict(tiny_config(tmp_path, output_dir=str(target))))
    assert not called and target.read_text() == "keep me"
