"""QuARF adapters in transformers' own vision hosts (tiny random configs): SAM (channels-last patch
embedding, quality computed in ``vision_encoder``), ViT and DINOv2 (tokens after a class token),
Swin (``(tokens, (H, W))``), ConvNeXt ((B, C, H, W)) and SegFormer (``(tokens, H, W)``).

The reference for "unchanged at insertion" is the host's own output before insertion; routing is
compared between a built-in photo and the same photo under a corruption (BRISQUE sees them apart).
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import transformers

from quarf_hf import QuarfAdapter, insert_quarf
from quarf_hf.data import load_photo
from quarf_hf.degradations import degrade
from quarf_hf.models.checks import InputError
from quarf_hf.models.conditioning import apply_block
from tiny_models import make_sam, segformer_config


VIT = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32,
       "patch_size": 8}
# name: (tiny host, the module after which the block goes, insert_quarf settings, image size, the output compared)
HOSTS = {
    "sam": (make_sam, "vision_encoder.patch_embed", {"entry": "vision_encoder"}, 64,
            lambda model, pixels: model.vision_encoder(pixel_values=pixels).last_hidden_state),
    "vit": (lambda: transformers.ViTModel(transformers.ViTConfig(**VIT)), "embeddings", {}, 32,
            lambda model, pixels: model(pixel_values=pixels).last_hidden_state),
    "dinov2": (lambda: transformers.Dinov2Model(transformers.Dinov2Config(**VIT)), "embeddings", {}, 32,
               lambda model, pixels: model(pixel_values=pixels).last_hidden_state),
    "swin": (lambda: transformers.SwinModel(transformers.SwinConfig(embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                                                                    image_size=32, patch_size=4, window_size=4)),
             "embeddings", {}, 32, lambda model, pixels: model(pixel_values=pixels).last_hidden_state),
    "convnext": (lambda: transformers.ConvNextModel(transformers.ConvNextConfig(hidden_sizes=[16, 32], depths=[1, 1],
                                                                                num_stages=2)),
                 "embeddings", {}, 32, lambda model, pixels: model(pixel_values=pixels).last_hidden_state),
    "segformer": (lambda: transformers.SegformerModel(transformers.SegformerConfig(**segformer_config())),
                  "stages.0.patch_embeddings", {}, 32, lambda model, pixels: model(pixel_values=pixels).last_hidden_state),
}


def host(name):
    torch.manual_seed(0)
    make, after, settings, size, run = HOSTS[name]
    return make().eval(), after, settings, size, run


def photos(size):
    """A built-in photo, clean and under strong Gaussian noise, normalised with mean = std = 0.5."""
    clean = torch.nn.functional.interpolate(load_photo("astronaut")[None], size=(size, size), mode="area")
    degraded = degrade(clean, "gaussian_noise", 5, torch.Generator().manual_seed(0))
    return torch.cat([clean, degraded]) * 2 - 1


def insert(model, name, after, settings):
    return insert_quarf(model, after=after, quality="brisque", pixel_mean=0.5, pixel_std=0.5, **settings)


def perturb(adapter):
    """Moves the blocks away from the identity, as training would."""
    with torch.no_grad():
        for parameter in adapter.blocks.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))


@pytest.mark.parametrize("name", list(HOSTS))
def test_unchanged_at_insertion_trains_and_routes_by_quality(name):
    """Outputs equal the host's own before insertion; a loss reaches the block; the routing of a clean
    photo and of the same photo under noise differ; unload() gives the host back."""
    model, after, settings, size, run = host(name)
    pixels = photos(size)
    with torch.no_grad():
        reference = run(model, pixels)
    adapter = insert(model, name, after, settings)
    with adapter.record_routing() as routing, torch.no_grad():
        output = run(model, pixels)
    assert torch.equal(output, reference)
    weights = routing[0][after]
    assert weights.shape[0] == 2
    assert (weights[0] - weights[1]).abs().max().item() > 1e-3
    run(model, pixels).square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in adapter.blocks.parameters())
    assert adapter.unload() is model and not any("quarf" in n for n, _ in model.named_modules())
    with torch.no_grad():
        assert torch.equal(run(model, pixels), reference)


@pytest.mark.parametrize("name", list(HOSTS))
def test_adapter_alone_reloads_and_copies(name, tmp_path):
    """A trained adapter saved alone and attached to a fresh host reproduces the outputs; a deepcopy of
    the attached host runs its own blocks (changing the copy's block leaves the original's outputs)."""
    model, after, settings, size, run = host(name)
    fresh = copy.deepcopy(model)
    pixels = photos(size)
    adapter = insert(model, name, after, settings)
    perturb(adapter)
    with torch.no_grad():
        trained = run(model, pixels)
        assert (trained - run(fresh, pixels)).abs().max() > 1e-4
    adapter.save_pretrained(tmp_path / "adapter")
    loaded = QuarfAdapter.from_pretrained(tmp_path / "adapter").attach(fresh)
    copied = copy.deepcopy(model)
    with torch.no_grad():
        torch.testing.assert_close(run(fresh, pixels), trained)
        for parameter in copied.parameters():
            parameter.zero_()
        torch.testing.assert_close(run(model, pixels), trained)
    assert loaded.config.attachments[0]["after"] == after


def test_sam_quality_at_the_vision_encoder():
    """With entry="vision_encoder", SAM embeds once and is prompted many times: get_image_embeddings,
    vision_encoder(...) and the full forward with a point prompt run the block; the patch embedding
    called on its own still raises."""
    model, after, settings, size, run = host("sam")
    pixels = photos(size)
    adapter = insert(model, "sam", after, settings)
    perturb(adapter)
    with torch.no_grad():
        embeddings = model.get_image_embeddings(pixels)
        torch.testing.assert_close(model.vision_encoder(pixels).last_hidden_state, embeddings)
        with adapter.record_routing() as routing:
            masks = model(image_embeddings=embeddings, input_points=torch.tensor([[[[32.0, 32.0]]]] * 2)).pred_masks
            direct = model(pixel_values=pixels, input_points=torch.tensor([[[[32.0, 32.0]]]] * 2)).pred_masks
        torch.testing.assert_close(direct, masks)
        assert len(routing) == 1 and list(routing[0]) == [after]  # the prompt-only forward embeds nothing
        with pytest.raises(RuntimeError, match="runs only inside a forward of the SamVisionEncoder"):
            model.vision_encoder.patch_embed(pixels)
    with pytest.raises(InputError, match="entry: the blocks' modules must be inside 'vision_encoder'"):
        insert_quarf(make_sam(), after="prompt_encoder.shared_embedding", channels=4, entry="vision_encoder")


def test_channels_are_inferred_for_embedding_modules():
    """The channels of each host's embedding module, against the host config's width."""
    expected = {"sam": 32, "vit": 32, "dinov2": 32, "swin": 16, "convnext": 16, "segformer": 8}
    for name, channels in expected.items():
        model, after, settings, _, _ = host(name)
        adapter = QuarfAdapter.for_model(model, after, "brisque", **settings)
        assert adapter.config.attachments[0]["in_channels"] == channels, name


class Emits(torch.nn.Module):
    """A network whose module ``emit`` outputs a tensor of a fixed shape, whatever the pixels."""

    def __init__(self, shape):
        super().__init__()
        self.emit = torch.nn.Linear(1, shape[-1])
        self.shape = shape

    def forward(self, pixel_values):
        return self.emit(pixel_values.mean().expand(*self.shape[:-1], 1))


@pytest.mark.parametrize(("shape", "settings", "message"), [
    ((1, 6, 7, 5), {}, r"expected the output as a \(B, 4, H, W\) or \(B, H, W, 4\) map .* found \(1, 6, 7, 5\)"),
    ((1, 7, 4), {}, r"7 tokens are no square grid after 0 or 1 leading tokens, found \(1, 7, 4\)"),
    ((1, 7, 4), {"grid": (3, 3)}, r"3x3 tokens after -2 leading ones do not fit 7 tokens"),
    ((1, 4, 4, 4), {"layout": "tokens"}, r"'tokens' expects a 3-D tensor .*found \(1, 4, 4, 4\)"),
])
def test_outputs_no_layout_fits_name_their_shape(shape, settings, message):
    """One line naming the block, the shapes and what to pass; a declared layout is checked too."""
    model = Emits(shape)
    insert_quarf(model, after="emit", channels=4, **settings)
    with pytest.raises(InputError, match=r"the QuARF block after 'emit': .*" + message):
        model(torch.rand(1, 3, 8, 8))


def test_register_tokens_and_declared_channels_last():
    """DINOv2 with 4 register tokens: prefix_tokens=5 passes class and registers through unchanged
    (compared with the host's output); a square channels-last map is read as declared."""
    torch.manual_seed(0)
    model = transformers.Dinov2WithRegistersModel(transformers.Dinov2WithRegistersConfig(**VIT, num_register_tokens=4)).eval()
    pixels = photos(32)
    with torch.no_grad():
        reference = model.embeddings(pixels)
    adapter = insert(model, "dinov2", "embeddings", {"prefix_tokens": 5})
    perturb(adapter)
    with torch.no_grad(), adapter.record_routing() as routing:
        model(pixel_values=pixels)
    captured = {}
    model.embeddings.register_forward_hook(lambda module, args, output: captured.setdefault("out", output))
    with torch.no_grad():
        model(pixel_values=pixels)
    assert torch.equal(captured["out"][:, :5], reference[:, :5])
    assert (captured["out"][:, 5:] - reference[:, 5:]).abs().max() > 1e-4
    assert routing[0]["embeddings"].shape[0] == 2

    square = Emits((1, 4, 4, 4)).eval()
    adapter = insert_quarf(square, after="emit", channels=4, layout="channels_last")
    perturb(adapter)
    with torch.no_grad():
        pixels = torch.full((1, 3, 8, 8), 0.5)
        with adapter.disable_adapter():
            reference = square(pixels)
        mixed = square(pixels)
        # The reference: the block run by hand on the map moved to (B, C, H, W), and moved back.
        expected, _ = apply_block(adapter.block, reference.permute(0, 3, 1, 2), adapter.compute_quality_features(pixels))
    torch.testing.assert_close(mixed, expected.permute(0, 2, 3, 1))
    assert (mixed - reference).abs().max() > 1e-4
    assert adapter.config.attachments[0]["layout"] == "channels_last"


def test_peft_lora_with_quarf_both_train_save_and_reload_apart(tmp_path):
    """peft's LoRA on a ViT's attention and a QuARF block after its embeddings: get_peft_model freezes
    the block (a warning on the first training forward says so); re-enabled, both train; each is
    saved and reloaded on its own into a fresh ViT, whose outputs equal the trained network's."""
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    vit = transformers.ViTModel(transformers.ViTConfig(**VIT))
    vit.save_pretrained(tmp_path / "vit")
    adapter = insert_quarf(vit, after="embeddings", quality="brisque", pixel_mean=0.5, pixel_std=0.5)
    lora = peft.get_peft_model(vit, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert not any(p.requires_grad for p in adapter.blocks.parameters())
    pixels = photos(32)
    lora.train()
    with pytest.warns(UserWarning, match="the block after 'embeddings' is frozen"):
        lora(pixel_values=pixels)
    adapter.blocks.requires_grad_(True)
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    lora_before = {n: p.detach().clone() for n, p in lora.named_parameters() if "lora_B" in n}
    block_before = [p.detach().clone() for p in adapter.blocks.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning once the block trains
        for _ in range(3):
            loss = lora(pixel_values=pixels).last_hidden_state.square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    lora.eval()
    assert any((p - lora_before[n]).abs().max() > 0 for n, p in lora.named_parameters() if n in lora_before)
    assert any((p - q).abs().max() > 0 for p, q in zip(adapter.blocks.parameters(), block_before))
    with torch.no_grad():
        trained = lora(pixel_values=pixels).last_hidden_state
    lora.save_pretrained(tmp_path / "lora")
    adapter.save_pretrained(tmp_path / "quarf")

    fresh = transformers.ViTModel.from_pretrained(tmp_path / "vit").eval()
    QuarfAdapter.from_pretrained(tmp_path / "quarf").attach(fresh)
    reloaded = peft.PeftModel.from_pretrained(fresh, tmp_path / "lora").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixel_values=pixels).last_hidden_state, trained)
