"""QuARF adapters: train blocks inside someone else's network, share only the blocks, put them back.

For a diffusers UNet2DModel, a transformers SegFormer, a plain torch CNN and an nn.Sequential:
insert, train a few steps (blocks only), save the adapter, publish base and adapter on the local
Hub server (olah), load the base fresh in another process (with and without quarf_hf), attach,
and compare with the trained model's outputs.
"""

import json

import pytest
import torch
from diffusers import UNet2DModel
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import SegformerConfig, SegformerForSemanticSegmentation

from quarf_hf import QuarfAdapter, QuarfAdapterConfig, QuarfSegformerForSemanticSegmentation, insert_quarf
from quarf_hf.models.quality import ContriqueQuality
from remote_code import ADAPTER_CODE
from tiny_models import segformer_config

# Base networks defined in code, run here and in the subprocesses (the same source in both).
PLAIN_BASES = """
import torch
from torch import nn

class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(16, 3, 1)

    def forward(self, x):
        return self.head(self.body(self.stem(x)))

def tiny_sequential():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))
"""
exec(PLAIN_BASES)

SEGFORMER = segformer_config(num_labels=3)
IMAGENET = dict(pixel_mean=[0.485, 0.456, 0.406], pixel_std=[0.229, 0.224, 0.225])


def tiny_unet():
    return UNet2DModel(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8,
    )


def tiny_contrique_extractor():
    from quarf_hf import ContriqueConfig, ContriqueModel

    torch.manual_seed(7)
    return ContriqueQuality(ContriqueModel(ContriqueConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1])).eval())


# name: (make base, insert_quarf arguments, input size, input range, how the model is called)
CASES = {
    "unet": (tiny_unet, dict(after=["conv_in", "down_blocks.1.resnets.0"], quality="brisque", pixel_mean=0.5, pixel_std=0.5), 32, (-1, 1)),
    "segformer": (lambda: SegformerForSemanticSegmentation(SegformerConfig(**SEGFORMER)),
                  dict(after="segformer.stages.0.patch_embeddings", channels=8, quality="brisque", **IMAGENET), 64, (-2, 2)),
    "cnn": (TinyCNN, dict(after="stem", quality=tiny_contrique_extractor), 64, (0, 1)),  # noqa: F821 (exec'd above)
    "sequential": (tiny_sequential, dict(after="2", quality="brisque", num_groups=2, top_k=2), 32, (0, 1)),  # noqa: F821
}

CALL = """
def call(name, model, x):
    if name == "unet":
        return model(x, timestep=10).sample
    if name == "segformer":
        return model(pixel_values=x).logits
    return model(x)
"""
exec(CALL)

LOAD_AND_ATTACH = PLAIN_BASES + CALL + """
import json, warnings
import torch
from diffusers import UNet2DModel
from huggingface_hub import hf_hub_download
from safetensors.torch import load_file
from transformers import AutoModel, SegformerForSemanticSegmentation
try:
    from quarf_hf import insert_quarf
    importable = True
except ImportError:
    importable = False

def fresh_base(name):
    if name == "unet":
        return UNet2DModel.from_pretrained("quarf-test/tiny-unet")
    if name == "segformer":
        return SegformerForSemanticSegmentation.from_pretrained("quarf-test/tiny-segformer")
    model = TinyCNN() if name == "cnn" else tiny_sequential()
    model.load_state_dict(load_file(hf_hub_download(f"quarf-test/tiny-{name}", "model.safetensors")))
    return model

inputs = torch.load("inputs.pt")
outputs, modules = {}, {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", UserWarning)
    for name in inputs:
        model = fresh_base(name).eval()
        repo = f"quarf-test/adapter-{name}"
        if importable:
            adapter = insert_quarf(model, adapter=repo)
        else:
            adapter = AutoModel.from_pretrained(repo, trust_remote_code=True).attach(model)
        modules[name] = type(adapter).__module__
        with torch.no_grad():
            outputs[name] = call(name, model, inputs[name])
torch.save(outputs, "outputs.pt")
adapter_warnings = [str(w.message) for w in caught if "adapter" in str(w.message)]
print(json.dumps({"importable": importable, "modules": modules, "warnings": adapter_warnings}))
"""


def _inputs(name, size, low_high):
    low, high = low_high
    return torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(len(name))) * (high - low) + low


@pytest.fixture(scope="module")
def trained(local_hub, tmp_path_factory):
    """Each base: reference outputs, insert, 3 training steps on the blocks, trained outputs, the
    adapter saved and published (with the base), then unload() and the outputs after it."""
    root = tmp_path_factory.mktemp("adapters")
    results = {}
    for name, (make_base, arguments, size, value_range) in CASES.items():
        torch.manual_seed(0)
        model = make_base().eval()
        base_folder = root / f"base-{name}"
        if hasattr(model, "save_pretrained"):
            model.save_pretrained(base_folder)
        else:
            base_folder.mkdir()
            save_file(model.state_dict(), base_folder / "model.safetensors")
        local_hub.publish(base_folder, f"quarf-test/tiny-{name}")
        x = _inputs(name, size, value_range)
        base_state = {k: v.clone() for k, v in model.state_dict().items()}
        with torch.no_grad():
            base_out = call(name, model, x)  # noqa: F821
        arguments = dict(arguments)
        if callable(arguments["quality"]):
            arguments["quality"] = arguments["quality"]()
        adapter = insert_quarf(model, **arguments)
        # Only the blocks train: the base stays in eval mode (its BatchNorm statistics must not move,
        # or a fresh base plus the adapter would not be the trained model).
        adapter.train()
        trainable = [p for p in adapter.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=0.05)
        target = torch.randn(base_out.shape, generator=torch.Generator().manual_seed(1))
        for _ in range(3):
            loss = torch.nn.functional.mse_loss(call(name, model, x), target)  # noqa: F821
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            trained_out = call(name, model, x)  # noqa: F821
        folder = root / f"adapter-{name}"
        adapter.save_pretrained(folder)
        local_hub.publish(folder, f"quarf-test/adapter-{name}")
        trained_state = model.state_dict()
        model = adapter.unload()
        with torch.no_grad():
            detached_out = call(name, model, x)  # noqa: F821
        results[name] = dict(
            x=x, base_out=base_out, trained_out=trained_out, detached_out=detached_out, folder=folder,
            base_folder=base_folder, base_state=base_state, base_class=type(model).__name__, trained_state=trained_state,
            detached_state=model.state_dict(), adapter=adapter, gates=[b.residual_scale.abs().sum().item() for b in adapter.blocks],
        )
    return results


def test_training_moved_the_blocks_and_only_them(trained):
    for name, r in trained.items():
        assert all(g > 0 for g in r["gates"]), f"{name}: every block's gate moved away from the identity"
        assert not torch.allclose(r["trained_out"], r["base_out"]), f"{name}: training changed the outputs"
        for key, value in r["base_state"].items():
            assert torch.equal(r["trained_state"][key], value), f"{name}: base weight {key} changed"


def test_unload_gives_the_base_model_bit_for_bit(trained):
    """Outputs after unload() against the base's outputs before insert_quarf (exact), and the state dict."""
    for name, r in trained.items():
        torch.testing.assert_close(r["detached_out"], r["base_out"], atol=0, rtol=0)
        assert list(r["detached_state"]) == list(r["base_state"]), name
        assert any(k.startswith("quarf_") or ".quarf_" in k for k in r["trained_state"]), f"{name}: blocks were in the model"


def test_adapter_folders_hold_only_the_adapter(trained):
    """The adapter's safetensors hold its blocks and extractor and nothing of the base: compared with
    the base's tensor names, and its size with the bytes of the adapter's own tensors."""
    for name, r in trained.items():
        folder = r["folder"]
        files = sorted(p.name for p in folder.iterdir())
        assert {"model.safetensors", "config.json", "README.md", "quarf.py", *ADAPTER_CODE} <= set(files), files
        with safe_open(folder / "model.safetensors", "pt") as weights:
            keys = list(weights.keys())
        assert keys and all(k.startswith(("blocks.", "quality_extractor.")) for k in keys), keys[:5]
        assert not set(keys) & set(r["base_state"])
        adapter_bytes = sum(t.numel() * t.element_size() for t in r["adapter"].state_dict().values())
        weights_bytes = (folder / "model.safetensors").stat().st_size
        assert adapter_bytes <= weights_bytes <= adapter_bytes + 64 * 1024, (name, weights_bytes, adapter_bytes)
        config = json.loads((folder / "config.json").read_text())
        assert config["model_type"] == "quarf_adapter" and config["auto_map"]["AutoModel"].startswith("modeling_quarf_adapter.")
        assert config["base_model_class"].rsplit(".", 1)[-1] == r["base_class"]
    card = (trained["unet"]["folder"] / "README.md").read_text()
    assert "UNet2DModel" in card and "conv_in" in card and "quarf-adapter" in card
    unet_weights = sum(p.stat().st_size for p in trained["unet"]["base_folder"].glob("*.safetensors"))
    assert (trained["unet"]["folder"] / "model.safetensors").stat().st_size < unet_weights


@pytest.mark.parametrize("block_quarf_hf", [False, True], ids=["with-quarf_hf", "remote-code-only"])
def test_fresh_base_plus_adapter_from_the_hub_equals_the_trained_model(trained, local_hub, tmp_path, block_quarf_hf):
    """In another process: each base loaded fresh from the local Hub, the adapter from the local Hub
    (insert_quarf(adapter=id) with quarf_hf; AutoModel + trust_remote_code without), attached: its
    outputs against the trained model's, to 1e-6."""
    torch.save({name: r["x"] for name, r in trained.items()}, tmp_path / "inputs.pt")
    info = local_hub.run(LOAD_AND_ATTACH, block_quarf_hf=block_quarf_hf, cwd=tmp_path)
    assert info["importable"] is (not block_quarf_hf)
    assert all(m.startswith("quarf_hf") is (not block_quarf_hf) for m in info["modules"].values()), info["modules"]
    assert info["warnings"] == [], "same class names and shapes: no class warning"
    outputs = torch.load(tmp_path / "outputs.pt")
    for name, r in trained.items():
        torch.testing.assert_close(outputs[name], r["trained_out"], atol=1e-6, rtol=0, msg=lambda m: f"{name}: {m}")


def test_quarf_segformer_exports_an_adapter_for_its_plain_segformer(tmp_path):
    """to_adapter(): the plain SegFormer the QuARF-SegFormer was built from, with the adapter attached
    (also after a save/load round trip), gives the QuARF-SegFormer's logits."""
    torch.manual_seed(0)
    SegformerForSemanticSegmentation(SegformerConfig(**SEGFORMER)).save_pretrained(tmp_path / "segformer")
    quarf_model = QuarfSegformerForSemanticSegmentation.from_segformer(tmp_path / "segformer", quality="brisque").eval()
    with torch.no_grad():
        quarf_model.segformer.quarf.residual_scale.fill_(0.5)  # a block that changes the logits
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = quarf_model(pixel_values=pixels).logits
    adapter = quarf_model.to_adapter(base_model=str(tmp_path / "segformer"))
    adapter.save_pretrained(tmp_path / "adapter")
    for candidate in (adapter, QuarfAdapter.from_pretrained(tmp_path / "adapter")):
        base = SegformerForSemanticSegmentation.from_pretrained(tmp_path / "segformer").eval()
        with torch.no_grad():
            plain = base(pixel_values=pixels).logits
            candidate.attach(base)
            torch.testing.assert_close(base(pixel_values=pixels).logits, expected, atol=1e-6, rtol=0)
        assert not torch.allclose(plain, expected)
        candidate.unload()
    keys = list(safe_open(tmp_path / "adapter" / "model.safetensors", "pt").keys())
    assert all(k.startswith(("blocks.0.", "quality_extractor.")) for k in keys)


def _unchanged(model, keys):
    return list(model.state_dict()) == keys and not model._forward_pre_hooks and not model._forward_hooks


def test_attach_checks_before_any_work(tmp_path):
    """Missing module, channel mismatch, other shapes: a ValueError naming the module, the model untouched.
    Only the class name differs: a warning, and the adapter attaches."""
    torch.manual_seed(0)
    adapter = insert_quarf(tiny_unet(), after="conv_in", quality="brisque", pixel_mean=0.5, pixel_std=0.5)
    adapter.unload()

    cnn = TinyCNN()  # noqa: F821
    keys = list(cnn.state_dict())
    with pytest.raises(ValueError, match="TinyCNN has no module 'conv_in'"):
        adapter.attach(cnn)
    assert _unchanged(cnn, keys)

    wider = UNet2DModel(sample_size=32, block_out_channels=(24, 32), layers_per_block=1, norm_num_groups=8,
                        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))
    keys = list(wider.state_dict())
    with pytest.raises(ValueError, match="'conv_in' outputs 24 channels, the adapter's block takes 16"):
        adapter.attach(wider)
    assert _unchanged(wider, keys)

    class Renamed(torch.nn.Module):  # same names, same channels, another kernel size
        def __init__(self, kernel_size):
            super().__init__()
            self.conv_in = torch.nn.Conv2d(3, 16, kernel_size, padding=kernel_size // 2)

        def forward(self, sample):
            return self.conv_in(sample)

    other = Renamed(5)
    keys = list(other.state_dict())
    with pytest.raises(ValueError, match=r"conv_in.weight has shape \[16, 3, 5, 5\], the adapter was made for \[16, 3, 3, 3\]"):
        adapter.attach(other)
    assert _unchanged(other, keys)

    same_shapes = Renamed(3)
    with pytest.warns(UserWarning, match="made for a diffusers.*UNet2DModel, attaching it to a .*Renamed"):
        adapter.attach(same_shapes)
    assert same_shapes(torch.rand(1, 3, 32, 32)).shape == (1, 16, 32, 32)
    with pytest.raises(ValueError, match="already attached"):
        adapter.attach(tiny_unet())
    adapter.unload()


def test_insert_quarf_argument_errors(tmp_path):
    cnn = TinyCNN()  # noqa: F821
    with pytest.raises(ValueError, match=r"adapter: .*pass either adapter= or \['after'\]"):
        insert_quarf(cnn, after="stem", adapter="some/adapter")
    with pytest.raises(ValueError, match=r"adapter: .*pass either adapter= or \['pixel_mean', 'num_groups'\], not both"):
        insert_quarf(cnn, adapter="some/adapter", pixel_mean=0.5, num_groups=2)  # every setting, pixel_mean too
    with pytest.raises(ValueError, match="after: expected the name of a submodule"):
        insert_quarf(cnn)
    with pytest.raises(TypeError, match="adapter: expected a QuarfAdapter"):
        insert_quarf(cnn, adapter=42)
    with pytest.raises(ValueError, match=r"channels: expected 2 values"):
        insert_quarf(cnn, after=["stem", "head"], channels=[16])
    with pytest.raises(ValueError, match="no attachments"):
        QuarfAdapter(QuarfAdapterConfig()).attach(cnn)
    assert _unchanged(cnn, list(TinyCNN().state_dict()))  # noqa: F821


def test_adapter_from_a_folder_through_insert_quarf(tmp_path):
    """insert_quarf(model, adapter=folder) attaches a saved adapter; outputs equal the trained model's."""
    torch.manual_seed(0)
    model = tiny_sequential().eval()  # noqa: F821
    fresh = tiny_sequential().eval()  # noqa: F821
    fresh.load_state_dict(model.state_dict())
    adapter = insert_quarf(model, after="0", quality="brisque", num_groups=2)
    with torch.no_grad():
        adapter.block.residual_scale.fill_(0.3)
    adapter.save_pretrained(tmp_path / "adapter")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        loaded = insert_quarf(fresh, adapter=tmp_path / "adapter")
        torch.testing.assert_close(fresh(x), expected, atol=0, rtol=0)
    assert loaded.attached_to is fresh and set(loaded.last_routing_weights) == {"0"}
    block = loaded.block_model(0).eval()  # the block on its own, as a QuarfBlockModel
    features, quality = torch.randn(1, 8, 4, 4), loaded(pixel_values=x).quality_features
    torch.testing.assert_close(block(features, quality).last_hidden_state, loaded.block(features, quality), atol=0, rtol=0)


def test_push_to_hub_uploads_the_adapter_with_its_card(tmp_path, monkeypatch):
    """push_to_hub: create_repo, then upload_folder of a folder holding the adapter and a card naming the
    base model (the Hub's upload API is not available offline: the two HfApi calls are recorded)."""
    import huggingface_hub

    calls = []

    class Created:
        repo_id = "me/unet-quarf"

    def upload_folder(self, **kwargs):
        folder = kwargs["folder_path"]
        from pathlib import Path

        calls.append(("upload", kwargs["repo_id"], sorted(p.name for p in Path(folder).iterdir()),
                      (Path(folder) / "README.md").read_text()))

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id)) or Created())
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    adapter = insert_quarf(tiny_unet(), after="conv_in", pixel_mean=0.5, pixel_std=0.5, base_model="someone/tiny-unet")
    adapter.push_to_hub("me/unet-quarf")
    assert calls[0] == ("create", "me/unet-quarf")
    _, repo_id, files, card = calls[1]
    assert repo_id == "me/unet-quarf" and "model.safetensors" in files and "config.json" in files
    assert "base_model: someone/tiny-unet" in card and 'AutoModel.from_pretrained("me/unet-quarf"' in card


def _small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()),
        torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU()),
        torch.nn.Conv2d(8, 3, 1),
    )


@pytest.mark.parametrize("after, expected", [
    ("1.0", ["1.0"]),                      # an exact name
    (r"\d\.0", ["0.0", "1.0"]),            # a regular expression, full match (as peft's target_modules)
    (["0"], ["0"]),                        # an exact name in a list (before any suffix)
    (["1.0", "2"], ["1.0", "2"]),
])
def test_after_selects_modules_as_peft_target_modules(after, expected):
    from quarf_hf.models.adapter_targets import resolve_after

    assert resolve_after(_small_cnn(), after) == expected


def test_after_suffixes_and_patterns_build_an_adapter():
    from quarf_hf import QuarfAdapter
    from quarf_hf.models.checks import InputError

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1))
            self.body = torch.nn.ModuleDict({"a": torch.nn.Conv2d(8, 8, 3, padding=1),
                                             "b": torch.nn.Conv2d(8, 8, 3, padding=1)})
            self.head = torch.nn.Conv2d(8, 3, 1)

        def forward(self, x):
            return self.head(self.body["b"](self.body["a"](self.stem(x))))

    net = Net()
    adapter = QuarfAdapter.for_model(net, after=["a", "b"], quality="brisque", num_groups=2, experts=[[3, 1], [3, 2]])
    assert [a["after"] for a in adapter.config.attachments] == ["body.a", "body.b"]  # suffixes
    adapter = QuarfAdapter.for_model(net, after=r"body\.[ab]", quality="brisque", num_groups=2, experts=[[3, 1], [3, 2]])
    assert [a["after"] for a in adapter.config.attachments] == ["body.a", "body.b"]  # a pattern
    with pytest.raises(InputError, match=r"^after: \['nope'\] is not a submodule of Net"):
        QuarfAdapter.for_model(net, after=["nope"], quality="brisque")


def test_unload_and_disable_adapter_in_peft_words():
    from quarf_hf import QuarfAdapter

    cnn = _small_cnn().eval()
    images = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        plain = cnn(images)
    adapter = QuarfAdapter.for_model(cnn, after="0.0", quality="brisque", num_groups=2, experts=[[3, 1], [3, 2]])
    with torch.no_grad():
        adapter.block.residual_scale.fill_(1.0)  # a block that changes the output
    adapter.attach(cnn)
    with torch.no_grad():
        adapted = cnn(images)
        with adapter.disable_adapter() as network:
            assert network is cnn
            disabled = cnn(images)
        again = cnn(images)
    assert not torch.allclose(adapted, plain)
    assert torch.equal(disabled, plain) and torch.equal(again, adapted)
    assert not hasattr(QuarfAdapter, "detach")  # one name for it: peft's unload
    assert adapter.unload() is cnn and not any(n.startswith("0.quarf") or "quarf" in n for n, _ in cnn.named_modules())
    with torch.no_grad():
        assert torch.equal(cnn(images), plain)
