"""QuARF restoration model: sizes, loss, dtype, learning, pipeline, remote code, Hub, errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModel, pipeline

from remote_code import run_without_quarf_hf

from quarf_hf import QuarfRestorationConfig, QuarfRestorationModel
from quarf_hf.hub.build import build
from tiny_models import restoration_config

SMALL = restoration_config()


def small_model(**kwargs):
    torch.manual_seed(0)
    return QuarfRestorationModel(QuarfRestorationConfig(**{**SMALL, **kwargs})).eval()


def test_identity_at_init_and_odd_sizes():
    """conv_out starts at zero: the global residual makes the untrained model the identity, at any size."""
    model = small_model(block_out_channels=[16, 16, 32])
    for height, width in ((37, 53), (32, 32), (17, 90)):
        images = torch.rand(2, 3, height, width)
        out = model(images)
        assert out.reconstruction.shape == images.shape
        assert torch.equal(out.reconstruction, images)
        assert out.routing_weights.shape == (2, 4, 4)


@pytest.mark.parametrize("loss", ["l1", "charbonnier"])
def test_loss_matches_its_formula(loss):
    model = small_model(loss=loss)
    with torch.no_grad():
        model.conv_out.weight.normal_(0, 0.05)  # a non-identity output
    images, clean = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    out = model(images, labels=clean)
    difference = out.reconstruction - clean
    expected = difference.abs().mean() if loss == "l1" else torch.sqrt(difference**2 + 1e-6).mean()
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize("loss", ["l1", "charbonnier"])
@pytest.mark.parametrize("offset", [-2.0, 2.0])
def test_loss_pulls_back_pixels_pushed_past_the_range(loss, offset):
    """A residual that pushes every pixel past [0, 1] (conv_out's bias at -2 or +2) leaves the output
    clamped, yet the loss still moves the bias back towards the range (before the fix the clamp passed
    no gradient, and a DnCNN whose residual drifted there stopped learning). Reference: the loss's
    derivative by hand."""
    model = small_model(loss=loss, backbone="dncnn", block_out_channels=[8], num_layers=2).train()
    with torch.no_grad():
        model.conv_out.bias.fill_(offset)
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    clean = 0.1 + 0.8 * torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = model(images, labels=clean)
    assert torch.equal(out.reconstruction, torch.full_like(images, 0.0 if offset < 0 else 1.0))
    out.loss.backward()
    gradient = model.conv_out.bias.grad
    # d/d(bias) of the mean of |c - y| over B x 3 x H x W pixels, c clamped to 0 (or 1) and y in [0.1, 0.9]:
    # sign(c - y) / 3 for each channel's bias (Charbonnier's |d| / sqrt(d^2 + 1e-6) is 1 within 1e-4 there).
    expected = torch.full((3,), (1.0 if offset > 0 else -1.0) / 3)
    torch.testing.assert_close(gradient, expected, rtol=1e-4, atol=0)


def test_dtypes():
    model = small_model()
    images = torch.rand(1, 3, 20, 28, dtype=torch.float64)
    assert model(images).reconstruction.shape == (1, 3, 20, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images.float())
    torch.testing.assert_close(out.reconstruction.float(), images.float(), atol=1e-2, rtol=0)


def test_learns_to_denoise():
    """On 6 synthetic (noisy, clean) pairs the Charbonnier loss falls by at least half within 50 steps."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    phases = torch.rand(6, 3, 1, 1, generator=generator) * 6
    clean = 0.5 + 0.35 * torch.sin(xx * 6 + phases) * torch.cos(yy * 4 + phases)
    noisy = (clean + 0.15 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    model = small_model().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        loss = model(noisy, labels=clean).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("restoration")
    model = small_model()
    with torch.no_grad():
        model.conv_out.weight.normal_(0, 0.05)
    model.save_pretrained(folder)
    return folder, model


def test_saved_with_code_auto_map_and_pipeline(saved_folder):
    folder, _ = saved_folder
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_quarf_restoration.QuarfRestorationModel"
    assert config["custom_pipelines"]["image-to-image"]["impl"] == "pipeline_quarf_restoration.QuarfImageToImagePipeline"
    assert (folder / "pipeline_quarf_restoration.py").exists()
    assert (folder / "image_utils.py").exists()  # the pipeline's image loader travels with it
    assert isinstance(AutoModel.from_pretrained(folder), QuarfRestorationModel)


def test_pipeline_is_a_registered_task_of_our_own(saved_folder):
    """The task goes through transformers' public registry; its private REMOVED_TASKS table is left
    alone, and with the package installed the call needs no trust_remote_code."""
    from transformers import pipelines

    from quarf_hf.models.pipeline_quarf_restoration import QuarfImageToImagePipeline

    folder, _ = saved_folder
    assert "image-to-image" in pipelines.REMOVED_TASKS
    assert pipelines.PIPELINE_REGISTRY.supported_tasks["quarf-restoration"]["impl"] is QuarfImageToImagePipeline
    restorer = pipeline("quarf-restoration", model=str(folder))
    assert type(restorer) is QuarfImageToImagePipeline and restorer(Image.new("RGB", (17, 13))).size == (17, 13)
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"]["quarf-restoration"]["impl"] == "pipeline_quarf_restoration.QuarfImageToImagePipeline"


def test_pipeline_inputs_and_outputs(saved_folder, tmp_path):
    """PIL/path/array, grayscale and RGBA, single and batched: PIL images of the input sizes, the model's pixels."""
    folder, model = saved_folder
    restorer = pipeline("quarf-restoration", model=str(folder), trust_remote_code=True)
    rgb = (np.random.default_rng(0).random((37, 45, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    single = restorer(Image.fromarray(rgb))
    assert isinstance(single, Image.Image) and single.size == (45, 37)
    with torch.no_grad():
        expected = model(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255).reconstruction[0]
    expected = (expected.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(np.asarray(single), expected)
    batch = restorer([str(tmp_path / "in.png"), rgb, np.zeros((30, 33), np.uint8),
                      Image.fromarray(np.dstack([rgb, np.full((37, 45), 255, np.uint8)]), "RGBA")])
    assert [image.size for image in batch] == [(45, 37), (45, 37), (33, 30), (45, 37)]
    assert np.array_equal(np.asarray(batch[0]), np.asarray(single))
    assert np.array_equal(np.asarray(batch[3]), np.asarray(single)), "opaque RGBA equals RGB"


def test_remote_code_without_the_package(saved_folder, tmp_path):
    folder, model = saved_folder
    images = torch.rand(1, 3, 29, 31)
    torch.save(images, tmp_path / "x.pt")
    code = f"""
import json, torch, numpy as np
from PIL import Image
from transformers import AutoModel, pipeline
model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
with torch.no_grad():
    torch.save(model(torch.load({str(tmp_path / 'x.pt')!r})).reconstruction, {str(tmp_path / 'y.pt')!r})
out = pipeline("quarf-restoration", model={str(folder)!r}, trust_remote_code=True)(Image.new("RGB", (21, 19)))
print(json.dumps({{"module": type(model).__module__, "size": list(out.size)}}))
"""
    info = run_without_quarf_hf(code)
    assert not info["module"].startswith("quarf_hf") and info["size"] == [21, 19]
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "y.pt"), model(images).reconstruction)


@pytest.mark.parametrize("block_quarf_hf", [False, True], ids=["with-quarf_hf", "remote-code-only"])
def test_hub_round_trip(local_hub, saved_folder, tmp_path, block_quarf_hf):
    folder, model = saved_folder
    local_hub.publish(folder, "quarf-test/tiny-restoration")
    images = torch.rand(1, 3, 26, 34)
    torch.save(images, tmp_path / "x.pt")
    code = """
import json, torch
from PIL import Image
from transformers import AutoModel, pipeline
model = AutoModel.from_pretrained("quarf-test/tiny-restoration", trust_remote_code=True).eval()
with torch.no_grad():
    torch.save(model(torch.load("x.pt")).reconstruction, "y.pt")
out = pipeline("quarf-restoration", model="quarf-test/tiny-restoration", trust_remote_code=True)(Image.new("RGB", (25, 23)))
print(json.dumps({"size": list(out.size)}))
"""
    info = local_hub.run(code, block_quarf_hf=block_quarf_hf, cwd=tmp_path)
    assert info["size"] == [25, 23]
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "y.pt"), model(images).reconstruction)


@pytest.mark.parametrize("variant", ["quarf-restoration-small", "quarf-restoration-base"])
def test_build_restoration_variants(variant, tmp_path):
    out = build(variant, tmp_path / variant, quality="brisque")
    model = AutoModel.from_pretrained(out)
    assert isinstance(model, QuarfRestorationModel)
    assert "pipeline_tag: image-to-image" in (out / "README.md").read_text()
    assert model(torch.rand(1, 3, 40, 40)).reconstruction.shape == (1, 3, 40, 40)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"quarf": {"quality_dim": 4096}}, "quarf.quality_dim: expected the quality extractor's feature width 36"),
        ({"loss": "l2"}, "loss: expected one of"),
        ({"norm_num_groups": 5}, "norm_num_groups: expected a divisor"),
        ({"quarf": {"num_groups": 3}, "norm_num_groups": 4, "block_out_channels": [8, 16]}, "quarf.num_groups: expected a divisor"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QuarfRestorationConfig(**{**SMALL, **kwargs})


def test_input_errors():
    model = small_model()
    with pytest.raises(ValueError, match="pixel_values: expected a 4-D tensor"):
        model(torch.rand(3, 20, 20))
    # Below the quality model's 14 px the model still runs: the quality model sees an upscale.
    assert model(torch.rand(1, 3, 10, 40)).reconstruction.shape == (1, 3, 10, 40)
    with pytest.raises(ValueError, match="pixel_values: expected values in \\[0, 1\\], found min .*; they look like 0-255 values: divide by 255"):
        model(torch.rand(1, 3, 20, 20) * 255)
    with pytest.raises(ValueError, match="labels: expected clean images of shape"):
        model(torch.rand(1, 3, 20, 20), labels=torch.rand(1, 3, 20, 21))


def test_gradient_checkpointing_gives_the_same_gradients():
    """gradient_checkpointing_enable() reaches diffusers' UNet blocks; the gradients do not change."""
    from diffusers.models.unets.unet_2d_blocks import DownBlock2D

    def gradients(checkpointing):
        torch.manual_seed(0)
        model = QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[8, 16], norm_num_groups=4,
                                                             quarf={"num_groups": 2, "experts": [[3, 1], [3, 2]],
                                                                    "router_noise": False}))
        torch.nn.init.normal_(model.conv_out.weight, std=0.01)
        model.train()
        if checkpointing:
            # transformers 5.25 renamed it activation_checkpointing_enable; the old name still works.
            (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
            assert all(block.gradient_checkpointing for block in model.modules() if isinstance(block, DownBlock2D))
        generator = torch.Generator().manual_seed(1)
        images = torch.rand(2, 3, 16, 16, generator=generator)
        model(pixel_values=images, labels=torch.rand(2, 3, 16, 16, generator=generator)).loss.backward()
        return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    plain, checkpointed = gradients(False), gradients(True)
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], msg=name)


def test_device_map_auto_loads_on_cpu(saved_folder):
    folder, model = saved_folder
    loaded = QuarfRestorationModel.from_pretrained(folder, device_map="auto")
    assert {p.device.type for p in loaded.parameters()} == {"cpu"}
    assert QuarfRestorationModel._no_split_modules  # what device_map="auto" places whole
    images = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(images).reconstruction, model.eval()(images).reconstruction)


def _receptive_field(model) -> int:
    """The width of the input window that moves the output's centre pixel (autograd, no formula)."""
    torch.manual_seed(0)
    for module in model.modules():  # positive weights and biases: no ReLU dead, conv_out not zero
        if isinstance(module, torch.nn.Conv2d):
            module.weight.data.uniform_(0.0, 0.01)
            module.bias.data.fill_(0.01)
    x = (0.25 + 0.5 * torch.rand(1, 3, 65, 65)).requires_grad_()  # the output stays inside the clamp
    model(x, quality_features=torch.zeros(1, model.config.quarf["quality_dim"])).reconstruction.sum(1)[0, 32, 32].backward()
    columns = x.grad.abs().sum((0, 1, 2)).nonzero().flatten()
    return int(columns.max() - columns.min() + 1)


def test_dncnn_backbone_sees_11_px_and_the_block_widens_it():
    """The plain stack (conv_in, 3 layers, conv_out, all 3x3) sees 2 * 5 + 1 = 11 px; a block whose
    one expert is a 3x3 of dilation 8 adds 2 * 8 = 16 px (27), measured by autograd."""
    plain = QuarfRestorationModel(QuarfRestorationConfig(backbone="dncnn", block_out_channels=[8], conditioning="none",
                                                         quarf={"num_groups": 2, "experts": [[3, 1]]}))
    routed = QuarfRestorationModel(QuarfRestorationConfig(backbone="dncnn", block_out_channels=[8],
                                                          quarf={"num_groups": 2, "experts": [[3, 8]]}))
    routed.quarf.residual_scale.data.fill_(1.0)  # the block's branch on (zero at its identity start)
    assert _receptive_field(plain) == 11 and _receptive_field(routed) == 27
    assert plain.config.size_multiple == 1 and not hasattr(plain, "down_blocks")


def test_dncnn_backbone_is_the_identity_at_init_and_saves_and_loads(tmp_path):
    """Identity at init at any size (no padding); from_pretrained gives the same weights and outputs."""
    torch.manual_seed(0)
    model = QuarfRestorationModel(QuarfRestorationConfig(backbone="dncnn", block_out_channels=[8], num_layers=2,
                                                         quarf={"num_groups": 2, "experts": [[3, 1], [3, 4]]})).eval()
    images = torch.rand(2, 3, 19, 23)
    assert torch.equal(model(images).reconstruction, images)
    for parameter in model.parameters():
        parameter.data.normal_(0, 0.05)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert loaded.config.backbone == "dncnn" and loaded.config.num_layers == 2
    with torch.no_grad():
        assert torch.equal(loaded(images).reconstruction, model(images).reconstruction)
    with pytest.raises(Exception, match="block_out_channels: the dncnn backbone runs at one width"):
        QuarfRestorationConfig(backbone="dncnn", block_out_channels=[8, 16])


def test_static_film_keeps_the_experts_under_one_mixture_with_the_routed_blocks_parameters():
    """conditioning "static_film": the block's parameters within 10% of "route"'s (counted), the
    identity at init, one mixture for every image whatever its quality vector, and the quality
    vector still changes the output (through FiLM) once the weights are off their start."""
    settings = {"backbone": "dncnn", "block_out_channels": [16],
                "quarf": {"num_groups": 4, "experts": [[3, 1], [3, 2], [3, 4], [3, 8]]}}
    counts = {mode: sum(p.numel() for p in QuarfRestorationModel(QuarfRestorationConfig(
        conditioning=mode, **settings)).quarf.parameters()) for mode in ("route", "static_film")}
    assert abs(counts["static_film"] - counts["route"]) <= 0.1 * counts["route"]
    torch.manual_seed(0)
    model = QuarfRestorationModel(QuarfRestorationConfig(conditioning="static_film", **settings)).eval()
    x = torch.rand(2, 3, 20, 20)
    assert torch.equal(model(x).reconstruction, x)
    for p in model.parameters():
        p.data.normal_(0, 0.1)
    q1, q2 = torch.randn(2, 36), torch.randn(2, 36)
    with torch.no_grad():
        first, second = model(x, quality_features=q1), model(x, quality_features=q2)
    assert torch.equal(first.routing_weights[0], first.routing_weights[1])
    assert torch.equal(first.routing_weights, second.routing_weights)
    assert not torch.allclose(first.reconstruction, second.reconstruction)
