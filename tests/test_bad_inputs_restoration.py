"""Bad inputs of restoration training on photos, refused before any work in one line
that names the setting: a photo folder with no images, images smaller than the crop, a crop size the
UNet cannot take, an unknown photo name, a bad size rule, an unknown conditioning, and publishing the
trained recipe without its trained folder.

Each CLI row runs ``quarf_hf.cli.main`` in this process and asserts exit status 2, exactly one
stderr line ``quarf-hf CMD: error: ...`` naming the setting, no traceback, and that the run's
output folder was not created. The API rows assert the same of :func:`load_train_config` /
:func:`train` directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from quarf_hf.cli import main
from quarf_hf.training import load_train_config, train

TINY_MODEL = {"type": "quarf_restoration", "quality": "brisque",
              "config": {"block_out_channels": [8, 16, 32], "norm_num_groups": 4}, "quarf": {"num_groups": 2}}


def _config(tmp_path, train_spec, validation=None, **sections) -> dict:
    data = {"train": train_spec}
    if validation is not None:
        data["validation"] = validation
    return {"task": "restoration", "model": TINY_MODEL, "data": data, "output_dir": str(tmp_path / "run"),
            "max_steps": 1, "batch_size": 1, **sections}


def _folder(tmp_path, name, sizes) -> str:
    folder = tmp_path / name
    folder.mkdir()
    for i, (width, height) in enumerate(sizes):
        array = np.random.default_rng(i).integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    return str(folder)


def _truncate(folder: str, name: str) -> str:
    """``folder`` with its image ``name`` cut to half its bytes (a download that stopped)."""
    path = Path(folder) / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return folder


# (id, config maker, the setting the one line must name)
ROWS = [
    ("folder without images",
     lambda t: _config(t, {"type": "images", "path": _folder(t, "empty", [])}),
     "data.train.path: no images in"),
    ("images smaller than the crop",
     lambda t: _config(t, {"type": "images", "path": _folder(t, "small", [(48, 40), (96, 96)]), "crop_size": 64}),
     "data.train.crop_size: 64x64 (HxW) is larger than 1 of the 2 photos"),
    ("crop size the UNet cannot take",
     lambda t: _config(t, {"type": "photos", "split": "train", "crop_size": 70}),
     "data.train.crop_size: expected a multiple of 4"),
    ("validation crop size the UNet cannot take",
     lambda t: _config(t, {"type": "photos", "split": "train", "crop_size": 64},
                       {"type": "photos", "split": "development", "crop_size": [64, 66]}),
     "data.validation.crop_size: expected a multiple of 4"),
    ("unknown photo name",
     lambda t: _config(t, {"type": "photos", "photos": ["astronaut", "mona_lisa"], "crop_size": 64}),
     "data.train.photos: unknown photo 'mona_lisa'"),
    ("unknown split",
     lambda t: _config(t, {"type": "photos", "split": "holdout", "crop_size": 64}),
     "data.train.split: unknown split 'holdout'"),
    ("size rule not a size",
     lambda t: _config(t, {"type": "photos", "split": "train", "crop_size": 64},
                       augmentation={"policy": "degradation", "reference_size": "big"}),
     "augmentation.reference_size: expected None"),
    ("evaluation size rule negative",
     lambda t: _config(t, {"type": "photos", "split": "train", "crop_size": 64},
                       evaluation={"corruptions": ["shot_noise"], "reference_size": -224}),
     "evaluation.reference_size: expected None"),
    ("truncated photo in the folder",
     lambda t: _config(t, {"type": "images", "path": _truncate(_folder(t, "truncated", [(96, 96), (96, 96)]), "1.png"),
                           "crop_size": 64}),
     "1.png"),
    ("unknown conditioning",
     lambda t: _config(t, {"type": "photos", "split": "train", "crop_size": 64})
     | {"model": {**TINY_MODEL, "config": {**TINY_MODEL["config"], "conditioning": "gate"}}},
     "conditioning: expected one of route, film, static_film, none, found 'gate'"),
]


@pytest.mark.parametrize("case", ROWS, ids=[row[0] for row in ROWS])
def test_cli_train_refuses(tmp_path, capsys, case):
    name, make, named = case
    config = make(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    status = main(["train", str(path)])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("quarf-hf ")]
    assert status == 2, f"exit {status}; stderr: {captured.err[-800:]}"
    assert len(errors) == 1 and "Traceback" not in captured.err, captured.err[-1000:]
    assert named in errors[0], f"error line does not name {named!r}: {errors[0]}"
    assert not (tmp_path / "run").exists(), "the run's folder was created"


def test_crop_size_is_checked_when_the_config_is_read(tmp_path):
    """Before any work: the config itself refuses a crop the UNet cannot take (no data is read)."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, {"type": "photos", "split": "train", "crop_size": [64, 90]})))
    with pytest.raises(ValueError, match=r"^data\.train\.crop_size: expected a multiple of 4 .* e\.g\. 64$"):
        load_train_config(path)
    # the default crop size (128) of a spec without one passes the same check
    path.write_text(yaml.safe_dump(_config(tmp_path, {"type": "photos", "split": "train"})))
    assert load_train_config(path).task == "restoration"


def test_the_api_names_the_setting_too(tmp_path):
    """train() itself (not only the command) turns the dataset's message into the config's setting."""
    from quarf_hf.training import TrainConfig

    bad = TrainConfig.from_dict(_config(tmp_path, {"type": "photos", "photos": ["nope"], "crop_size": 64}))
    with pytest.raises(ValueError, match=r"^data\.train\.photos: unknown photo 'nope'; built-in photos: astronaut"):
        train(bad)
    assert not (tmp_path / "run").exists()


def test_publishing_the_recipe_needs_its_trained_folder(tmp_path, capsys):
    status = main(["build", "quarf-restoration-photos", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and "--base: quarf-restoration-photos is trained" in err and "quarf-hf train quarf-restoration-photos" in err
    assert not (tmp_path / "out").exists()
