"""Weights missing from a checkpoint are initialised as each model's ``_init_weights`` documents.

For every model (QuARF-SegFormer with a residual and a non-residual block, QuARF restoration,
CONTRIQUE) the test saves a tiny model, deletes one group of tensors from its model.safetensors,
loads it with ``from_pretrained`` and checks, against the saved tensors and the documented rule:
every tensor is finite; tensors still in the file load unchanged; the missing ones take their
documented values (``residual_scale`` 0, restoration ``conv_out`` 0, norms 1 / 0, BatchNorm
statistics 0 / 1) or, for random inits, a spread of the documented scale.
"""

import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from quarf_hf import QuarfRestorationModel
from tiny_models import make_contrique, make_quarf_segformer, make_restoration

MODELS = {"segformer": lambda: make_quarf_segformer(quarf={"residual": True, "quality_dim": 36}),
          "segformer_plain_block": lambda: make_quarf_segformer(quarf={"residual": False, "quality_dim": 36}),
          "restoration": lambda: make_restoration(quarf={"quality_dim": 36, "residual": True}),
          "contrique": make_contrique}
# Groups of tensors to delete: a prefix (or exact name) per group; "*" deletes every tensor.
GROUPS = {
    "segformer": ["segformer.quarf.residual_scale", "segformer.quarf.router.", "segformer.quarf.experts.",
                  "segformer.stages.0.", "decode_head.", "*"],
    "segformer_plain_block": ["segformer.quarf.", "*"],
    "restoration": ["quarf.residual_scale", "quarf.router.", "quarf.experts.", "conv_in.", "down_blocks.",
                    "mid_block.", "up_blocks.", "conv_norm_out.", "conv_out.", "*"],
    "contrique": ["encoder.embedder.", "encoder.encoder.stages.0.", "projector.", "*"],
}
CASES = [(model, group) for model, groups in GROUPS.items() for group in groups]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folders = {}
    for name, factory in MODELS.items():
        torch.manual_seed(0)
        model = factory()
        with torch.no_grad():  # non-default values everywhere, so "loaded unchanged" can fail
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.add_(0.5)
        folder = tmp_path_factory.mktemp(name)
        model.save_pretrained(folder)
        folders[name] = folder
    return folders


def documented(name: str, key: str, tensor: torch.Tensor):
    """The documented value of a missing tensor, or None for a random init (checked by scale)."""
    leaf = key.rsplit(".", 1)[-1]
    if key.endswith("residual_scale") or (name == "restoration" and key.startswith("conv_out.")):
        return 0.0
    if leaf in ("running_mean", "num_batches_tracked"):
        return 0.0
    if leaf == "running_var":
        return 1.0
    if tensor.ndim == 1 and leaf == "weight":  # a norm's weight
        return 1.0
    if leaf == "bias" and (tensor.ndim == 1) and name != "restoration":
        return 0.0
    if leaf == "bias" and name == "restoration" and ("norm" in key):
        return 0.0
    return None


@pytest.mark.parametrize("name, group", CASES)
def test_missing_weights_are_initialised(saved, tmp_path, name, group):
    folder = saved[name]
    original = load_file(folder / "model.safetensors")
    drop = [k for k in original if group == "*" or k == group or k.startswith(group)]
    assert drop, f"group {group!r} matches no tensor of {name}"
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for item in folder.iterdir():
        if item.name != "model.safetensors":
            (damaged / item.name).write_bytes(item.read_bytes())
    save_file({k: v for k, v in original.items() if k not in drop}, damaged / "model.safetensors",
              metadata={"format": "pt"})

    cls = type(MODELS[name]())
    model = cls.from_pretrained(damaged)
    state = model.state_dict()
    for key, tensor in state.items():
        if key not in original:
            continue  # non-persistent or computed (e.g. a quality extractor's constants)
        assert torch.isfinite(tensor.float()).all(), f"{key} is not finite after loading without {group!r}"
        if key not in drop:
            assert torch.equal(tensor, original[key]), f"{key} was in the file but changed on loading"
            continue
        value = documented(name, key, tensor)
        if value is not None:
            assert torch.equal(tensor.float(), torch.full_like(tensor.float(), value)), (
                f"{key}: expected the documented {value} when missing, found {tensor.flatten()[:4].tolist()}")
        elif tensor.numel() > 16:
            # Random inits: N(0, 0.02) (SegFormer), kaiming (restoration, CONTRIQUE): centred, bounded scale.
            std = tensor.float().std().item()
            fan_in = tensor[0].numel() if tensor.ndim > 1 else tensor.numel()
            assert 1e-4 < std < 3 / math.sqrt(max(fan_in, 1)) + 0.05, f"{key}: std {std} is not an init's scale"
            assert abs(tensor.float().mean().item()) < 4 * std, f"{key}: mean far from 0"
    # And the model runs to finite outputs.
    with torch.no_grad():
        pixels = torch.rand(1, 3, 64, 64)
        out = model(pixel_values=pixels)
        first = out[0] if isinstance(out, tuple) else next(v for v in out.values() if isinstance(v, torch.Tensor))
        assert torch.isfinite(first).all()


def test_residual_scale_missing_makes_the_block_the_identity(saved, tmp_path):
    """Without its saved ``residual_scale`` the QuARF block adds nothing: logits equal a model whose block is off."""
    folder = saved["restoration"]
    original = load_file(folder / "model.safetensors")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for item in folder.iterdir():
        if item.name != "model.safetensors":
            (damaged / item.name).write_bytes(item.read_bytes())
    save_file({k: v for k, v in original.items() if k != "quarf.residual_scale"}, damaged / "model.safetensors",
              metadata={"format": "pt"})
    model = QuarfRestorationModel.from_pretrained(damaged).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        hidden = model.conv_in(x)
        assert torch.equal(model.quarf(hidden, torch.zeros(1, 36)), hidden)
