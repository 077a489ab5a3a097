"""``max_side`` in a quality spec: the extractor sees a downscaled copy of large images (a speed option)."""

import pytest
import torch

from quarf_hf import QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation, build_quality_extractor

TINY = dict(hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1],
            decoder_hidden_size=16, num_labels=3)


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
    config = QuarfSegformerConfig(**TINY, quality={"type": "brisque", "max_side": 80})
    model = QuarfSegformerForSemanticSegmentation(config)
    model.save_pretrained(tmp_path)
    loaded = QuarfSegformerForSemanticSegmentation.from_pretrained(tmp_path)
    assert loaded.config.quality == {"type": "brisque", "max_side": 80}
    assert loaded.segformer.quality_extractor.max_side == 80


@pytest.mark.parametrize("max_side", [8, 0, "256", 1.5, True])
def test_bad_max_side_is_refused_naming_it(max_side):
    with pytest.raises(ValueError, match="max_side"):
        build_quality_extractor({"type": "brisque", "max_side": max_side})
