"""A QuARF adapter initialises every block weight it lacks, and never an extractor it was given.

The reference for "initialised" is torch's own default initialisation of a linear or convolution (finite,
within its bound 1/sqrt(fan_in), not all equal: uninitialised memory or NaN is none of these); for "left
alone", the extractor's tensors before the adapter was built or loaded.
"""

import pytest
import torch
from safetensors.torch import load_file, save_file

from quarf_hf import QuarfAdapter
from quarf_hf.models.quality import ContriqueQuality
from tiny_models import make_contrique, within_torch_default_init

BLOCK = dict(router="mlp", router_hidden_dim=16, num_groups=2)


def tiny_cnn():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1))


def block_layers(adapter):
    return [m for m in adapter.blocks.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]


@pytest.mark.parametrize("residual", [False, True])
def test_init_weights_initialises_every_block_weight(residual):
    """As from_pretrained does for weights a checkpoint lacks: built on the meta device, memory filled with NaN,
    then init_weights. Without the residual gate every block weight stayed NaN (the rule was keyed on the block,
    which transformers skips for code outside transformers when it has no parameters of its own)."""
    config = QuarfAdapter.for_model(tiny_cnn(), after="0", quality="brisque", residual=residual, **BLOCK).config
    with torch.device("meta"):
        adapter = QuarfAdapter(config)
    adapter.to_empty(device="cpu")
    for tensor in adapter.blocks.parameters():
        tensor.data.fill_(float("nan"))
    adapter.init_weights()
    layers = block_layers(adapter)
    assert len(layers) == 7  # four experts; the router's hidden, route and noise linears
    assert all(within_torch_default_init(layer) for layer in layers)
    assert all(bool(torch.isfinite(p).all()) for p in adapter.blocks.parameters())
    if residual:
        assert torch.equal(adapter.block.residual_scale, torch.zeros(8))


def test_a_given_extractor_keeps_its_weights():
    """An extractor handed to the adapter keeps its weights when the adapter is built (post_init) and when
    init_weights runs, also one that transformers never marked as initialised (weights put in by hand)."""
    contrique = make_contrique()
    with torch.no_grad():  # weights no initialisation gives
        for tensor in contrique.parameters():
            tensor.fill_(0.25)
    for module in contrique.modules():
        module.__dict__.pop("_is_hf_initialized", None)
    extractor = ContriqueQuality(contrique)
    before = {k: v.clone() for k, v in extractor.state_dict().items()}
    adapter = QuarfAdapter.for_model(tiny_cnn(), after="0", quality=extractor, residual=False, **BLOCK)
    assert adapter.quality_extractor is extractor
    adapter.init_weights()
    for key, tensor in adapter.quality_extractor.state_dict().items():
        torch.testing.assert_close(tensor, before[key], atol=0, rtol=0, msg=key)


def test_a_saved_adapter_without_its_block_weights_loads_them_initialised(tmp_path):
    """A saved adapter (CONTRIQUE extractor, blocks without the gate) whose file lacks the blocks' weights: the
    extractor loads as saved, the blocks are initialised (they stayed uninitialised memory)."""
    torch.manual_seed(0)
    adapter = QuarfAdapter.for_model(tiny_cnn(), after="0", quality=ContriqueQuality(make_contrique()),
                                     residual=False, **BLOCK)
    adapter.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    kept = {k: v for k, v in weights.items() if not k.startswith("blocks.")}
    assert len(kept) < len(weights) and any(k.startswith("quality_extractor.") for k in kept)
    save_file(kept, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    loaded, info = QuarfAdapter.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] and all(key.startswith("blocks.") for key in info["missing_keys"])
    for key, tensor in loaded.state_dict().items():
        if key in kept:
            torch.testing.assert_close(tensor, kept[key], atol=0, rtol=0, msg=key)
    assert all(within_torch_default_init(layer) for layer in block_layers(loaded))
