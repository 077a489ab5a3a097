"""models/conditioning.py: the one path from a model's pixels to its quality vector and into its block."""

import pytest
import torch

from quarf_hf import QuarfAdapterConfig, QuarfRestorationConfig, QuarfSegformerConfig, build_quality_extractor
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
    with pytest.raises(ValueError, match=r"conditioning: expected one of route, found 'film'"):
        make("film")
