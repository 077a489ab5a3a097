"""Nothing lost: only the package's own temporaries are removed, a used output folder is
refused, the replacement of a folder survives a crash, links are refused before any work, and a
folder full of the user's files comes out of every writing command byte for byte as it went in.

The reference for "unchanged" is a SHA-256 of every file and the listing, taken before the run
(``bad_input_world.tree_digest``)."""

import json
import os

import pytest
import yaml

from bad_input_world import train_config, tree_digest
from quarf_hf.atomic import atomic_folder, remove_stale_staging
from quarf_hf.cli import main
from quarf_hf.models.checks import InputError


def user_files(folder):
    """What a user keeps in a folder: dot-files, backups, drafts and temporaries named as editors and
    scripts name them (each matched main's old staging pattern), and folders named like backups."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".backup-20241207").mkdir()
    (folder / ".backup-20241207" / "notes.txt").write_text("the only copy")
    (folder / ".notes.20241207.tmp").write_text("draft")
    (folder / ".draft-settings").write_text("lr: 1")
    (folder / "results.tmp").write_text("half a thought")
    (folder / ".model-abcd1234").mkdir()  # named like the old staging folders, no marker
    (folder / ".model-abcd1234" / "weights.bin").write_bytes(b"\x00" * 10)
    (folder / "backup-2024").mkdir()
    (folder / "backup-2024" / ".hidden").write_text("x")
    (folder / ".quarf-staging-model-abcd1234").mkdir()  # our prefix but no marker: not ours, kept
    (folder / ".quarf-staging-model-abcd1234" / "mine.txt").write_text("x")
    return tree_digest(folder)


def assert_kept(folder, before, succeeded=True):
    """Every entry of ``before`` is there, byte for byte; a successful run leaves no staging behind."""
    after = tree_digest(folder)
    assert {key: after.get(key) for key in before} == before
    if succeeded:
        left = [key for key in after if key not in before and ".quarf-staging-" in key]
        assert not left, left


def test_only_marked_staging_is_removed(tmp_path):
    """Before the fix, the first three user names matched ``\\.NAME-xxxxxxxx`` / ``\\.NAME.xxxxxxxx.tmp`` and were removed."""
    before = user_files(tmp_path)
    assert remove_stale_staging(tmp_path) == [] and tree_digest(tmp_path) == before
    from quarf_hf.atomic import staging_folder

    ours = staging_folder(tmp_path / "model")
    (ours / "model.safetensors").write_text("half")
    (tmp_path / ".quarf-staging-summary.json.abcd1234.tmp").write_text("half")
    assert sorted(p.name for p in remove_stale_staging(tmp_path)) == [ours.name, ".quarf-staging-summary.json.abcd1234.tmp"]
    assert tree_digest(tmp_path) == before


def test_a_crash_between_the_renames_keeps_one_complete_folder(tmp_path, monkeypatch):
    """The old folder is set aside, then the new one renamed in: a failure of that rename puts the old
    one back, and a kill right there (old aside, new staged) is repaired by the next run's cleanup.
    Before the fix the old folder was deleted before the rename."""
    from quarf_hf.atomic import MARKER, staging_folder

    model = tmp_path / "model"
    model.mkdir()
    (model / "weights").write_text("old")
    real = os.replace

    def failing(source, target):
        if str(target) == str(model) and ".quarf-staging-" in str(source) and not failed:
            failed.append(source)  # the new folder's rename, once: putting the old one back works
            raise OSError("disk full")
        return real(source, target)

    failed = []

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        with atomic_folder(model) as staging:
            (staging / "weights").write_text("new")
    monkeypatch.setattr(os, "replace", real)
    assert (model / "weights").read_text() == "old" and sorted(os.listdir(model)) == ["weights"]
    # a kill after the old one was set aside: model/ is missing, the old and the new are staged
    new = staging_folder(model)
    (new / "weights").write_text("new")
    aside = staging_folder(model)
    for name in os.listdir(model):
        real(model / name, aside / name)
    os.rmdir(model)
    (aside / MARKER).write_text("old model")
    remove_stale_staging(tmp_path, "model")
    assert sorted(os.listdir(tmp_path)) == ["model"] and (model / "weights").read_text() == "old"
    assert sorted(os.listdir(model)) == ["weights"]


def test_replacing_a_folder_keeps_nothing_of_the_old_one_and_leaves_no_staging(tmp_path):
    from quarf_hf.atomic import commit_staging_folder, staging_folder

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "old.bin").write_text("old")
    staging = staging_folder(tmp_path / "model")
    (staging / "new.bin").write_text("new")
    commit_staging_folder(staging, tmp_path / "model")
    assert sorted(os.listdir(tmp_path)) == ["model"] and sorted(os.listdir(tmp_path / "model")) == ["new.bin"]


def test_a_linked_folder_is_refused_before_any_work(tmp_path):
    """Before the fix ``atomic_folder`` ran the block, then failed in rmtree ("Cannot call rmtree on a symbolic link")."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("keep")
    (tmp_path / "model").symlink_to(elsewhere, target_is_directory=True)
    ran = []
    with pytest.raises(InputError, match="symbolic link"):
        with atomic_folder(tmp_path / "model"):
            ran.append(True)
    assert not ran and os.listdir(elsewhere) == ["keep"]


def _train(tmp_path, name, output_dir, *extra, **changes):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(train_config(output_dir=str(output_dir), **changes)))
    return main(["train", str(path), *extra])


def test_a_second_run_is_refused_and_overwrite_replaces_the_model(tmp_path, capsys):
    """Before the fix the second run replaced model/ and summary.json without a word."""
    out = tmp_path / "run"
    assert _train(tmp_path, "a", out) == 0
    first = tree_digest(out / "model")
    capsys.readouterr()
    assert _train(tmp_path, "a", out) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("quarf-hf")]
    assert len(errors) == 1 and "output_dir" in errors[0] and str(out) in errors[0] and "--overwrite" in errors[0]
    assert tree_digest(out / "model") == first
    assert _train(tmp_path, "b", out, overwrite=True, seed=1) == 0  # the config key
    assert tree_digest(out / "model") != first
    assert _train(tmp_path, "c", out, "--overwrite", seed=0) == 0  # the flag
    assert tree_digest(out / "model") == first  # same seed, same weights: the model was replaced whole
    assert not [p for p in os.listdir(out) if p.startswith(".quarf-staging-")]


def test_resume_past_max_steps_says_what_it_did(tmp_path, capsys):
    """Before the fix it printed ``"steps": 2`` and nothing else."""
    out = tmp_path / "run"
    assert _train(tmp_path, "a", out, max_steps=2, checkpoint_every=2) == 0
    capsys.readouterr()
    assert _train(tmp_path, "a", out, "--resume", "--max-steps", "1", max_steps=2, checkpoint_every=2) == 0
    printed = capsys.readouterr().out
    assert "--resume: the checkpoint is at step 2, max_steps is 1: nothing left to train" in printed
    assert json.loads(printed[printed.index("{"):])["steps"] == 2


# Every writing command, failed and successful, into a folder of the user's files.

def _quality_config(out, **changes):
    config = {"model": {"config": {"embedding_size": 8, "hidden_sizes": [8, 8, 8, 8], "depths": [1, 1, 1, 1],
                                   "projection_dim": 8}},
              "data": {"train": {"type": "quarf-shapes", "num_samples": 8, "size": 72, "seed": 0}},
              "image_size": 72, "crop_size": 64, "corruptions": ["gaussian_noise", "gaussian_blur"], "severities": [3],
              "batch_size": 4, "max_steps": 1, "output_dir": str(out)}
    return {**config, **changes}


def _study_config(**changes):
    from test_study import tiny_study

    return tiny_study(**changes)


def _commands(w, tmp_path, out):
    """(name, argv of a failed run, argv of a successful run or None) for every writing command."""
    def config(name, data):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data))
        return str(path)

    eval_args = ["--num-samples", "2", "--image-size", "32", "--corruptions", "gaussian_noise", "--severities", "1"]
    return [
        ("train", ["train", config("bad.yaml", train_config(output_dir=str(out), batch_size=64))],
         ["train", config("good.yaml", train_config(output_dir=str(out)))]),
        ("train-quality", ["train-quality", config("qbad.yaml", _quality_config(out, data={"train": {"type": "folder", "path": str(tmp_path / "nope")}}))],
         ["train-quality", config("qgood.yaml", _quality_config(out))]),
        ("evaluate", ["evaluate", str(w["seg_dir"]), "--dataset", str(w["ds_text"]), "--split", "train", "--out", str(out)],
         ["evaluate", str(w["seg_dir"]), *eval_args, "--out", str(out)]),
        ("predict", ["predict", str(w["seg_dir"]), str(w["good"]), str(w["truncated_png"]), "--out", str(out)],
         ["predict", str(w["seg_dir"]), str(w["good"]), "--out", str(out)]),
        ("build", ["build", "quarf-restoration-small", "--base", str(w["truncated_model"]), "--out", str(out / "built")],
         ["build", "quarf-restoration-small", "--out", str(out / "built")]),
        # a successful demo trains four arms for minutes: a failed run here (stopped as the first arm
        # ends, see the test), and its writers are the atomic helpers and `train`, tested above
        ("demo", ["demo", "--task", "segmentation", "--out", str(out)], None),
        ("study", ["study", config("study.yaml", _study_config()), "--out", str(out), "--max-minutes", "0.0001"],
         None),
        ("export", ["export", str(w["truncated_model"]), "--format", "exported-program", "--size", "32", "--out", str(out / "exported")],
         ["export", str(w["seg_dir"]), "--format", "exported-program", "--size", "32", "--out", str(out / "exported")]),
    ]


@pytest.mark.parametrize("command", ["train", "train-quality", "evaluate", "predict", "build", "demo", "study", "export"])
def test_a_folder_of_user_files_stays_byte_identical(bad_input_world, tmp_path, capsys, monkeypatch, command):
    """A failed run (most fail after starting to work in the folder) and a successful one into the same
    folder of user files: every user file and folder is still there, byte for byte. On main, train and
    train-quality removed ``.backup-20241207/``, ``.notes.20241207.tmp`` and ``.draft-settings``."""
    if command == "demo":  # the first arm trains one step, then the demo stops as a time cap would stop it
        from quarf_hf.demo import DemoAborted
        from quarf_hf.training import loop

        def stop(run, stopped_early):
            raise DemoAborted("stopped by the test after the first arm's training")

        monkeypatch.setattr(loop, "finish_training", stop)
        monkeypatch.setattr("quarf_hf.demo.segmentation.BUDGETS", {"full": {"minutes": 10, "steps": 1, "size": 32,
                                                                            "validation_images": 2}})
    out = tmp_path / "mine"
    before = user_files(out)
    _, failed, succeeded = next(row for row in _commands(bad_input_world, tmp_path, out) if row[0] == command)
    assert main(failed) in (2, 3)
    assert_kept(out, before, succeeded=False)
    if succeeded is not None:
        assert main(succeeded) == 0, capsys.readouterr().err[-500:]
        assert_kept(out, before)


def test_a_dangling_link_among_the_outputs_is_refused_too(tmp_path):
    """A link to nothing (glob skips it) is found as well: the export would otherwise fail after training."""
    from quarf_hf.outputs import check_output_folder

    (tmp_path / "model").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match="model is a symbolic link"):
        check_output_folder(tmp_path, ("model", "summary.json"), "output_dir", overwrite=True)
