"""QuarfBlockConfig / QuarfBlockModel: one QuARF block as a transformers model."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModel

from quarf_hf import QuARF, QuarfBlockConfig, QuarfBlockModel, QuarfConfig


def test_block_config_carries_every_quarf_setting_and_validates():
    config = QuarfBlockConfig(in_channels=32, quality_dim=36, experts=[(3, 1), (5, 2)], top_k=1, mode="hard")
    assert config.out_channels == 32 and config.experts == [[3, 1], [5, 2]]
    assert config.quarf_config == QuarfConfig(quality_dim=36, experts=((3, 1), (5, 2)), top_k=1, mode="hard")
    assert QuarfBlockConfig().quarf_config == QuarfConfig(), "defaults equal the dataclass's (the reference's)"
    with pytest.raises(ValueError, match=r"num_groups: expected a divisor of in_channels \(30\)"):
        QuarfBlockConfig(in_channels=30)
    with pytest.raises(ValueError, match="mode: expected one of"):
        QuarfBlockConfig(mode="sparse")
    with pytest.raises(ValueError, match="top_k: expected an integer from 1 to the number of experts"):
        QuarfBlockConfig(top_k=5)


def test_block_model_round_trips_through_save_pretrained_and_auto_classes(tmp_path):
    """A trained-looking block (gate open, hard routing, MLP router) saved and reloaded with
    AutoModel: the same outputs and routing as the block it was made from (QuarfBlockModel.from_block)."""
    torch.manual_seed(0)
    block = QuARF(16, quality_dim=36, num_groups=2, mode="hard", router="mlp", residual=True).eval()
    with torch.no_grad():
        block.residual_scale.fill_(0.7)
    model = QuarfBlockModel.from_block(block).eval()
    model.save_pretrained(tmp_path / "block")
    config = json.loads((tmp_path / "block" / "config.json").read_text())
    assert config["model_type"] == "quarf" and config["auto_map"]["AutoModel"] == "modeling_quarf.QuarfBlockModel"
    assert {"modeling_quarf.py", "configuration_quarf.py", "quarf.py"} <= {p.name for p in (tmp_path / "block").iterdir()}
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "block"), QuarfBlockConfig)
    loaded = AutoModel.from_pretrained(tmp_path / "block").eval()
    assert isinstance(loaded, QuarfBlockModel)
    x, q = torch.randn(3, 16, 12, 12), torch.randn(3, 36)
    expected, routing = block(x, q, return_routing=True)
    out = loaded(x, q)
    torch.testing.assert_close(out.last_hidden_state, expected, atol=0, rtol=0)
    torch.testing.assert_close(out.routing_weights, routing, atol=0, rtol=0)
    assert isinstance(loaded(x, q, return_dict=False), tuple)


def test_fresh_block_model_starts_as_the_identity_with_residual():
    model = QuarfBlockModel(QuarfBlockConfig(in_channels=8, quality_dim=36, residual=True)).eval()
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(model(x, torch.randn(2, 36)).last_hidden_state, x, atol=0, rtol=0)
    assert model.quarf.router.route_linear.weight.abs().sum() > 0, "the router is initialised"
