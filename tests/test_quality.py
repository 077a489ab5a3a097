"""build_quality_extractor for every kind of spec, and extract_quality on every kind of image."""

import numpy as np
import pytest
import torch
from PIL import Image

from quarf_hf import BrisqueFeatures, QuarfSegformerForSemanticSegmentation, build_quality_extractor, extract_quality
from quarf_hf.models.quality import BRISQUE_FEATURE_MEAN, BRISQUE_FEATURE_STD, extractor_spec
from tiny_models import contrique_config, make_contrique, make_quarf_segformer

SMALL_CONTRIQUE = contrique_config()


def assert_frozen(module):
    assert module.training is False
    module.train()
    assert module.training is False, "train() must not switch a frozen extractor to training mode"
    assert all(not p.requires_grad for p in module.parameters())


def test_brisque_extractor_is_standardised_brisque():
    """Independent check: (BrisqueFeatures(x) - mean) / std with the documented constants."""
    extractor = build_quality_extractor("brisque")
    assert extractor.feature_dim == 36
    assert_frozen(extractor)
    images = torch.rand(3, 3, 48, 56, generator=torch.Generator().manual_seed(0))
    expected = (BrisqueFeatures()(images) - torch.tensor(BRISQUE_FEATURE_MEAN)) / torch.tensor(BRISQUE_FEATURE_STD)
    torch.testing.assert_close(extractor(images), expected)
    assert extractor_spec(extractor) == {"type": "brisque"}


def test_brisque_on_a_constant_image_is_finite():
    features = build_quality_extractor("brisque")(torch.full((1, 3, 32, 32), 0.5))
    assert torch.isfinite(features).all()


def test_contrique_extractors_from_name_dict_and_folder(tmp_path):
    assert build_quality_extractor("contrique").feature_dim == 4096
    from_dict = build_quality_extractor({"type": "contrique", "config": SMALL_CONTRIQUE})
    assert from_dict.feature_dim == 64
    assert_frozen(from_dict)
    torch.manual_seed(0)
    model = make_contrique()
    model.save_pretrained(tmp_path)
    from_folder = build_quality_extractor(str(tmp_path))
    assert_frozen(from_folder)
    images = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(from_folder(images), model(images).quality_features)
    spec = extractor_spec(from_folder)
    assert spec["type"] == "contrique" and spec["config"]["hidden_sizes"] == [8, 16, 16, 32]


def test_module_spec_and_errors():
    class Custom(torch.nn.Module):
        feature_dim = 5

        def forward(self, x):
            return x.mean(dim=(2, 3)).repeat(1, 2)[:, :5]

    custom = build_quality_extractor(Custom())
    assert custom.training is False
    with pytest.raises(ValueError, match="spec: a module must have an integer feature_dim"):
        build_quality_extractor(torch.nn.Identity())
    with pytest.raises(ValueError, match="could not load '/no/such/folder'"):
        build_quality_extractor("/no/such/folder")
    with pytest.raises(ValueError, match="spec: expected"):
        build_quality_extractor(3)


def test_extract_quality_accepts_every_image_kind():
    """PIL (RGB, L, RGBA), numpy uint8/float, tensors of different sizes give the features of the RGB pixels."""
    rng = np.random.default_rng(0)
    rgb = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
    gray = (rng.random((36, 36)) * 255).astype(np.uint8)
    rgba = np.concatenate([rgb, np.full((40, 50, 1), 255, np.uint8)], axis=2)
    images = [Image.fromarray(rgb), Image.fromarray(gray), Image.fromarray(rgba), rgb, rgb.astype(np.float32) / 255,
              torch.from_numpy(rgb).permute(2, 0, 1).float() / 255]
    features = extract_quality(images, extractor="brisque")
    assert features.shape == (6, 36)
    brisque = build_quality_extractor("brisque")
    reference = brisque(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0]
    for row in (0, 2, 3, 4, 5):  # the same RGB pixels, whatever the container
        torch.testing.assert_close(features[row], reference, atol=1e-4, rtol=1e-4)
    gray_rgb = torch.from_numpy(gray).float().div(255)[None].expand(3, -1, -1)[None]
    torch.testing.assert_close(features[1], brisque(gray_rgb)[0], atol=1e-4, rtol=1e-4)


def test_extract_quality_rgba_composites_on_white():
    rgba = np.zeros((40, 40, 4), np.uint8)  # fully transparent black = white
    expected = extract_quality(np.full((40, 40, 3), 255, np.uint8))
    torch.testing.assert_close(extract_quality(rgba), expected)


@pytest.mark.parametrize(
    "images, error, message",
    [
        ([], ValueError, "images: expected at least one image"),
        ([np.zeros((8, 8, 3), np.uint8)], ValueError, r"images\[0\]: expected at least 14x14 pixels"),
        ([np.zeros((32, 32, 3), np.float32), np.full((32, 32, 3), np.nan, np.float32)], ValueError, r"images\[1\]: expected finite values in \[0, 1\], found NaN"),
        ([np.zeros((32, 0, 3), np.uint8)], ValueError, r"images\[0\]"),
        ([3], TypeError, r"images\[0\]: expected a path, a PIL image"),
        (["no-such-image.png"], FileNotFoundError, r"images\[0\]: no such file 'no-such-image.png'"),
        ([np.zeros((32, 32, 5), np.uint8)], ValueError, r"images\[0\]: expected \(H, W\)"),
    ],
)
def test_extract_quality_errors(images, error, message):
    with pytest.raises(error, match=message):
        extract_quality(images)


@pytest.mark.parametrize("spec", ["brisque", {"type": "constant", "dim": 7}, {"type": "contrique", "config": SMALL_CONTRIQUE}])
def test_registry_widths_and_minimum_sizes_match_the_built_extractors(spec):
    """quality_feature_dim / quality_min_size read from the spec agree with the extractor the spec builds."""
    import warnings

    from quarf_hf.models.quality import QUALITY_TYPES, normalize_quality_spec, quality_feature_dim, quality_min_size

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extractor = build_quality_extractor(spec)
    assert type(extractor) is QUALITY_TYPES[normalize_quality_spec(spec)["type"]]
    assert (quality_feature_dim(spec), quality_min_size(spec)) == (extractor.feature_dim, extractor.min_size)
    assert normalize_quality_spec(extractor_spec(extractor)) == normalize_quality_spec(spec)


def test_contrique_without_weights_warns_naming_the_fix(tmp_path):
    with pytest.warns(UserWarning, match="random weights.*quarf-hf convert-contrique"):
        build_quality_extractor("contrique")
    make_contrique().save_pretrained(tmp_path)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a folder brings its weights: no warning
        build_quality_extractor(str(tmp_path))
        build_quality_extractor({"type": "contrique", "config": SMALL_CONTRIQUE, "source": str(tmp_path)})


# ----------------------------------------------------------------------------------------------
# max_side in a quality spec: the extractor sees a downscaled copy of large images (a speed option).


@pytest.mark.parametrize("name", ["brisque", "contrique"])
def test_features_equal_the_extractor_on_an_independently_resized_copy(name):
    """Compares max_side's features with the plain extractor run on a copy resized by hand
    (torch's antialiased bilinear resize to longer side 96, aspect kept)."""
    torch.manual_seed(0)
    plain = build_quality_extractor(name)
    small = build_quality_extractor({"type": name, "max_side": 96})
    small.load_state_dict(plain.state_dict())
    images = torch.rand(2, 3, 192, 144)
    resized = torch.nn.functional.interpolate(images, size=(96, 72), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(small(images), plain(resized))
        # Images already within max_side are untouched.
        torch.testing.assert_close(small(resized), plain(resized))
        assert not torch.allclose(small(images), plain(images))


def test_max_side_travels_with_the_model_config(tmp_path):
    model = make_quarf_segformer(quality={"type": "brisque", "max_side": 80})
    model.save_pretrained(tmp_path)
    loaded = QuarfSegformerForSemanticSegmentation.from_pretrained(tmp_path)
    assert loaded.config.quality == {"type": "brisque", "max_side": 80}
    assert loaded.segformer.quality_extractor.max_side == 80


@pytest.mark.parametrize("max_side", [8, 0, "256", 1.5, True])
def test_bad_max_side_is_refused_naming_it(max_side):
    with pytest.raises(ValueError, match="max_side"):
        build_quality_extractor({"type": "brisque", "max_side": max_side})
