"""models/conditioning.py: the one path from a model's pixels to its quality vector and into its block."""

import pytest
import torch

from quarf_hf import (QuarfAdapterConfig, QuarfRestorationConfig, QuarfRestorationModel, QuarfSegformerConfig,
                      QuarfSegformerForSemanticSegmentation, build_quality_extractor)
from quarf_hf.models.conditioning import apply_block, build_block, quality_vector


def test_quality_vector_unnormalises_clamps_and_upscales_small_images():
    """Against the steps done by hand: x * std + mean, clamp to [0, 1], bicubic upscale to BRISQUE's 14 px."""
    extractor = build_quality_extractor("brisque")
    pixels01 = torch.rand(2, 3, 9, 12, generator=torch.Generator().manual_seed(0))
    normalised = (pixels01 - 0.5) / 0.25
    by_hand = torch.nn.functional.interpolate((normalised * 0.25 + 0.5).clamp(0, 1), size=(14, 19), mode="bicubic",
                                              align_corners=False).clamp(0, 1)
    vector = quality_vector(extractor, normalised, 0.5, 0.25)
    assert vector.dtype == torch.float32 and not vector.requires_grad
    torch.testing.assert_close(vector, extractor(by_hand))


def test_apply_block_gives_the_same_result_on_tokens_and_on_the_map():
    torch.manual_seed(0)
    block = build_block("route", 8, {"quality_dim": 5, "num_groups": 2, "top_k": 2}).eval()
    feature_map, quality = torch.randn(2, 8, 4, 6), torch.randn(2, 5)
    out_map, routing_map = apply_block(block, feature_map, quality)
    tokens = feature_map.flatten(2).transpose(1, 2)  # (B, H*W, C), SegFormer's layout
    out_tokens, routing_tokens = apply_block(block, tokens, quality, (4, 6))
    assert out_tokens.shape == (2, 24, 8)
    torch.testing.assert_close(out_tokens, out_map.flatten(2).transpose(1, 2), atol=0, rtol=0)
    torch.testing.assert_close(routing_tokens, routing_map, atol=0, rtol=0)


@pytest.mark.parametrize("make", [
    lambda c: QuarfSegformerConfig(conditioning=c),
    lambda c: QuarfRestorationConfig(block_out_channels=[16, 32], conditioning=c),
    lambda c: QuarfAdapterConfig(attachments=[{"after": "conv", "in_channels": 8}], conditioning=c),
], ids=["segformer", "restoration", "adapter"])
def test_conditioning_setting_defaults_to_routing_and_refuses_unknown_modes(make):
    assert make("route").conditioning == "route"
    assert make("film").conditioning == "film" and make("none").conditioning == "none"
    with pytest.raises(ValueError, match=r"conditioning: expected one of route, film, static_film, none, found 'gate'"):
        make("gate")


@pytest.mark.parametrize("settings", [
    {"quality_dim": 36, "num_groups": 4},
    {"quality_dim": 36, "num_groups": 8, "residual": True},
    {"quality_dim": 4096, "num_groups": 4, "router": "mlp"},
    {"quality_dim": 36, "num_groups": 2, "experts": [[3, 1], [5, 2]], "router_noise": False},
], ids=["brisque", "residual-8-groups", "contrique-mlp", "two-experts"])
@pytest.mark.parametrize("channels", [16, 64])
def test_film_has_the_routed_blocks_parameter_budget(settings, channels):
    """FiLM's parameter count is within 10% of the QuARF block's with the same settings (in fact within one hidden unit)."""
    film, routed = build_block("film", channels, settings), build_block("route", channels, settings)
    count = lambda block: sum(p.numel() for p in block.parameters())  # noqa: E731
    assert abs(count(film) - count(routed)) <= 0.10 * count(routed)
    assert abs(count(film) - count(routed)) <= settings["quality_dim"] + 1 + 2 * channels


@pytest.mark.parametrize("make", [
    lambda c: QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[16, 32], conditioning=c)),
    lambda c: QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(
        hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1], decoder_hidden_size=16,
        quarf={"num_groups": 2}, conditioning=c)),
], ids=["restoration", "segformer"])
def test_film_is_the_identity_at_initialisation_and_then_uses_the_quality(make):
    """A fresh FiLM model gives exactly the output of the same model with its block taken out;
    once its output layer is not zero, images of other quality are scaled differently."""
    from quarf_hf.models.conditioning import Unconditioned

    torch.manual_seed(0)
    model = make("film").eval()
    owner = model if hasattr(model, "quarf") else model.segformer
    film = owner.quarf
    assert film.out.weight.abs().sum() == 0 and film.out.bias.abs().sum() == 0 and film.hidden.weight.abs().sum() > 0
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    def output():
        with torch.no_grad():
            out = model(images)
        return out.reconstruction if hasattr(out, "reconstruction") else out.logits

    with_film = output()
    owner.quarf = Unconditioned()
    torch.testing.assert_close(with_film, output(), atol=0, rtol=0)
    torch.manual_seed(0)
    block = build_block("film", 8, {"quality_dim": 36})
    torch.nn.init.normal_(block.out.weight)
    x = torch.randn(2, 8, 5, 5)
    out, routing = apply_block(block, x, torch.randn(2, 36))
    assert routing is None and not torch.allclose(out[0] / x[0], out[1] / x[1])


def test_film_adapter_starts_as_the_identity():
    from quarf_hf import QuarfAdapter

    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1))
    images = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = cnn(images)
        config = QuarfAdapterConfig(attachments=[{"after": "0", "in_channels": 8}], quality="brisque", conditioning="film")
        adapter = QuarfAdapter(config).attach(cnn)
        assert adapter.blocks[0].out.weight.abs().sum() == 0
        torch.testing.assert_close(cnn(images), before, atol=0, rtol=0)


def test_no_conditioning_never_runs_the_quality_extractor():
    """conditioning "none": the plain UNet; its extractor is never called, no routing, no quality features."""
    model = QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[16, 32], conditioning="none")).eval()

    def refuse(*args, **kwargs):
        raise AssertionError("the quality extractor ran")

    model.quality_extractor.forward = refuse
    out = model(torch.rand(1, 3, 20, 20))
    assert out.routing_weights is None and out.quality_features is None
    assert sum(p.numel() for p in model.quarf.parameters()) == 0
    with pytest.raises(ValueError, match="out_channels: conditioning 'film' keeps the feature map's channels"):
        build_block("film", 8, {"quality_dim": 36}, out_channels=16)
