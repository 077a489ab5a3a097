"""The tiny models the tests build, defined once.

Each ``*_config`` returns a fresh dict of a model's tiny settings (safe to change), with ``changes``
laid over it; each ``make_*`` builds the model in eval mode. conftest.py offers the default restoration
model and CONTRIQUE as fixtures (``tiny_restoration``, ``tiny_contrique``); tests that need the settings in a
YAML/JSON config, another size, a model in a module-scoped fixture or one per parameter import these.
``within_torch_default_init`` tells a layer that torch's default initialisation filled from uninitialised memory.
"""

from __future__ import annotations

import copy

# Four one-layer stages; 32x32 images are the smallest the default sr_ratios take.
SEGFORMER = {"hidden_sizes": [8, 16, 16, 16], "depths": [1, 1, 1, 1], "num_attention_heads": [1, 1, 1, 1],
             "decoder_hidden_size": 16}
# Two UNet levels; norm_num_groups must divide every width.
RESTORATION = {"block_out_channels": [16, 32], "norm_num_groups": 8}
# A four-stage ResNet with the smallest widths; its quality vector is 2 * hidden_sizes[-1] = 64 wide.
CONTRIQUE = {"embedding_size": 8, "hidden_sizes": [8, 16, 16, 32], "depths": [1, 1, 1, 1], "projection_dim": 8}


def segformer_config(**changes) -> dict:
    """Tiny SegFormer settings (for ``SegformerConfig``, ``QuarfSegformerConfig`` or a config file's ``config:``)."""
    return {**copy.deepcopy(SEGFORMER), **changes}


def restoration_config(**changes) -> dict:
    """Tiny ``QuarfRestorationConfig`` settings (BRISQUE quality unless ``quality`` is given)."""
    return {**copy.deepcopy(RESTORATION), "quality": "brisque", **changes}


def contrique_config(**changes) -> dict:
    """Tiny ``ContriqueConfig`` settings (also a ``{"type": "contrique", "config": ...}`` quality spec's config)."""
    return {**copy.deepcopy(CONTRIQUE), **changes}


def make_quarf_segformer(num_labels: int = 3, quality="brisque", **changes):
    """A tiny ``QuarfSegformerForSemanticSegmentation`` in eval mode."""
    from quarf_hf import QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation

    config = QuarfSegformerConfig(**segformer_config(**changes), num_labels=num_labels, quality=quality)
    return QuarfSegformerForSemanticSegmentation(config).eval()


def make_segformer(num_labels: int = 3, **changes):
    """A tiny plain transformers ``SegformerForSemanticSegmentation`` in eval mode (the no-QuARF control)."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    config = SegformerConfig(**segformer_config(**changes), num_labels=num_labels)
    return SegformerForSemanticSegmentation(config).eval()


def make_restoration(**changes):
    """A tiny ``QuarfRestorationModel`` in eval mode (the identity at initialisation)."""
    from quarf_hf import QuarfRestorationConfig, QuarfRestorationModel

    return QuarfRestorationModel(QuarfRestorationConfig(**restoration_config(**changes))).eval()


def make_contrique(**changes):
    """A tiny ``ContriqueModel`` in eval mode (random weights)."""
    from quarf_hf import ContriqueConfig, ContriqueModel

    return ContriqueModel(ContriqueConfig(**contrique_config(**changes))).eval()


def make_sam(seed: int = 0):
    """A tiny random transformers ``SamModel`` (64x64 images, an 8x8 grid of 32 channels) in eval mode.

    SAM's own init gives so small an encoder near-zero outputs (~1e-22), so its matrices are redrawn
    with std 0.2: comparisons of its embeddings then mean something."""
    import torch
    import transformers

    vision = transformers.SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64,
                                          patch_size=8, output_channels=16, window_size=4, global_attn_indexes=[1],
                                          mlp_dim=64, num_pos_feats=8)
    prompt = transformers.SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=8)
    decoder = transformers.SamMaskDecoderConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, mlp_dim=32,
                                                iou_head_hidden_dim=16)
    torch.manual_seed(seed)
    model = transformers.SamModel(transformers.SamConfig(vision_config=vision, prompt_encoder_config=prompt,
                                                         mask_decoder_config=decoder))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim > 1:
                parameter.normal_(0, 0.2)
    return model.eval()


def save_demo_restoration(out_dir, seed: int = 0) -> dict:
    """The two restoration models ``quarf-hf demo`` writes, tiny, saved where it writes them:
    ``out_dir/restoration/quarf/model`` (conditioning "route") and ``out_dir/restoration/plain/model``
    ("none"). Their output layer is nudged off zero, so they are not the identity. Returns role -> model."""
    from pathlib import Path

    import torch

    models = {}
    for role, arm, conditioning in (("restoration", "quarf", "route"), ("plain_restoration", "plain", "none")):
        torch.manual_seed(seed)
        model = make_restoration(block_out_channels=[8, 16], norm_num_groups=4, conditioning=conditioning)
        with torch.no_grad():
            model.conv_out.weight.normal_(0.0, 0.02)
        model.save_pretrained(Path(out_dir) / "restoration" / arm / "model")
        models[role] = model
    return models


def within_torch_default_init(layer) -> bool:
    """Whether a linear/convolution holds values torch's default initialisation can give (finite, within
    its bound 1/sqrt(fan_in), not all equal), as opposed to uninitialised memory or NaN."""
    import torch

    bound = 1 / layer.weight[0].numel() ** 0.5
    return all(
        bool(torch.isfinite(t).all()) and float(t.abs().max()) <= bound and float(t.std()) > 0
        for t in (layer.weight.detach(), layer.bias.detach())
    )
