"""transformers' conventions in QuARF-SegFormer, the block model and CONTRIQUE: attention and
hidden-state outputs, dtypes, the attention implementation, unknown arguments, initialisation, as
transformers' own common model tests (test_modeling_common.py of transformers 5.25) check them.

The reference for QuARF-SegFormer is transformers' ``SegformerForSemanticSegmentation`` holding the same
weights: with the QuARF block at its identity initialisation, QuARF-SegFormer's logits, hidden states and
attentions must equal it, and its outputs must be laid out as its are. ContriqueModel's hidden states are
checked against transformers' ``ResNetModel`` holding its encoder's weights, the block model's against
the QuARF block it wraps.
"""

import copy
import sys
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedModel

from quarf_hf import (
    ContriqueConfig,
    ContriqueModel,
    QuarfBlockConfig,
    QuarfBlockModel,
    QuarfSegformerConfig,
    QuarfSegformerForSemanticSegmentation,
    insert_quarf,
)
from quarf_hf.models.checks import InputError

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models  # noqa: E402

QUALITIES = {"brisque": "brisque", "contrique": {"type": "contrique", "config": tiny_models.contrique_config()}}


def twin_models(quality="brisque"):
    """A tiny QuARF-SegFormer (block at its identity) and a plain SegFormer with the same weights."""
    torch.manual_seed(0)
    quarf = tiny_models.make_quarf_segformer(quality=QUALITIES[quality])
    plain = tiny_models.make_segformer()
    shared = {key: value for key, value in quarf.state_dict().items() if not key.startswith(("segformer.quarf.", "segformer.quality_extractor."))}
    plain.load_state_dict(shared, strict=True)
    return quarf.eval(), plain.eval()


def pixels(batch=2, size=32):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_output_attentions_and_hidden_states_as_segformer():
    """output_attentions=True and output_hidden_states=True give SegFormer's, per layer and per stage
    (before the fix output_attentions was swallowed by **kwargs and ignored: transformers'
    test_attention_outputs failed)."""
    quarf, plain = twin_models()
    for model in (quarf, plain):
        model.set_attn_implementation("eager")  # SDPA gives no attention weights (nor does SegFormer's)
    with torch.no_grad():
        ours = quarf(pixels(), output_attentions=True, output_hidden_states=True)
        theirs = plain(pixels(), output_attentions=True, output_hidden_states=True)
    assert len(ours.attentions) == len(theirs.attentions) == sum(quarf.config.depths)
    for mine, reference in zip(ours.attentions + ours.hidden_states, theirs.attentions + theirs.hidden_states):
        torch.testing.assert_close(mine, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        plain_call = quarf(pixels())
    assert plain_call.attentions is None and plain_call.hidden_states is None


def test_config_defaults_and_return_dict_false_as_segformer():
    """config.output_attentions / output_hidden_states switch them on; return_dict=False gives SegFormer's
    tuple (logits, hidden states, attentions) followed by QuARF's routing and quality features."""
    quarf, plain = twin_models()
    for model in (quarf, plain):
        model.set_attn_implementation("eager")
        model.config.output_attentions = model.config.output_hidden_states = True
    with torch.no_grad():
        ours = quarf(pixels(), return_dict=False)
        theirs = plain(pixels(), return_dict=False)
    assert len(ours) == len(theirs) + 2
    torch.testing.assert_close(ours[0], theirs[0], atol=1e-5, rtol=1e-5)
    assert [len(part) for part in ours[1:3]] == [len(part) for part in theirs[1:3]]
    assert ours[3].shape[0] == 2 and ours[4].shape == (2, quarf.config.quarf["quality_dim"])


@pytest.mark.parametrize("model_class", ["QuarfSegformerForSemanticSegmentation", "QuarfSegformerModel"])
def test_unknown_keyword_arguments_are_refused_in_one_line(model_class):
    """A misspelled keyword was accepted silently; now one line names it and what forward takes."""
    quarf, _ = twin_models()
    model = quarf if model_class == "QuarfSegformerForSemanticSegmentation" else quarf.segformer
    with pytest.raises(InputError, match=r"unknown keyword arguments \['output_atentions'\]; expected some of .*output_attentions") as info:
        model(pixels(), output_atentions=True)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{model_class}.forward:")


def extractor_dtypes(model):
    extractor = model.segformer.quality_extractor
    return {t.dtype for t in [*extractor.parameters(), *extractor.buffers()] if t.is_floating_point()}


@pytest.mark.parametrize("quality", sorted(QUALITIES))
@pytest.mark.parametrize("how", ["from_config", "to", "half", "from_pretrained"])
def test_the_extractor_stays_float32_however_the_model_is_built_or_cast(quality, how, tmp_path):
    """The extractor stays float32 (BRISQUE has no parameters: nothing to cast) and the forward runs; float32
    pixels into the half-precision model give the float32 model's quality features (to float32 rounding).
    Before the fix from_config(dtype=bf16) built CONTRIQUE in bf16 (the forward crashed on CPU) and
    .to()/.half() cast it too."""
    config = QuarfSegformerConfig(**tiny_models.segformer_config(), num_labels=3, quality=QUALITIES[quality])
    torch.manual_seed(0)
    reference = QuarfSegformerForSemanticSegmentation(config).eval()
    dtype = torch.float16 if how == "half" else torch.bfloat16
    if how == "from_config":
        model = QuarfSegformerForSemanticSegmentation._from_config(config, dtype=dtype)
        model.segformer.quality_extractor.load_state_dict(reference.segformer.quality_extractor.state_dict())
    elif how == "from_pretrained":
        reference.save_pretrained(tmp_path)
        model = QuarfSegformerForSemanticSegmentation.from_pretrained(tmp_path, dtype=dtype)
    else:
        model = copy.deepcopy(reference)
        model = model.half() if how == "half" else model.to(dtype)
    model.eval()
    assert model.segformer.stages[0].patch_embeddings.proj.weight.dtype == dtype
    assert extractor_dtypes(model) <= {torch.float32}
    if quality == "contrique":
        assert extractor_dtypes(model) == {torch.float32}
    with torch.no_grad():
        output = model(pixels(1, 64))  # float32 pixels: cast for the encoder after the extractor
        expected = reference(pixels(1, 64)).quality_features
    assert output.logits.dtype == dtype
    torch.testing.assert_close(output.quality_features, expected, atol=1e-6, rtol=1e-5)  # not bf16-rounded pixels


def test_an_adapter_with_contrique_runs_in_half_precision():
    """An adapter's CONTRIQUE stays float32 when the network is cast to bf16 (before the fix it followed
    the cast and crashed on CPU)."""
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1))
    adapter = insert_quarf(network, after="0", quality=tiny_models.make_contrique())
    network.to(torch.bfloat16)
    assert {p.dtype for p in adapter.quality_extractor.parameters()} == {torch.float32}
    assert adapter.block.router.route_linear.weight.dtype == torch.bfloat16
    with torch.no_grad():
        assert network(torch.rand(1, 3, 64, 64, dtype=torch.bfloat16)).dtype == torch.bfloat16


@pytest.mark.parametrize("quality", sorted(QUALITIES))
def test_set_attn_implementation_with_either_extractor(quality):
    """set_attn_implementation("sdpa") works with either extractor and the logits equal eager's (before the
    fix it raised with CONTRIQUE: the nested ContriqueModel and its ResNet declared no SDPA support)."""
    quarf, _ = twin_models(quality)
    quarf.set_attn_implementation("eager")
    with torch.no_grad():
        eager = quarf(pixels(1, 64)).logits
        quarf.set_attn_implementation("sdpa")
        submodels = [m for m in quarf.modules() if isinstance(m, PreTrainedModel)]
        assert {m.config._attn_implementation for m in submodels} == {"sdpa"}  # the extractor's too
        torch.testing.assert_close(quarf(pixels(1, 64)).logits, eager, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("quality", sorted(QUALITIES))
def test_keep_in_fp32_lists_only_modules_with_weights(quality):
    """transformers' test_keep_in_fp32_modules_exist failed for the weightless BRISQUE extractor: every module
    named in _keep_in_fp32_modules_strict must hold parameters. CONTRIQUE's is listed, BRISQUE's is not."""
    for model in (tiny_models.make_quarf_segformer(quality=QUALITIES[quality]),
                  tiny_models.make_restoration(quality=QUALITIES[quality])):
        listed = set(model._keep_in_fp32_modules_strict)
        assert listed == ({"quality_extractor"} if quality == "contrique" else set()), type(model).__name__
        for name in listed:
            assert any(f"{name}." in parameter for parameter, _ in model.named_parameters())


def test_the_extractors_configs_follow_the_models_attention_implementation():
    """transformers' test_can_set_attention_dynamically: a model built with attn_implementation "eager" reports
    it in every submodel's config, CONTRIQUE's (built from the quality spec, not a sub-config) included."""
    config = QuarfSegformerConfig(**tiny_models.segformer_config(), num_labels=3, quality=QUALITIES["contrique"])
    config._attn_implementation = "eager"
    model = QuarfSegformerForSemanticSegmentation(config)
    submodels = [m for m in model.modules() if isinstance(m, PreTrainedModel)]
    assert len(submodels) >= 4 and {m.config._attn_implementation for m in submodels} == {"eager"}


def block_model_and_inputs():
    """A tiny block model (eval) and a feature map with its quality features."""
    torch.manual_seed(0)
    model = QuarfBlockModel(QuarfBlockConfig(in_channels=8, quality_dim=12, router="mlp", router_hidden_dim=16)).eval()
    return model, torch.randn(3, 8, 16, 16), torch.randn(3, 12)


def test_block_model_output_hidden_states():
    """transformers' test_hidden_states_output / test_model_outputs_equivalence pass output_hidden_states=True,
    which the block model swallowed (its output had no hidden_states). The block is one layer without
    embeddings: hidden_states is its one output, the QuARF block's own; the config's flag works too."""
    model, x, q = block_model_and_inputs()
    with torch.no_grad():
        expected = model.quarf(x, q)
        asked = model(x, q, output_hidden_states=True)
        plain = model(x, q)
        model.config.output_hidden_states = True
        from_config = model(x, q)
        as_tuple = model(x, q, return_dict=False)
    assert plain.hidden_states is None
    for out in (asked, from_config):
        assert len(out.hidden_states) == 1
        torch.testing.assert_close(out.hidden_states[0], expected, atol=0, rtol=0)
    assert len(as_tuple) == 3  # last_hidden_state, routing_weights, hidden_states (no aux_loss in eval)
    torch.testing.assert_close(as_tuple[2][0], expected, atol=0, rtol=0)


def test_contrique_output_hidden_states_are_its_resnets():
    """ContriqueModel swallowed output_hidden_states; now it gives the full-scale pass's hidden states,
    equal to transformers' ResNetModel holding the same encoder weights, and its quality features do not move."""
    from transformers import ResNetModel

    model = tiny_models.make_contrique()
    resnet = ResNetModel(model.config.resnet_config()).eval()
    resnet.load_state_dict(model.encoder.state_dict())
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = model(images)
        ours = model(images, output_hidden_states=True)
        theirs = resnet(images, output_hidden_states=True).hidden_states
    assert plain.hidden_states is None and len(ours.hidden_states) == len(theirs) == len(model.config.depths) + 1
    for mine, reference in zip(ours.hidden_states, theirs):
        torch.testing.assert_close(mine, reference, atol=0, rtol=0)
    torch.testing.assert_close(ours.quality_features, plain.quality_features, atol=0, rtol=0)


def test_contrique_return_dict_follows_the_config():
    """transformers' convention: return_dict=None means config.return_dict. ContriqueModel returned a
    ContriqueOutput whatever the config said; now config.return_dict=False gives the tuple."""
    model = tiny_models.make_contrique()
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(images).quality_features
        model.config.return_dict = False
        out = model(images)
        forced = model(images, return_dict=True)
    assert isinstance(out, tuple) and len(out) == 1
    torch.testing.assert_close(out[0], expected, atol=0, rtol=0)
    torch.testing.assert_close(forced.quality_features, expected, atol=0, rtol=0)


@pytest.mark.parametrize("kind", ["block", "contrique"])
def test_block_model_and_contrique_refuse_unknown_keyword_arguments(kind):
    """Both accepted any keyword silently (a misspelled output_hidden_states did nothing); now one line names it."""
    if kind == "block":
        model, x, q = block_model_and_inputs()
        call, name = (lambda **kw: model(x, q, **kw)), "QuarfBlockModel"
    else:
        model = tiny_models.make_contrique()
        call, name = (lambda **kw: model(torch.rand(1, 3, 64, 64), **kw)), "ContriqueModel"
    with pytest.raises(InputError, match=r"unknown keyword arguments \['output_hiden_states'\]; expected some of .*output_hidden_states") as info:
        call(output_hiden_states=True)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{name}.forward:")


def test_contrique_resnet_follows_the_models_attention_implementation():
    """transformers' test_can_set_attention_dynamically: ContriqueModel built with attn_implementation "eager"
    had a ResNet whose config said "sdpa" (built from the architecture, not a sub-config). Now both say eager,
    and set_attn_implementation moves both."""
    config = ContriqueConfig(**tiny_models.contrique_config())
    config._attn_implementation = "eager"
    model = ContriqueModel(config)
    assert model.config._attn_implementation == model.encoder.config._attn_implementation == "eager"
    model.set_attn_implementation("sdpa")
    assert model.config._attn_implementation == model.encoder.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("residual", [False, True])
def test_block_model_initialises_every_weight_a_checkpoint_lacks(residual):
    """transformers' test_can_init_all_missing_weights: the block model initialised the QuARF module as a whole,
    and transformers skips, for code outside transformers, a module without parameters of its own (a block
    without the gate), so the weights were never initialised. Here, as from_pretrained does for missing
    weights: built on the meta device, memory filled with NaN, then init_weights."""
    config = QuarfBlockConfig(in_channels=8, quality_dim=12, router="mlp", router_hidden_dim=16, residual=residual)
    with torch.device("meta"):
        model = QuarfBlockModel(config)
    model.to_empty(device="cpu")
    for tensor in model.parameters():
        tensor.data.fill_(float("nan"))
    model.init_weights()
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert len(layers) == 7  # four experts, the router's hidden, route and noise linears
    assert all(tiny_models.within_torch_default_init(layer) for layer in layers)
    if residual:
        assert torch.equal(model.quarf.residual_scale, torch.zeros(8))


def test_block_model_from_a_checkpoint_without_expert_weights(tmp_path):
    """A saved block whose file lacks the experts loads its router as saved and initialises the experts
    (they stayed uninitialised memory when the block had no residual gate)."""
    from safetensors.torch import load_file, save_file

    model, _, _ = block_model_and_inputs()
    model.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if ".experts." not in k}, str(tmp_path / "model.safetensors"),
              metadata={"format": "pt"})
    loaded, info = QuarfBlockModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] and all(".experts." in key for key in info["missing_keys"])
    for name, tensor in loaded.quarf.router.state_dict().items():
        torch.testing.assert_close(tensor, weights[f"quarf.router.{name}"], atol=0, rtol=0)
    assert all(tiny_models.within_torch_default_init(expert) for expert in loaded.quarf.experts)
