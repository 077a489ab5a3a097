"""`quarf-hf build` for every file in hub_configs/, and `--push` (token handling, Hub API calls)."""

import re
import warnings
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image
from transformers import AutoModel, AutoModelForSemanticSegmentation, SegformerConfig, SegformerModel

from quarf_hf import ContriqueModel, QuarfAdapter, QuarfSegformerForSemanticSegmentation
from quarf_hf.cli import main as cli_main
from quarf_hf.data import load_photo
from quarf_hf.degradations import degrade
from quarf_hf.hub.build import build, load_hub_config
from remote_code import ADAPTER_CODE, run_without_quarf_hf
from tiny_models import make_sam, segformer_config

HUB_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "hub_configs").glob("*.yaml"))
SEGFORMER_CONFIGS = [p for p in HUB_CONFIGS if load_hub_config(p)["model"] == "quarf_segformer"]


def test_every_published_variant_is_listed():
    names = {p.stem for p in HUB_CONFIGS}
    assert {f"quarf-segformer-b{i}" for i in range(6)} | {"contrique-resnet50", "quarf-sam-vit-base"} <= names


@pytest.mark.parametrize("config_path", SEGFORMER_CONFIGS, ids=lambda p: p.stem)
def test_build_segformer_variant(config_path, tmp_path):
    """Each variant builds (BRISQUE routing to keep the test light), loads through the Auto classes and runs."""
    data = load_hub_config(config_path)
    out = tmp_path / data["name"]
    with pytest.warns(UserWarning, match="randomly initialised"):
        build(config_path, out, quality="brisque")
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "README.md", "modeling_quarf_segformer.py", "quarf.py"):
        assert (out / name).exists(), name
    model = AutoModelForSemanticSegmentation.from_pretrained(out).eval()
    assert isinstance(model, QuarfSegformerForSemanticSegmentation)
    assert list(model.config.hidden_sizes) == data["segformer"]["hidden_sizes"]
    assert list(model.config.depths) == data["segformer"]["depths"]
    assert model.segformer.quarf.in_channels == data["quarf"]["width"]
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).logits.shape == (1, data["segformer"]["num_labels"], 16, 16)
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "image-segmentation"
    assert "quarf" in card.data.tags and card.data.license == data["license"]


def test_model_card_usage_snippet_runs(tmp_path):
    """The card's snippet, pointed at the built folder, segments an image with the pipeline."""
    out = tmp_path / "b0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build("quarf-segformer-b0", out, quality="brisque")
    snippet = re.search(r"```python\n(.*?)```", (out / "README.md").read_text(), re.S).group(1)
    snippet = snippet.replace("<your-org>/quarf-segformer-b0", str(out))
    Image.fromarray((torch.rand(70, 90, 3) * 255).byte().numpy()).save(tmp_path / "image.png")
    namespace = {}
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(snippet, namespace)
    finally:
        os.chdir(cwd)
    assert namespace["segments"] and namespace["segments"][0]["mask"].size == (90, 70)


def test_build_from_base_checkpoint_keeps_its_logits(tmp_path):
    """--base: a SegFormer-B0-shaped checkpoint; the built model reproduces its encoder exactly."""
    data = load_hub_config("quarf-segformer-b0")
    torch.manual_seed(0)
    base = SegformerModel(SegformerConfig(**{k: v for k, v in data["segformer"].items() if k != "num_labels"})).eval()
    base.save_pretrained(tmp_path / "mit-b0")
    out = build("quarf-segformer-b0", tmp_path / "built", base=str(tmp_path / "mit-b0"), quality="brisque")
    model = AutoModel.from_pretrained(out).eval()
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = model(pixels, output_hidden_states=True).hidden_states
        theirs = base(pixels, output_hidden_states=True).hidden_states
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == "nvidia/mit-b0"


def test_build_with_default_contrique_quality(tmp_path):
    with pytest.warns(UserWarning, match="randomly initialised"):
        out = build("quarf-segformer-b0", tmp_path / "b0")
    model = AutoModelForSemanticSegmentation.from_pretrained(out)
    assert model.config.quality["type"] == "contrique" and model.config.quarf["quality_dim"] == 4096


def test_build_contrique_variant(tmp_path):
    out = build("contrique-resnet50", tmp_path / "contrique")
    model = ContriqueModel.from_pretrained(out)
    assert model.feature_dim == 4096
    assert ModelCard.load(out / "README.md").data.pipeline_tag == "image-feature-extraction"


def test_mismatched_base_is_rejected(tmp_path):
    SegformerModel(SegformerConfig(**segformer_config())).save_pretrained(tmp_path / "tiny")
    with pytest.raises(ValueError, match=r"--base: its hidden_sizes \[8, 16, 16, 16\] do not match quarf-segformer-b0's"):
        build("quarf-segformer-b0", tmp_path / "out", base=str(tmp_path / "tiny"), quality="brisque")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"], "no staging folder left behind"


def test_cli_errors(tmp_path, capsys, monkeypatch):
    assert cli_main(["build", "no-such-variant", "--out", str(tmp_path / "x")]) == 2
    assert "CONFIG: no such file" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    assert cli_main(["build", "quarf-segformer-b0", "--out", str(tmp_path / "full")]) == 2
    assert "--out" in capsys.readouterr().err
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    assert cli_main(["build", "quarf-segformer-b0", "--out", str(tmp_path / "y"), "--push", "me/model"]) == 2
    assert "token: no Hugging Face token found" in capsys.readouterr().err
    assert not (tmp_path / "y").exists(), "the missing token is reported before any build work"


def test_push_creates_repo_and_uploads_the_folder(tmp_path, monkeypatch):
    """--push calls huggingface_hub's create_repo and upload_folder with the built folder.

    The Hub's upload API is not available offline (olah is a read-only mirror), so the two
    HfApi methods are replaced by recorders; the arguments they receive are what is checked.
    """
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw)))
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = build("quarf-segformer-b0", tmp_path / "b0", quality="brisque", push="me/quarf-b0", private=True)
    assert calls[0] == ("create", "me/quarf-b0", {"private": True, "exist_ok": True, "repo_type": "model"})
    assert calls[1][1]["folder_path"] == str(out) and calls[1][1]["repo_id"] == "me/quarf-b0"
    assert 'model="me/quarf-b0"' in (out / "README.md").read_text()


def sam_photos(mean, std) -> torch.Tensor:
    """A built-in photo at the tiny SAM's 64x64, clean and under strong Gaussian noise, normalised with
    ``mean`` / ``std`` as SamProcessor does."""
    clean = torch.nn.functional.interpolate(load_photo("astronaut")[None], size=(64, 64), mode="area")
    images = torch.cat([clean, degrade(clean, "gaussian_noise", 5, torch.Generator().manual_seed(0))])
    return (images - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def test_build_sam_adapter_from_a_base(tmp_path):
    """quarf-sam-vit-base built on a tiny random SamModel saved locally (facebook/sam-vit-base's stand-in):
    the folder is the adapter alone (no SAM weights); reloaded and attached to that SAM, get_image_embeddings
    equals the SAM's own (the reference: the same SAM before attaching) and the block routes a clean and a
    noisy built-in photo differently; its card is an adapter card of facebook/sam-vit-base."""
    from safetensors import safe_open
    from transformers import SamModel

    data = load_hub_config("quarf-sam-vit-base")
    make_sam().save_pretrained(tmp_path / "sam")
    out = build("quarf-sam-vit-base", tmp_path / "adapter", base=str(tmp_path / "sam"))
    for name in ("model.safetensors", "config.json", "README.md", "quarf.py", *ADAPTER_CODE):
        assert (out / name).exists(), name
    with safe_open(out / "model.safetensors", "pt") as weights:
        keys = list(weights.keys())
    assert any(k.startswith("blocks.0.") for k in keys)
    assert not [k for k in keys if not k.startswith(("blocks.", "quality_extractor."))], "SAM's own weights are not saved"

    adapter = QuarfAdapter.from_pretrained(out)
    settings = data["adapter"]
    assert adapter.config.entry == settings["entry"] and adapter.config.quality["type"] == data["quality"]
    attachment = adapter.config.attachments[0]
    assert attachment["after"] == settings["after"] and attachment["layout"] == settings["layout"]
    assert attachment["in_channels"] == 32  # the tiny SAM's vision hidden size, read off the base
    assert attachment["quarf"]["num_groups"] == data["quarf"]["num_groups"]
    torch.testing.assert_close(torch.tensor(adapter.config.pixel_mean), torch.tensor(settings["pixel_mean"]))

    sam = SamModel.from_pretrained(tmp_path / "sam").eval()
    pixels = sam_photos(adapter.config.pixel_mean, adapter.config.pixel_std)
    with torch.no_grad():
        reference = sam.get_image_embeddings(pixels)
    adapter.attach(sam)
    with adapter.record_routing() as routing, torch.no_grad():
        embeddings = sam.get_image_embeddings(pixels)
    assert torch.equal(embeddings, reference)
    weights = routing[0][settings["after"]]
    assert weights.shape == (2, data["quarf"]["num_groups"], len(data["quarf"]["experts"]))
    assert (weights[0] - weights[1]).abs().max().item() > 1e-3

    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and "quarf" in card.data.tags and card.data.license == data["license"]
    assert card.data.base_model == data["base_model"] and card.data.base_model_relation == "adapter"
    assert "\n# quarf-sam-vit-base\n" in card.content and "identity init" in card.content


def test_build_sam_adapter_takes_the_bases_processor_normalisation(tmp_path):
    """A base saved with its image processor: the adapter un-normalises pixels with that processor's
    mean/std, not the variant's defaults."""
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    make_sam().save_pretrained(tmp_path / "sam")
    SamImageProcessorPil(image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25]).save_pretrained(tmp_path / "sam")
    adapter = QuarfAdapter.from_pretrained(build("quarf-sam-vit-base", tmp_path / "adapter", base=str(tmp_path / "sam")))
    assert adapter.config.pixel_mean == [0.5, 0.5, 0.5] and adapter.config.pixel_std == [0.25, 0.25, 0.25]


def test_build_sam_adapter_refuses_a_missing_or_foreign_base(tmp_path, capsys):
    """No --base, or a base that is not a SAM (a SegFormer): one line naming --base, nothing written."""
    SegformerModel(SegformerConfig(**segformer_config())).save_pretrained(tmp_path / "segformer")
    capsys.readouterr()  # the save's progress bar
    assert cli_main(["build", "quarf-sam-vit-base", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "--base: quarf-sam-vit-base is an adapter for facebook/sam-vit-base" in err
    assert cli_main(["build", "quarf-sam-vit-base", "--out", str(tmp_path / "b"), "--base", str(tmp_path / "segformer")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "--base: expected a 'sam' model such as facebook/sam-vit-base, found model_type 'segformer'" in err
    assert [p.name for p in tmp_path.iterdir()] == ["segformer"], "nothing written, no staging folder left"


def test_built_sam_adapter_loads_and_attaches_without_quarf_hf(tmp_path):
    """The built quarf-sam-vit-base folder (SAM's channels-last patch embedding, entry at the vision
    encoder), its block moved off the identity and saved again, loaded in a process where
    ``import quarf_hf`` fails (AutoModel + trust_remote_code) and attached to the same tiny SAM:
    get_image_embeddings equals the package's own attached SAM (the reference, this process) and
    differs from the plain SAM's."""
    from transformers import SamModel

    make_sam().save_pretrained(tmp_path / "sam")
    adapter = QuarfAdapter.from_pretrained(build("quarf-sam-vit-base", tmp_path / "built", base=str(tmp_path / "sam")))
    with torch.no_grad():
        for block in adapter.blocks:
            block.residual_scale.fill_(0.5)  # a block that changes the embeddings
    adapter.save_pretrained(tmp_path / "adapter")
    pixels = sam_photos(adapter.config.pixel_mean, adapter.config.pixel_std)
    torch.save(pixels, tmp_path / "x.pt")
    sam = SamModel.from_pretrained(tmp_path / "sam").eval()
    with torch.no_grad():
        plain = sam.get_image_embeddings(pixels)
        adapter.attach(sam)
        expected = sam.get_image_embeddings(pixels)
    assert not torch.allclose(plain, expected)
    code = f"""
import json, torch
from transformers import AutoModel, SamModel
sam = SamModel.from_pretrained({str(tmp_path / "sam")!r}).eval()
adapter = AutoModel.from_pretrained({str(tmp_path / "adapter")!r}, trust_remote_code=True).attach(sam)
with torch.no_grad():
    torch.save(sam.get_image_embeddings(torch.load({str(tmp_path / "x.pt")!r})), {str(tmp_path / "y.pt")!r})
print(json.dumps({{"module": type(adapter).__module__}}))
"""
    info = run_without_quarf_hf(code)
    assert not info["module"].startswith("quarf_hf")
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), expected, atol=1e-6, rtol=0)
