"""QuARF-SegFormer: outputs, loss, loading from SegFormer, Auto classes, remote code, pipeline, errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSemanticSegmentation,
    SegformerConfig,
    SegformerForSemanticSegmentation,
    SegformerImageProcessor,
    SegformerModel,
    pipeline,
)

from remote_code import run_without_quarf_hf

from quarf_hf import QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation, QuarfSegformerModel
from tiny_models import segformer_config

TINY = segformer_config(num_labels=3)


def tiny_quarf(**kwargs):
    torch.manual_seed(0)
    config = QuarfSegformerConfig(**TINY, quality="brisque", **kwargs)
    return QuarfSegformerForSemanticSegmentation(config).eval()


def pixel_batch(batch=2, size=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=gen)


def test_forward_outputs_and_loss():
    """Logits at 1/4 resolution, routing (B, groups, experts); the loss is SegFormer's CE on upsampled logits."""
    model = tiny_quarf()
    pixels = pixel_batch()
    labels = torch.randint(0, 3, (2, 64, 64), generator=torch.Generator().manual_seed(1))
    labels[0, :4] = 255  # ignored
    out = model(pixels, labels=labels)
    assert out.logits.shape == (2, 3, 16, 16)
    assert out.routing_weights.shape == (2, 4, 4)
    torch.testing.assert_close(out.routing_weights.sum(-1), torch.ones(2, 4))
    assert out.quality_features.shape == (2, 36)
    upsampled = torch.nn.functional.interpolate(out.logits, size=(64, 64), mode="bilinear", align_corners=False)
    expected = torch.nn.functional.cross_entropy(upsampled, labels, ignore_index=255)
    torch.testing.assert_close(out.loss, expected)


def test_quality_features_come_from_unnormalised_pixels():
    """The model un-normalises pixel_values with the config's mean/std before the extractor."""
    model = tiny_quarf()
    images01 = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    mean = torch.tensor(model.config.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(model.config.image_std).view(1, 3, 1, 1)
    out = model((images01 - mean) / std)
    direct = model.segformer.quality_extractor(images01)
    torch.testing.assert_close(out.quality_features, direct, atol=1e-4, rtol=1e-4)


def test_quarf_stage_choice_sets_block_width():
    model = tiny_quarf(quarf_stage=1)
    assert model.segformer.quarf.in_channels == 16
    assert model(pixel_batch()).logits.shape == (2, 3, 16, 16)


@pytest.fixture(scope="module")
def plain_segformer_folder(tmp_path_factory):
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("segformer")
    model = SegformerForSemanticSegmentation(SegformerConfig(**TINY)).eval()
    model.save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder, model


def test_from_segformer_keeps_every_weight_and_logits(plain_segformer_folder):
    """With the identity-initialised residual block, logits equal the original SegFormer's."""
    folder, original = plain_segformer_folder
    model = QuarfSegformerForSemanticSegmentation.from_segformer(folder, quality="brisque").eval()
    pixels = pixel_batch()
    with torch.no_grad():
        torch.testing.assert_close(model(pixels).logits, original(pixels).logits, atol=1e-6, rtol=1e-6)
    for name, tensor in original.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_from_backbone_only_checkpoint(tmp_path):
    """A backbone-only mit-b* style checkpoint (SegformerModel) fills the encoder; the head is new."""
    torch.manual_seed(2)
    backbone = SegformerModel(SegformerConfig(**TINY)).eval()
    backbone.save_pretrained(tmp_path)
    model = QuarfSegformerForSemanticSegmentation.from_segformer(tmp_path, quality="brisque", num_labels=5).eval()
    pixels = pixel_batch()
    with torch.no_grad():
        ours = model.segformer(pixels, output_hidden_states=True).hidden_states
        theirs = backbone(pixels, output_hidden_states=True).hidden_states
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    assert model(pixels).logits.shape[1] == 5


def test_auto_classes_resolve_our_models(tmp_path):
    model = tiny_quarf()
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), QuarfSegformerConfig)
    loaded = AutoModelForSemanticSegmentation.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, QuarfSegformerForSemanticSegmentation)
    assert isinstance(AutoModel.from_pretrained(tmp_path), QuarfSegformerModel)
    pixels = pixel_batch()
    torch.testing.assert_close(loaded(pixels).logits, model(pixels).logits)


def saved_with_processor(tmp_path, model):
    model.save_pretrained(tmp_path)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(tmp_path)
    return tmp_path


def test_save_writes_code_and_auto_map(tmp_path):
    folder = saved_with_processor(tmp_path, tiny_quarf())
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSemanticSegmentation"].endswith("QuarfSegformerForSemanticSegmentation")
    assert config["auto_map"]["AutoConfig"].endswith("QuarfSegformerConfig")
    for name in ("modeling_quarf_segformer.py", "configuration_quarf_segformer.py", "quarf.py"):
        assert (folder / name).exists(), name


def test_loads_with_remote_code_without_the_package(tmp_path):
    """A saved folder loads with trust_remote_code=True where quarf_hf cannot be imported, same logits."""
    model = tiny_quarf()
    folder = saved_with_processor(tmp_path / "model", model)
    pixels = pixel_batch()
    torch.save(pixels, tmp_path / "pixels.pt")
    with torch.no_grad():
        expected = model(pixels).logits
    code = f"""
import json, torch
try:
    import quarf_hf
    blocked = False
except ImportError:
    blocked = True
from transformers import AutoModelForSemanticSegmentation
model = AutoModelForSemanticSegmentation.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
with torch.no_grad():
    logits = model(torch.load({str(tmp_path / 'pixels.pt')!r})).logits
torch.save(logits, {str(tmp_path / 'logits.pt')!r})
print(json.dumps({{"blocked": blocked, "module": type(model).__module__}}))
"""
    info = run_without_quarf_hf(code, tmp_path)
    assert info["blocked"] is True
    assert not info["module"].startswith("quarf_hf")
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected, atol=1e-5, rtol=1e-5)


def test_image_segmentation_pipeline(tmp_path):
    """pipeline('image-segmentation') preprocesses with the saved processor and returns one mask per class found."""
    model = tiny_quarf()
    folder = saved_with_processor(tmp_path, model)
    segmenter = pipeline("image-segmentation", model=str(folder))
    image = Image.fromarray((np.random.default_rng(0).random((80, 96, 3)) * 255).astype(np.uint8))
    segments = segmenter(image)
    assert segments and all(s["mask"].size == image.size for s in segments)
    processor = SegformerImageProcessor.from_pretrained(folder)
    with torch.no_grad():
        logits = model(**processor(image, return_tensors="pt")).logits
    upsampled = torch.nn.functional.interpolate(logits, size=(80, 96), mode="bilinear", align_corners=False)
    expected_classes = {model.config.id2label[int(i)] for i in upsampled.argmax(1).unique()}
    assert {s["label"] for s in segments} == expected_classes


def test_plain_segformer_folder_points_to_from_segformer(plain_segformer_folder):
    folder, _ = plain_segformer_folder
    with pytest.raises(ValueError, match="from_segformer"):
        QuarfSegformerForSemanticSegmentation.from_pretrained(folder)


def test_quality_width_mismatch_rejected_at_config():
    with pytest.raises(ValueError, match="quarf.quality_dim: expected the quality extractor's feature width 36"):
        QuarfSegformerConfig(**TINY, quality="brisque", quarf={"quality_dim": 4096})


def test_invalid_stage_and_groups_rejected():
    with pytest.raises(ValueError, match="quarf_stage: expected an integer from 0 to 3, found 4"):
        QuarfSegformerConfig(**TINY, quality="brisque", quarf_stage=4)
    with pytest.raises(ValueError, match=r"quarf.num_groups: expected a divisor of stage 0's width \(8\)"):
        QuarfSegformerConfig(**TINY, quality="brisque", quarf={"num_groups": 3})


def test_too_small_images_get_a_clear_message():
    model = tiny_quarf()
    with pytest.raises(ValueError, match="pixel_values: images must be at least"):
        model(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="pixel_values: expected 3 channels"):
        model(torch.randn(1, 1, 64, 64))


# --- one normalisation reader; return_dict / output_hidden_states ---


def test_from_segformer_honours_do_normalize_false(tmp_path):
    """A base whose processor has do_normalize=False: the quality model must see the processor's
    pixels as they are. Compares the model's quality features with the extractor run directly on
    the image / 255 (what SegformerImageProcessor gives without normalisation), and the two
    readers of the processor (from_segformer's config and evaluation's model_pixel_normalisation)
    with each other. Before the fix from_segformer stored ImageNet's mean/std and 'un-normalised'
    already un-normalised pixels."""
    from quarf_hf.evaluation import model_pixel_normalisation
    from quarf_hf.models.image_utils import processor_normalisation

    torch.manual_seed(4)
    base = SegformerForSemanticSegmentation(SegformerConfig(**TINY)).eval()
    base.save_pretrained(tmp_path)
    processor = SegformerImageProcessor(size={"height": 64, "width": 64}, do_normalize=False)
    processor.save_pretrained(tmp_path)
    model = QuarfSegformerForSemanticSegmentation.from_segformer(tmp_path, quality="brisque").eval()
    assert list(model.config.image_mean) == [0.0, 0.0, 0.0] and list(model.config.image_std) == [1.0, 1.0, 1.0]
    plain = SegformerForSemanticSegmentation.from_pretrained(tmp_path)
    assert model_pixel_normalisation(plain) == processor_normalisation(tmp_path) == ([0.0] * 3, [1.0] * 3)

    image = (np.random.default_rng(5).random((64, 64, 3)) * 255).astype(np.uint8)
    pixel_values = processor(Image.fromarray(image), return_tensors="pt")["pixel_values"]
    expected_pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    torch.testing.assert_close(pixel_values, expected_pixels)
    with torch.no_grad():
        out = model(pixel_values)
        direct = model.segformer.quality_extractor(expected_pixels)
    torch.testing.assert_close(out.quality_features, direct, atol=1e-4, rtol=1e-4)


def test_processor_normalisation_reads_mean_std_and_falls_back(tmp_path):
    """The one reader: a processor's own mean/std; None where no processor is saved."""
    from quarf_hf.models.image_utils import processor_normalisation

    SegformerImageProcessor(image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.25, 0.3]).save_pretrained(tmp_path / "a")
    assert processor_normalisation(tmp_path / "a") == ([0.5, 0.4, 0.3], [0.2, 0.25, 0.3])
    (tmp_path / "empty").mkdir()
    assert processor_normalisation(tmp_path / "empty") is None


def _assert_same_outputs(ours, theirs, extra):
    """Ours is theirs plus ``extra`` trailing fields (routing weights, quality features)."""
    assert isinstance(ours, tuple) == isinstance(theirs, tuple)
    if isinstance(theirs, tuple):
        assert len(ours) == len(theirs) + extra
        pairs = zip(ours, theirs)
    else:
        assert set(ours.keys()) - {"routing_weights", "quality_features"} == set(theirs.keys())
        pairs = ((ours[key], theirs[key]) for key in theirs.keys())
    for a, b in pairs:
        if isinstance(b, tuple):
            assert isinstance(a, tuple) and len(a) == len(b)
            for x, y in zip(a, b):
                torch.testing.assert_close(x, y, atol=1e-6, rtol=1e-6)
        else:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("return_dict", [None, True, False])
@pytest.mark.parametrize("output_hidden_states", [None, False, True])
def test_return_dict_and_hidden_states_as_transformers_segformer(plain_segformer_folder, return_dict, output_hidden_states):
    """return_dict=False gives a tuple and output_hidden_states=True the encoder's hidden states,
    field for field as transformers' SegformerModel / SegformerForSemanticSegmentation with the
    same weights (the QuARF block is the identity at init). Before the fix QuarfSegformerModel
    ignored both (always a ModelOutput, always the hidden states)."""
    folder, original = plain_segformer_folder
    model = QuarfSegformerForSemanticSegmentation.from_segformer(folder, quality="brisque").eval()
    kwargs = {k: v for k, v in (("return_dict", return_dict), ("output_hidden_states", output_hidden_states)) if v is not None}
    pixels = pixel_batch()
    with torch.no_grad():
        _assert_same_outputs(model.segformer(pixels, **kwargs), original.segformer(pixels, **kwargs), extra=2)
        _assert_same_outputs(model(pixels, **kwargs), original(pixels, **kwargs), extra=2)
