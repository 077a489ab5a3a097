"""``quarf-hf predict``: outputs sized like the input, masks equal to an independent arg-max of the
logits, routing for QuARF models only, restored images equal to the model's reconstruction,
degraded inputs, and argument errors that exit 2 before anything is written."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import SegformerImageProcessor

from quarf_hf.cli import main
from quarf_hf.degradations import degrade
from tiny_models import make_quarf_segformer, make_restoration, make_segformer

NATURAL = Path("/work/shared/data/natural-images/womanhat.png")
NUM_LABELS = 5


def rgb_array(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1], computed here, not with the command's helpers."""
    return torch.from_numpy(array.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A small palette-mode PNG (exercises the RGB conversion) and, if present, a downscaled photo."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    array[5:25, 10:30] = (200, 40, 40)
    small = folder / "small.png"
    Image.fromarray(array).convert("P", palette=Image.Palette.ADAPTIVE).save(small)
    paths = [small]
    if NATURAL.is_file():
        with Image.open(NATURAL) as photo:
            photo = photo.convert("RGB")
            photo.thumbnail((72, 72))
            photo.save(folder / "photo.png")
        paths.append(folder / "photo.png")
    return paths


@pytest.fixture(scope="module")
def quarf_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quarf_segformer")
    torch.manual_seed(0)
    model = make_quarf_segformer(NUM_LABELS)
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def segformer_folder(tmp_path_factory):
    """A plain SegFormer saved with an image processor whose normalisation is not ImageNet's."""
    folder = tmp_path_factory.mktemp("segformer")
    torch.manual_seed(1)
    model = make_segformer(NUM_LABELS)
    model.save_pretrained(folder)
    SegformerImageProcessor(image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.25, 0.3]).save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def restoration_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("restoration")
    torch.manual_seed(0)
    model = make_restoration()
    with torch.no_grad():  # conv_out starts at zero (identity); make the output differ from the input
        model.conv_out.weight.normal_(0, 0.05)
    model.save_pretrained(folder)
    return folder, model


def expected_mask(model, array, mean, std) -> np.ndarray:
    pixels = (as_tensor(array) - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = model(pixel_values=pixels).logits
    logits = F.interpolate(logits, size=array.shape[:2], mode="bilinear", align_corners=False)
    return logits.argmax(1)[0].numpy()


def check_segmentation(out, images, model, mean, std):
    for path in images:
        original = rgb_array(path)
        height, width = original.shape[:2]
        with Image.open(out / f"{path.stem}_segmentation.png") as seg:
            assert seg.size == (width, height) and seg.mode == "RGB"
        with Image.open(out / f"{path.stem}_mask.png") as mask_image:
            assert mask_image.size == (width, height) and mask_image.mode == "L"
            mask = np.asarray(mask_image)
        assert mask.max() < NUM_LABELS
        np.testing.assert_array_equal(mask, expected_mask(model, original, mean, std))


def test_quarf_segformer(quarf_folder, images, tmp_path, capsys):
    folder, model = quarf_folder
    out = tmp_path / "out"
    assert main(["predict", str(folder), *map(str, images), "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    check_segmentation(out, images, model, model.config.image_mean, model.config.image_std)

    # routing: printed per image with receptive fields, and in predictions.json equal to the model's
    assert printed.count("routing") == len(images)
    assert all(f"RF {rf}:" in printed for rf in (3, 5, 9, 17))
    result = json.loads((out / "predictions.json").read_text())
    assert result["task"] == "segmentation" and len(result["images"]) == len(images)
    mean, std = torch.tensor(model.config.image_mean).view(1, 3, 1, 1), torch.tensor(model.config.image_std).view(1, 3, 1, 1)
    for path, record in zip(images, result["images"]):
        assert record["image"] == str(path) and record["degradation"] is None
        original = rgb_array(path)
        with torch.no_grad():
            routing = model(pixel_values=(as_tensor(original) - mean) / std).routing_weights[0].mean(0)
        assert [e["receptive_field"] for e in record["routing"]] == [3, 5, 9, 17]
        assert [e["weight"] for e in record["routing"]] == pytest.approx(routing.tolist(), abs=1e-6)
        assert sum(c["pixels"] for c in record["classes"]) == original.shape[0] * original.shape[1]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["predictions.json"] + [f"{p.stem}_{kind}.png" for p in images for kind in ("segmentation", "mask")]
    )


def test_plain_segformer_has_no_routing(segformer_folder, images, tmp_path, capsys):
    folder, model = segformer_folder
    out = tmp_path / "out"
    assert main(["predict", str(folder), str(images[0]), "--out", str(out)]) == 0
    assert "routing" not in capsys.readouterr().out
    check_segmentation(out, images[:1], model, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3])
    result = json.loads((out / "predictions.json").read_text())
    assert "routing" not in result["images"][0] and "experts" not in result


def test_restoration_with_corruption(restoration_folder, images, tmp_path, capsys):
    folder, model = restoration_folder
    out = tmp_path / "out"
    path = images[-1]
    args = ["predict", str(folder), str(path), "--out", str(out), "--corruption", "gaussian_blur", "--severity", "4"]
    assert main(args) == 0
    assert "routing" in capsys.readouterr().out
    original = rgb_array(path)

    # gaussian_blur is deterministic: the saved input is the degraded image, and differs from the original
    degraded = degrade(as_tensor(original), "gaussian_blur", 4)
    saved_input = rgb_array(out / f"{path.stem}_input.png")
    assert saved_input.shape == original.shape
    assert np.abs(saved_input.astype(int) - original.astype(int)).mean() > 1.0
    expected_input = (degraded[0].permute(1, 2, 0) * 255).round().numpy()
    assert np.abs(saved_input - expected_input).max() <= 1

    # the restored image is the model's reconstruction of the degraded image
    with torch.no_grad():
        reconstruction = model(degraded).reconstruction[0].permute(1, 2, 0).numpy() * 255
    restored = rgb_array(out / f"{path.stem}_restored.png")
    assert restored.shape == original.shape
    assert np.abs(restored - reconstruction).max() <= 1.0
    assert np.abs(restored.astype(int) - saved_input.astype(int)).max() > 1  # not the identity

    record = json.loads((out / "predictions.json").read_text())["images"][0]
    assert record["degradation"]["corruption"] == "gaussian_blur" and record["degradation"]["severity"] == 4
    assert np.isfinite(record["psnr_vs_input"]) and len(record["routing"]) == 4


def test_random_corruption_is_seeded(restoration_folder, images, tmp_path, capsys):
    folder, _ = restoration_folder
    path = images[0]
    saved = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        out = tmp_path / name
        assert main(["predict", str(folder), str(path), "--out", str(out), "--corruption", "gaussian_noise", "--seed", str(seed)]) == 0
        saved.append(rgb_array(out / f"{path.stem}_input.png"))
        assert rgb_array(out / f"{path.stem}_restored.png").shape == rgb_array(path).shape
    assert not np.array_equal(saved[0], rgb_array(path))
    assert np.array_equal(saved[0], saved[1]) and not np.array_equal(saved[0], saved[2])


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--corruption", "not_a_corruption"], "--corruption"),
        (["--corruption", "gaussian_noise", "--severity", "7"], "--severity"),
        (["MISSING"], "IMAGE"),
    ],
)
def test_errors_exit_2_and_write_nothing(quarf_folder, images, tmp_path, capsys, extra, named):
    folder, _ = quarf_folder
    out = tmp_path / "out"
    image_args = [str(images[0])]
    if extra == ["MISSING"]:
        image_args, extra = [str(images[0]), str(tmp_path / "missing.png")], []
    assert main(["predict", str(folder), *image_args, "--out", str(out), *extra]) == 2
    error = capsys.readouterr().err
    assert named in error
    assert not out.exists()


def test_out_is_a_file_and_missing_model(quarf_folder, images, tmp_path, capsys):
    folder, _ = quarf_folder
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["predict", str(folder), str(images[0]), "--out", str(afile)]) == 2
    assert "--out" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "no_model"), str(images[0]), "--out", str(out)]) == 2
    assert "MODEL" in capsys.readouterr().err and not out.exists()
