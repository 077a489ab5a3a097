"""One image loader (quarf_hf.models.image_utils) behind every entry point, with one alpha rule.

Before the fix the same PNG gave different pixels depending on the entry point (RGBA composited on
white in quality extraction and the image-to-image pipeline, alpha dropped in predict, the
gallery and the data loaders; 16-bit PNGs clipped to almost white everywhere). Each test here
compares against pixels computed independently with numpy from the values written to the file.
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
from torch import nn

from quarf_hf.models.image_utils import image_to_tensor, load_image
from tiny_models import make_restoration

H, W = 40, 48


def _rgba_values():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    rgba[:4, :, 3] = 0  # fully transparent rows: white whatever colour they store
    rgba[4:8, :, 3] = 255  # opaque rows: their own colour exactly
    return rgba


def _sixteen_bit_values():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 65536, (H, W), dtype=np.uint16)
    values[0, :4] = (0, 255, 256, 65535)  # 8-bit clipping would make 256 and 65535 the same
    return values


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(path, expected (3, H, W) float pixels) for an RGBA PNG and a 16-bit greyscale PNG."""
    folder = tmp_path_factory.mktemp("images")
    rgba = _rgba_values()
    PIL.Image.fromarray(rgba, mode="RGBA").save(folder / "rgba.png")
    alpha = rgba[..., 3:].astype(np.float64) / 255
    composited = rgba[..., :3].astype(np.float64) / 255 * alpha + (1 - alpha)  # on white
    sixteen = _sixteen_bit_values()
    PIL.Image.fromarray(sixteen).save(folder / "sixteen.png")  # Pillow writes mode I;16 as a 16-bit PNG
    grey = np.repeat(sixteen[..., None].astype(np.float64) / 65535, 3, axis=2)
    with PIL.Image.open(folder / "sixteen.png") as check:
        assert check.mode.startswith("I"), check.mode  # really stored with 16 bits
    to_tensor = lambda array: torch.from_numpy(array.astype(np.float32)).permute(2, 0, 1)  # noqa: E731
    # A phone photo: pixels stored sideways plus EXIF orientation 6 ("turn 90 degrees clockwise to view").
    stored = _rgba_values()[..., :3]
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    PIL.Image.fromarray(stored).save(folder / "sideways.png", exif=exif)
    upright = np.rot90(stored, k=-1).astype(np.float64) / 255  # numpy's clockwise quarter turn
    return {"rgba": (folder / "rgba.png", to_tensor(composited)), "sixteen": (folder / "sixteen.png", to_tensor(grey)),
            "sideways": (folder / "sideways.png", to_tensor(upright))}


def _close(actual, expected):
    torch.testing.assert_close(actual.reshape(expected.shape).float(), expected, atol=1e-6, rtol=0)


class _Recorder(nn.Module):
    """A 'quality extractor' that records the pixels it is given."""

    feature_dim = 1
    min_size = 1

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, pixel_values):
        self.seen.append(pixel_values.clone())
        return torch.zeros(pixel_values.shape[0], 1)


def _via_quality(path):
    from quarf_hf.models.quality import extract_quality

    recorder = _Recorder()
    with PIL.Image.open(path) as image:
        extract_quality(image, extractor=recorder)
    return recorder.seen[0][0]


def _via_pipeline(path):
    from quarf_hf.models.modeling_quarf_restoration import restoration_pipeline

    torch.manual_seed(0)
    model = make_restoration()
    seen = []
    model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["pixel_values"].clone()), with_kwargs=True)
    restoration_pipeline(model)(str(path))
    return seen[0][0]


def _via_predict(path):
    from quarf_hf.commands.predict import load_rgb

    return load_rgb(path)[0]


def _via_gallery(path):
    from quarf_hf.degradations.gallery import load_resized

    return load_resized(path)[0]


def _via_dataset(path):
    from quarf_hf.data import load_segmentation_dataset

    root = path.parent / f"dataset_{path.stem}"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "images" / "a.png").write_bytes(path.read_bytes())
    with PIL.Image.open(path) as image:  # a mask of the upright size
        height, width = (W, H) if image.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (H, W)
    PIL.Image.fromarray(np.zeros((height, width), np.uint8)).save(root / "masks" / "a.png")
    return load_segmentation_dataset(root, num_labels=2)[0]["pixel_values"]


def _via_space(path):
    from quarf_hf.space.images import load_upload

    return load_upload(path)[0]


ENTRY_POINTS = {
    "image_utils": lambda path: load_image(path),
    "quality": _via_quality,
    "pipeline": _via_pipeline,
    "predict": _via_predict,
    "gallery": _via_gallery,
    "dataset": _via_dataset,
    "space": _via_space,
}


@pytest.mark.parametrize("kind", ["rgba", "sixteen", "sideways"])
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_every_entry_point_reads_the_same_pixels(files, kind, entry):
    """The same file gives the same pixels via quality extraction, the image-to-image pipeline,
    predict, the gallery and the dataset loader, equal to the numpy reference: RGBA composited on
    white in float, 16-bit values / 65535. Before the fix predict, the gallery and the dataset
    dropped the alpha, and every entry point read the 16-bit PNG as (almost) white; only the
    Space turned a photo with an EXIF orientation upright."""
    path, expected = files[kind]
    _close(ENTRY_POINTS[entry](path), expected)


def test_modes_and_arrays_follow_one_rule():
    """Every PIL mode and array type lands on the rule the module doc states (numpy reference)."""
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    alpha = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    as_float = lambda a: torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)  # noqa: E731
    grey3 = np.repeat(grey[..., None], 3, axis=2) / 255.0
    a = alpha[..., None] / 255.0
    # greyscale, grey + alpha (LA), palette, CMYK (PIL's own conversion), 1-bit
    _close(image_to_tensor(PIL.Image.fromarray(grey)), as_float(grey3))
    la = PIL.Image.fromarray(np.stack([grey, alpha], axis=2), mode="LA")
    _close(image_to_tensor(la), as_float(grey3 * a + (1 - a)))
    palette = PIL.Image.fromarray(rgb).convert("P")
    _close(image_to_tensor(palette), as_float(np.asarray(palette.convert("RGB")) / 255.0))
    cmyk = PIL.Image.fromarray(rgb).convert("CMYK")
    _close(image_to_tensor(cmyk), as_float(np.asarray(cmyk.convert("RGB")) / 255.0))
    _close(image_to_tensor(PIL.Image.fromarray(grey > 127)), as_float(np.repeat((grey > 127)[..., None], 3, 2) * 1.0))
    # a palette with a transparent colour is composited like RGBA
    transparent = PIL.Image.fromarray(rgb).convert("P")
    transparent.info["transparency"] = int(np.asarray(transparent)[0, 0])
    expected = np.asarray(transparent.convert("RGBA")) / 255.0
    _close(image_to_tensor(transparent), as_float(expected[..., :3] * expected[..., 3:] + (1 - expected[..., 3:])))
    # 16-bit, big-endian and 32-bit integer modes
    sixteen = rng.integers(0, 65536, (5, 6), dtype=np.uint16)
    expected16 = as_float(np.repeat(sixteen[..., None], 3, axis=2) / 65535.0)
    for mode in ("I;16", "I;16B", "I"):
        image = PIL.Image.fromarray(sixteen).convert(mode) if mode != "I;16B" else PIL.Image.frombytes(
            "I;16B", (6, 5), sixteen.astype(">u2").tobytes()
        )
        assert image.mode == mode
        _close(image_to_tensor(image), expected16)
    # arrays and tensors: uint8, uint16, float; HWC and CHW; 4 channels composited
    rgba = np.concatenate([rgb, alpha[..., None]], axis=2)
    expected_rgba = as_float(rgb / 255.0 * a + (1 - a))
    _close(image_to_tensor(rgba), expected_rgba)
    _close(image_to_tensor(rgba.transpose(2, 0, 1).copy()), expected_rgba)
    _close(image_to_tensor(torch.from_numpy(rgba).permute(2, 0, 1)), expected_rgba)
    _close(image_to_tensor(sixteen), expected16)
    _close(image_to_tensor(rgb.astype(np.float32) / 255), as_float(rgb / 255.0))


def test_bad_images_get_clear_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match="image: no such file"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="image: cannot read"):
        load_image(tmp_path / "bad.png")
    # the package's one pixel rule (models/input_checks.py): other integer widths are 0-255
    with pytest.raises(ValueError, match="images: expected integer pixels in 0-255, found values from 300 to 300"):
        image_to_tensor(np.full((4, 4, 3), 300, np.int64), "images")
    _close(image_to_tensor(np.full((4, 4, 3), 51, np.int64)), torch.full((3, 4, 4), 0.2))
    with pytest.raises(TypeError, match="images: expected integer .*found object"):
        image_to_tensor(np.array([[object()]]), "images")
    with pytest.raises(TypeError, match="image: expected RGB values .* found dtype torch.bool"):
        image_to_tensor(np.ones((4, 4), bool))
    with pytest.raises(ValueError, match=r"image: expected finite values in \[0, 1\], found NaN"):
        image_to_tensor(np.full((4, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="divide by 255"):
        image_to_tensor(np.full((4, 4), 200.0, np.float32))
    float_tiff = tmp_path / "float.tiff"
    PIL.Image.fromarray(np.full((4, 4), 200.0, np.float32), mode="F").save(float_tiff)
    with pytest.raises(ValueError, match="float.tiff.*divide by 255"):  # a file's errors name it
        load_image(float_tiff)


# ----------------------------------------------------------------------------------------------
# 16-bit PNGs: read as what they show (not as near-white), by the shared image loader
# (quarf_hf/models/image_utils.py), whichever entry point reads them.


def _png16(path, seed=0):
    """A 16-bit greyscale PNG (mode I;16) and its 8-bit equivalent as floats in [0, 1]."""
    values = np.random.default_rng(seed).integers(0, 65536, (40, 40), dtype=np.uint16)
    PIL.Image.fromarray(values).save(path)
    with PIL.Image.open(path) as check:
        assert check.mode.startswith("I")
    return torch.from_numpy(values.astype(np.float64) / 65535).float()


def test_16bit_png_predict_restoration(tiny_restoration, tmp_path):
    """The untrained restoration model is the identity: its output must be the image, not white."""
    from quarf_hf.cli import main

    tiny_restoration.save_pretrained(tmp_path / "model")
    grey = _png16(tmp_path / "deep.png")
    assert main(["predict", str(tmp_path / "model"), str(tmp_path / "deep.png"), "--out", str(tmp_path / "out")]) == 0
    restored = np.asarray(PIL.Image.open(tmp_path / "out" / "deep_restored.png").convert("L"), dtype=np.float64) / 255
    assert np.abs(restored - grey.numpy()).max() <= 1 / 255 + 1e-6


def test_16bit_png_dataset_loader(tmp_path):
    from quarf_hf.data import load_dataset_spec

    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    grey = _png16(root / "images" / "a.png")
    PIL.Image.fromarray(np.zeros((40, 40), np.uint8)).save(root / "masks" / "a.png")
    item = load_dataset_spec({"type": "folder", "path": str(root), "split": "train", "num_labels": 2})[0]
    torch.testing.assert_close(item["pixel_values"][0], grey, atol=1 / 255, rtol=0)


def test_16bit_png_extract_quality(tmp_path):
    from quarf_hf import extract_quality

    grey = _png16(tmp_path / "deep.png")
    with PIL.Image.open(tmp_path / "deep.png") as image:
        features = extract_quality(image)
    torch.testing.assert_close(features, extract_quality(grey[None].expand(3, -1, -1)), atol=1e-3, rtol=1e-3)


def test_16bit_png_quality_training_photos(tmp_path):
    """train-quality's photo folder reads a 16-bit PNG through the shared loader (values / 65535)."""
    from quarf_hf.quality_training.data import PhotoFolder

    grey = _png16(tmp_path / "deep.png")
    item = PhotoFolder(tmp_path)[0]["pixel_values"]
    torch.testing.assert_close(item, grey[None].expand(3, -1, -1), atol=1e-6, rtol=0)
