"""CONTRIQUE: the converter against an independent plain-torch ResNet-50 in the official layout."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from remote_code import run_without_quarf_hf

from quarf_hf import ContriqueConfig, ContriqueModel
from quarf_hf.cli import main as cli_main
from quarf_hf.hub.convert_contrique import build_contrique_folder, convert_state_dict


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck: stride on conv2, names conv1/bn1/.../downsample."""

    def __init__(self, in_ch, width, stride):
        super().__init__()
        out_ch = width * 4
        self.conv1, self.bn1 = nn.Conv2d(in_ch, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class OfficialContrique(nn.Module):
    """The official training module's layout: encoder = ResNet-50 children[:-2], projector MLP."""

    def __init__(self):
        super().__init__()
        layers, in_ch = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(in_ch, width, stride if i == 0 else 1))
                in_ch = width * 4
            layers.append(nn.Sequential(*stage))
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1), *layers
        )
        self.projector = nn.Sequential(
            nn.Linear(2048, 2048, bias=False), nn.BatchNorm1d(2048), nn.ReLU(),
            nn.Linear(2048, 128, bias=False), nn.BatchNorm1d(128),
        )

    def features(self, image):
        """The recipe: GAP of the encoder, L2-normalised, for the image and a half-size bicubic copy."""
        half = F.interpolate(image, size=(image.shape[2] // 2, image.shape[3] // 2), mode="bicubic", antialias=True)
        full = F.normalize(self.encoder(image).mean(dim=(2, 3)), dim=1)
        small = F.normalize(self.encoder(half).mean(dim=(2, 3)), dim=1)
        return torch.cat([full, small], dim=1), torch.stack([self.projector(full), self.projector(small)], dim=1)


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    torch.manual_seed(0)
    reference = OfficialContrique().eval()
    with torch.no_grad():  # random BN statistics, so a wrong BN mapping cannot hide
        for module in reference.modules():
            if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
    path = tmp_path_factory.mktemp("official") / "CONTRIQUE_checkpoint25.tar"
    torch.save(reference.state_dict(), path)
    return reference, path


@pytest.fixture(scope="module")
def converted(official, tmp_path_factory):
    _, path = official
    out = tmp_path_factory.mktemp("converted") / "contrique"
    assert cli_main(["convert-contrique", str(path), str(out)]) == 0
    return out


def test_converted_features_equal_the_reference(official, converted):
    reference, _ = official
    model = ContriqueModel.from_pretrained(converted).eval()
    images = torch.rand(2, 3, 96, 80, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected_features, expected_projections = reference.features(images)
        out = model(images, return_projections=True)
    assert out.quality_features.shape == (2, 4096)
    torch.testing.assert_close(out.quality_features, expected_features, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.projections, expected_projections, atol=1e-4, rtol=1e-4)


def test_folder_is_hub_ready(converted):
    assert (converted / "model.safetensors").exists()
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "contrique"
    assert config["auto_map"]["AutoModel"] == "modeling_contrique.ContriqueModel"
    assert (converted / "modeling_contrique.py").exists() and (converted / "configuration_contrique.py").exists()
    card = (converted / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: transformers" in card


def test_loads_with_remote_code_without_the_package(converted, tmp_path):
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    torch.save(images, tmp_path / "x.pt")
    expected = ContriqueModel.from_pretrained(converted).eval()(images).quality_features
    code = f"""
import json, torch
from transformers import AutoModel
model = AutoModel.from_pretrained({str(converted)!r}, trust_remote_code=True).eval()
with torch.no_grad():
    torch.save(model(torch.load({str(tmp_path / 'x.pt')!r})).quality_features, {str(tmp_path / 'y.pt')!r})
print(json.dumps({{"module": type(model).__module__}}))
"""
    assert not run_without_quarf_hf(code)["module"].startswith("quarf_hf")
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), expected, atol=1e-5, rtol=1e-5)


def test_converter_names_missing_unused_and_misshaped_keys(official):
    reference, _ = official
    state = dict(reference.state_dict())
    missing = dict(state)
    del missing["encoder.4.0.conv2.weight"]
    with pytest.raises(ValueError, match=r"1 missing .*encoder\.encoder\.stages\.0\.layers\.0\.layer\.1\.convolution\.weight"):
        convert_state_dict(missing)
    with pytest.raises(ValueError, match=r"1 unused .*fc\.weight"):
        convert_state_dict({**state, "fc.weight": torch.zeros(10, 2048)})
    wrong = {**state, "projector.3.weight": torch.zeros(64, 2048)}
    with pytest.raises(ValueError, match=r"mis-shaped .*projector\.3\.weight: expected \(128, 2048\), found \(64, 2048\)"):
        convert_state_dict(wrong)


def test_converter_refuses_to_overwrite_and_leaves_nothing_on_failure(official, tmp_path, capsys):
    _, path = official
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    assert cli_main(["convert-contrique", str(path), str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "user data"
    bad = tmp_path / "bad.tar"
    torch.save({"fc.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(ValueError):
        build_contrique_folder(tmp_path / "new", checkpoint=bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar", "out"]


@pytest.mark.parametrize(
    "shape, message",
    [((3, 64, 64), "expected a 4-D tensor"), ((1, 1, 64, 64), "expected 3 channels"), ((1, 3, 63, 64), "at least 64x64")],
)
def test_bad_pixel_values(tiny_contrique, shape, message):
    with pytest.raises(ValueError, match=message):
        tiny_contrique(torch.rand(shape))


SMALL_CONTRIQUE = {"embedding_size": 8, "hidden_sizes": [8, 16, 16, 16], "depths": [1, 1, 1, 1], "projection_dim": 8}


def test_every_contrique_folder_serves_the_feature_extraction_pipeline(tmp_path):
    """save_pretrained writes an image processor: pipeline("image-feature-extraction") gives ContriqueModel's features."""
    import numpy as np
    from PIL import Image
    from transformers import pipeline

    from quarf_hf.models.image_utils import image_to_tensor

    model = ContriqueModel(ContriqueConfig(**SMALL_CONTRIQUE)).eval()
    model.save_pretrained(tmp_path / "contrique")
    assert (tmp_path / "contrique" / "preprocessor_config.json").is_file()
    image = Image.fromarray((np.random.default_rng(0).random((70, 90, 3)) * 255).astype(np.uint8))
    features = pipeline("image-feature-extraction", model=str(tmp_path / "contrique"))(image)
    with torch.no_grad():
        expected = model(image_to_tensor(image, "image")[None]).quality_features
    torch.testing.assert_close(torch.tensor(features), expected)
    # The conversion's folder has one as well.
    out = build_contrique_folder(tmp_path / "converted", name="contrique-resnet50")
    assert (out / "preprocessor_config.json").is_file()


@pytest.mark.parametrize("quality", ["brisque", "contrique"])
@pytest.mark.parametrize("kind", ["segformer", "restoration"])
def test_quarf_models_run_in_bf16_on_cpu(tmp_path, quality, kind):
    """from_pretrained(dtype=torch.bfloat16): the network in bf16, the quality extractor kept in float32
    (_keep_in_fp32_modules_strict), the same quality features as in float32."""
    import warnings

    from quarf_hf import (QuarfRestorationConfig, QuarfRestorationModel, QuarfSegformerConfig,
                          QuarfSegformerForSemanticSegmentation)

    spec = "brisque" if quality == "brisque" else {"type": "contrique", "config": SMALL_CONTRIQUE}
    block = {"num_groups": 2, "experts": [[3, 1], [3, 2]]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "segformer":
            model = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(
                quality=spec, num_labels=3, quarf=block, hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1],
                num_attention_heads=[1, 1, 1, 1], sr_ratios=[2, 1, 1, 1], decoder_hidden_size=16))
        else:
            model = QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[8, 16], norm_num_groups=4,
                                                                 quality=spec, quarf=block))
    model.eval().save_pretrained(tmp_path / "model")
    pixels = torch.rand(2, 3, 64, 64).bfloat16()
    with torch.no_grad():
        reference = model(pixels.float())
    half = type(model).from_pretrained(tmp_path / "model", dtype=torch.bfloat16).eval()
    extractor = half.segformer.quality_extractor if kind == "segformer" else half.quality_extractor
    assert all(t.dtype == torch.float32 for t in [*extractor.parameters(), *extractor.buffers()] if t.is_floating_point())
    assert {p.dtype for n, p in half.named_parameters() if "quality_extractor" not in n} == {torch.bfloat16}
    with torch.no_grad():
        out = half(pixels)
    prediction = out.logits if kind == "segformer" else out.reconstruction
    assert prediction.dtype == torch.bfloat16 and torch.isfinite(prediction.float()).all()
    torch.testing.assert_close(out.quality_features, reference.quality_features)
