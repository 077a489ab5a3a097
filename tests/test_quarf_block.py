"""Tests of the QuARF block against the paper's formula and the published module's structure."""

import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel

from quarf_hf import QuARF, QuarfBlockConfig, QuarfBlockModel, QuarfConfig, quarf_aux_loss
from quarf_hf.models.quarf import load_balancing_loss
from reference_quarf import ReferenceQuARF


def formula_output(block: QuARF, x, q):
    """The paper's formula written out independently: per image, group and expert, with F.conv2d.

    y[b, group i] = sum_e w[b, i, e] * conv(x[b, group i], W_e, dilation_e), with
    w = softmax over the top-k of the router logits (noise off).
    """
    logits = F.linear(q, block.router.route_linear.weight, block.router.route_linear.bias)
    logits = logits.view(q.shape[0], block.num_groups, block.num_experts)
    kth = logits.topk(block.top_k, dim=-1).values[..., -1:]
    weights = torch.where(logits >= kth, logits, torch.full_like(logits, float("-inf"))).softmax(-1)
    groups = x.chunk(block.num_groups, dim=1)
    out = []
    for b in range(x.shape[0]):
        per_group = []
        for i, xg in enumerate(groups):
            acc = 0
            for e, (kernel, dilation) in enumerate(block.config.experts):
                conv = block.experts[e]
                pad = dilation * (kernel - 1) // 2
                y = F.conv2d(xg[b : b + 1], conv.weight, conv.bias, padding=pad, dilation=dilation)
                acc = acc + weights[b, i, e] * y
            per_group.append(acc)
        out.append(torch.cat(per_group, dim=1))
    return torch.cat(out), weights


def make_inputs(batch=3, channels=16, size=20, quality_dim=4096, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, size, size, generator=gen), torch.randn(batch, quality_dim, generator=gen)


def test_defaults_equal_reference():
    block = QuARF(in_channels=64)
    assert block.config.quality_dim == 4096
    assert block.config.experts == ((3, 1), (3, 2), (3, 4), (3, 8))
    assert (block.num_groups, block.top_k, block.mode, block.out_channels) == (4, 4, "soft", 64)
    assert block.config.router == "linear" and block.router.noise_linear is not None
    assert [tuple(e.weight.shape) for e in block.experts] == [(16, 16, 3, 3)] * 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"top_k": 2},
        {"top_k": 1, "num_groups": 2},
        {"experts": [(3, 1), (5, 1), (3, 3)], "num_groups": 8},
        {"out_channels": 24, "quality_dim": 36, "router_noise": False},
    ],
)
def test_soft_mode_equals_formula(kwargs):
    """Our vectorised soft mode vs the per-image/group/expert formula, noise off (eval), to 1e-5."""
    torch.manual_seed(1)
    block = QuARF(16, **kwargs).eval()
    x, q = make_inputs(quality_dim=block.config.quality_dim)
    out, routing = block(x, q, return_routing=True)
    expected, expected_weights = formula_output(block, x, q)
    assert out.shape == expected.shape == (3, block.out_channels, 20, 20)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(routing, expected_weights)
    assert routing.shape == (3, block.num_groups, block.num_experts)


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_reference_state_dict_loads_strictly_and_matches(mode):
    """A state dict of the published module structure loads strictly and gives its outputs."""
    torch.manual_seed(2)
    reference = ReferenceQuARF(32, quality_dim=64, mode=mode).eval()
    block = QuARF(32, quality_dim=64, mode=mode).eval()
    block.load_state_dict(reference.state_dict(), strict=True)
    x, q = make_inputs(batch=4, channels=32, quality_dim=64)
    with torch.no_grad():
        torch.testing.assert_close(block(x, q), reference(x, q), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("hard_gradient", ["straight_through", "gate"])
@pytest.mark.parametrize("training", [False, True])
def test_hard_mode_equals_chosen_expert(hard_gradient, training):
    """Each (image, group) output is its argmax expert's output (times the weight for 'gate')."""
    torch.manual_seed(3)
    block = QuARF(16, quality_dim=8, mode="hard", hard_gradient=hard_gradient, router_noise=False)
    block.train(training)
    x, q = make_inputs(batch=5, quality_dim=8)
    out, routing = block(x, q, return_routing=True)
    soft_weights = block.router.route_linear(q).view(5, 4, 4).softmax(-1)
    choice = soft_weights.argmax(-1)
    assert torch.equal(routing.detach() != 0, F.one_hot(choice, 4).bool())
    for b in range(5):
        for g, xg in enumerate(x[b : b + 1].chunk(4, dim=1)):
            expected = block.experts[int(choice[b, g])](xg)
            if hard_gradient == "gate":
                expected = expected * soft_weights[b, g, choice[b, g]]
            torch.testing.assert_close(out[b : b + 1, 4 * g : 4 * g + 4], expected, atol=1e-5, rtol=1e-5)


def test_hard_mode_router_gets_gradient_in_eval_dispatch():
    """The sparse inference path keeps the straight-through gradient to the router."""
    block = QuARF(16, quality_dim=8, mode="hard").eval()
    x, q = make_inputs(quality_dim=8)
    block(x, q).square().sum().backward()
    assert block.router.route_linear.weight.grad.abs().sum() > 0


def test_eval_is_deterministic_and_training_is_noisy():
    torch.manual_seed(4)
    block = QuARF(16, quality_dim=32, top_k=2)
    x, q = make_inputs(quality_dim=32)
    block.eval()
    assert torch.equal(block(x, q), block(x, q))
    block.train()
    _, first = block(x, q, return_routing=True)
    _, second = block(x, q, return_routing=True)
    assert not torch.equal(first, second), "router noise should act in training mode"


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_gradients_reach_router_and_every_expert(mode):
    torch.manual_seed(5)
    block = QuARF(16, quality_dim=32, mode=mode).train()
    x, q = make_inputs(batch=8, quality_dim=32)
    out = block(x, q)
    (out.square().mean() + quarf_aux_loss(block)).backward()
    for name, param in block.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"top_k": 2, "out_channels": 24}])
def test_soft_mode_gradients_equal_the_formulas(kwargs, channels_last):
    """The hand-written backward of soft mixing (_WeightedSum) against autograd through
    ``formula_output``, the per-image/group/expert loop: gradients of input, router and experts
    agree to 1e-9 in float64 (noise off, as the formula has none)."""
    torch.manual_seed(9)
    block = QuARF(16, quality_dim=32, router_noise=False, **kwargs).double().eval()
    x, q = make_inputs(quality_dim=32)
    x, q = x.double(), q.double()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grad_out = torch.randn(3, block.out_channels, 20, 20, dtype=torch.float64)

    def gradients(run):
        block.zero_grad()
        xin = x.clone().requires_grad_(True)
        (run(xin) * grad_out).sum().backward()
        return [xin.grad] + [p.grad.clone() for p in block.parameters()]

    ours = gradients(lambda xin: block(xin, q))
    formula = gradients(lambda xin: formula_output(block, xin, q)[0])
    names = ["x"] + [name for name, _ in block.named_parameters()]
    for name, a, b in zip(names, ours, formula):
        assert torch.allclose(a, b, atol=1e-9, rtol=1e-7), name


def test_top_k_masking_keeps_the_k_largest():
    torch.manual_seed(6)
    block = QuARF(16, quality_dim=32, num_experts=6, top_k=2).eval()
    x, q = make_inputs(quality_dim=32)
    _, routing = block(x, q, return_routing=True)
    logits = block.router.route_linear(q).view(3, 4, 6)
    assert torch.equal((routing > 0).sum(-1), torch.full((3, 4), 2))
    top2 = logits.topk(2, dim=-1).indices
    assert torch.equal(routing.gather(-1, top2) > 0, torch.ones(3, 4, 2, dtype=torch.bool))
    torch.testing.assert_close(routing.sum(-1), torch.ones(3, 4))


def test_residual_block_is_identity_at_init_and_learns():
    torch.manual_seed(7)
    block = QuARF(16, quality_dim=32, residual=True)
    x, q = make_inputs(quality_dim=32)
    assert torch.equal(block.eval()(x, q), x)
    block.train()
    optimizer = torch.optim.SGD(block.parameters(), lr=0.1)
    (block(x, q) - x.flip(0)).square().mean().backward()
    optimizer.step()
    assert not torch.equal(block.eval()(x, q), x)


def test_mlp_router_and_expert_count_shorthand():
    block = QuARF(16, quality_dim=32, num_experts=3, router="mlp", router_hidden_dim=8)
    assert block.config.experts == ((3, 1), (3, 2), (3, 4))
    assert block.router.hidden[0].out_features == 8
    x, q = make_inputs(quality_dim=32)
    assert block(x, q).shape == x.shape


def test_load_balancing_loss_matches_definition():
    """CV^2(importance) + CV^2(load) per group, against a direct computation."""
    weights = torch.tensor([[[0.7, 0.3, 0.0]], [[0.1, 0.9, 0.0]]])  # (B=2, G=1, E=3)
    loss = load_balancing_loss(weights, weights, weights, None, top_k=2)
    importance = torch.tensor([0.8, 1.2, 0.0])
    load = torch.tensor([2.0, 2.0, 0.0])
    cv2 = lambda v: v.var(unbiased=False) / v.mean() ** 2
    torch.testing.assert_close(loss, cv2(importance) + cv2(load))
    uniform = torch.full((2, 1, 3), 1 / 3)
    assert load_balancing_loss(uniform, uniform, uniform, None, top_k=3) < 1e-6


def test_noisy_load_is_differentiable():
    block = QuARF(16, quality_dim=32, top_k=2).train()
    x, q = make_inputs(quality_dim=32)
    block(x, q)
    block.aux_loss.backward()
    assert block.router.noise_linear.weight.grad.abs().sum() > 0
    assert block.eval()(x, q) is not None and block.aux_loss is None


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_channels_last_input(mode):
    block = QuARF(16, quality_dim=32, mode=mode).eval()
    x, q = make_inputs(quality_dim=32)
    out = block(x.contiguous(memory_format=torch.channels_last), q)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, block(x, q))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast(dtype):
    block = QuARF(16, quality_dim=32).eval()
    x, q = make_inputs(quality_dim=32)
    with torch.autocast("cpu", dtype=dtype):
        out = block(x, q)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), block(x, q), atol=0.1, rtol=0.05)


def test_torch_compile_full_graph_soft_mode():
    """fullgraph=True also proves the soft path has no host synchronisation (graph break)."""
    torch.manual_seed(8)
    block = QuARF(8, quality_dim=16).eval()
    x, q = make_inputs(batch=2, channels=8, size=12, quality_dim=16)
    compiled = torch.compile(block, fullgraph=True)
    torch.testing.assert_close(compiled(x, q), block(x, q), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_groups": 3}, "num_groups: expected a divisor of in_channels (16), found 3"),
        ({"out_channels": 18}, "num_groups: expected a divisor of out_channels (18)"),
        ({"top_k": 0}, "top_k: expected an integer from 1 to the number of experts (4), found 0"),
        ({"top_k": 5}, "top_k"),
        ({"experts": []}, "experts: expected a non-empty list"),
        ({"experts": [(3, 0)]}, "experts[0] dilation: expected an integer from 1 to 256, found 0"),
        ({"experts": [(3, 1), (-1, 1)]}, "experts[1] kernel_size: expected an integer from 1 to 63, found -1"),
        ({"mode": "sparse"}, "mode: expected one of soft, hard, found 'sparse'"),
        ({"router": "conv"}, "router"),
        ({"quality_dim": 0}, "quality_dim"),
        ({"residual": True, "out_channels": 8}, "residual: needs out_channels == in_channels"),
    ],
)
def test_invalid_configs_raise(kwargs, message):
    with pytest.raises(ValueError) as info:
        QuARF(16, **kwargs)
    assert message in str(info.value)


def test_unknown_keyword_raises():
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['dilations'\\]"):
        QuARF(16, dilations=[1, 2])
    with pytest.raises(ValueError, match="unknown keys"):
        QuarfConfig.from_dict({"quality_dim": 4, "gates": 2})


@pytest.mark.parametrize(
    "x_shape, q_shape, message",
    [
        ((2, 16, 8), (2, 32), "x: expected a 4-D tensor (batch, 16, height, width), found (2, 16, 8)"),
        ((2, 12, 8, 8), (2, 32), "x: expected 16 channels, found shape (2, 12, 8, 8)"),
        ((2, 16, 8, 8), (2, 31), "quality_features: expected shape (2, 32) (batch of x, quality_dim), found (2, 31)"),
        ((2, 16, 8, 8), (3, 32), "found (3, 32)"),
        ((2, 16, 8, 8), (32,), "found (32,)"),
    ],
)
def test_bad_inputs_raise_before_work(x_shape, q_shape, message):
    block = QuARF(16, quality_dim=32)
    with pytest.raises(ValueError) as info:
        block(torch.randn(x_shape), torch.randn(q_shape))
    assert message in str(info.value)


def test_integer_quality_features_raise():
    block = QuARF(16, quality_dim=4)
    with pytest.raises(TypeError, match="quality_features: expected a floating-point tensor"):
        block(torch.randn(1, 16, 4, 4), torch.ones(1, 4, dtype=torch.long))


def test_config_round_trip():
    config = QuarfConfig(quality_dim=36, experts=((3, 1), (5, 2)), top_k=1, mode="hard", residual=True)
    assert QuarfConfig.from_dict(config.to_dict()) == config
    assert QuARF(8, config=config.to_dict()).config == config


@pytest.mark.parametrize("channels_last", [False, True])
def test_cpu_inference_tiles_give_the_untiled_output(monkeypatch, channels_last):
    """Soft-mode inference on a CPU runs over cache-sized tiles of images: with tiles of one and
    of two images the output equals one pass over the whole batch, in the input's memory format."""
    import quarf_hf.models.quarf as quarf_module

    torch.manual_seed(10)
    block = QuARF(16, quality_dim=32).eval()
    x, q = make_inputs(batch=5, quality_dim=32)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    image_bytes = 16 * 20 * 20 * 4
    with torch.no_grad():
        monkeypatch.setattr(quarf_module, "_CPU_TILE_BYTES", 10**12)
        assert quarf_module._cpu_inference_tile(x, 16) is None
        whole = block(x, q)
        for images in (1, 2):
            monkeypatch.setattr(quarf_module, "_CPU_TILE_BYTES", images * image_bytes)
            assert quarf_module._cpu_inference_tile(x, 16) == images
            tiled = block(x, q)
            assert torch.allclose(tiled, whole, atol=1e-6, rtol=0)
            assert tiled.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert quarf_module._cpu_inference_tile(x, 16) is None  # grad enabled: training never tiles


# ----------------------------------------------------------------------------------------------
# QuarfBlockConfig / QuarfBlockModel: one QuARF block as a transformers model.


def test_block_config_carries_every_quarf_setting_and_validates():
    config = QuarfBlockConfig(in_channels=32, quality_dim=36, experts=[(3, 1), (5, 2)], top_k=1, mode="hard")
    assert config.out_channels == 32 and config.experts == [[3, 1], [5, 2]]
    assert config.quarf_config == QuarfConfig(quality_dim=36, experts=((3, 1), (5, 2)), top_k=1, mode="hard")
    assert QuarfBlockConfig().quarf_config == QuarfConfig(), "defaults equal the dataclass's (the reference's)"
    with pytest.raises(ValueError, match="num_groups: expected a divisor of in_channels \\(30\\)"):
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
