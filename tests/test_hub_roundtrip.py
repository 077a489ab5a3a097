"""Hub round trips through a real server (olah on 127.0.0.1): load by repo id, with and without quarf_hf."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import SegformerImageProcessor

from quarf_hf import QuarfBlockConfig, QuarfBlockModel
from tiny_models import make_quarf_segformer


LOAD_SEGFORMER = """
import json, torch
from transformers import AutoModel, AutoModelForSemanticSegmentation, pipeline
from PIL import Image
try:
    import quarf_hf
    importable = True
except ImportError:
    importable = False
kwargs = {} if importable else {"trust_remote_code": True}
model = AutoModelForSemanticSegmentation.from_pretrained("quarf-test/tiny-quarf-segformer", **kwargs).eval()
base = AutoModel.from_pretrained("quarf-test/tiny-quarf-segformer", **kwargs).eval()
with torch.no_grad():
    out = model(torch.load("pixels.pt"))
torch.save({"logits": out.logits, "routing": out.routing_weights}, "out.pt")
segments = pipeline("image-segmentation", model="quarf-test/tiny-quarf-segformer", **kwargs)(Image.open("image.png"))
print(json.dumps({"importable": importable, "module": type(model).__module__, "base": type(base).__name__,
                  "labels": sorted(s["label"] for s in segments), "mask_size": list(segments[0]["mask"].size)}))
"""


@pytest.fixture(scope="module")
def published_segformer(local_hub, tmp_path_factory):
    folder = tmp_path_factory.mktemp("seg")
    torch.manual_seed(0)
    model = make_quarf_segformer()
    with torch.no_grad():  # a non-identity block, so the routing path matters for the logits
        model.segformer.quarf.residual_scale.fill_(0.5)
    model.save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    local_hub.publish(folder, "quarf-test/tiny-quarf-segformer")
    return model


@pytest.mark.parametrize("block_quarf_hf", [False, True], ids=["with-quarf_hf", "remote-code-only"])
def test_quarf_segformer_by_repo_id(local_hub, published_segformer, tmp_path, block_quarf_hf):
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    torch.save(pixels, tmp_path / "pixels.pt")
    Image.fromarray((np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)).save(tmp_path / "image.png")
    info = local_hub.run(LOAD_SEGFORMER, block_quarf_hf=block_quarf_hf, cwd=tmp_path)
    assert info["importable"] is (not block_quarf_hf)
    assert info["module"].startswith("quarf_hf") is (not block_quarf_hf)
    assert info["base"] == "QuarfSegformerModel"
    assert info["mask_size"] == [70, 50] and set(info["labels"]) <= {"LABEL_0", "LABEL_1", "LABEL_2"}
    with torch.no_grad():
        expected = published_segformer(pixels)
    got = torch.load(tmp_path / "out.pt")
    torch.testing.assert_close(got["logits"], expected.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got["routing"], expected.routing_weights, atol=1e-6, rtol=1e-6)
    snapshots = list((tmp_path.parent / info["hf_home"]).glob("hub/models--quarf-test--tiny-quarf-segformer/snapshots/*/model.safetensors"))
    assert snapshots, "the weights came through huggingface_hub's cache"
    assert "tiny-quarf-segformer" in local_hub.log_path.read_text()


@pytest.mark.parametrize("block_quarf_hf", [False, True], ids=["with-quarf_hf", "remote-code-only"])
def test_contrique_by_repo_id(local_hub, tiny_contrique, tmp_path, block_quarf_hf):
    model = tiny_contrique
    model.save_pretrained(tmp_path / "contrique")
    local_hub.publish(tmp_path / "contrique", "quarf-test/tiny-contrique")
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    torch.save(images, tmp_path / "images.pt")
    code = """
import json, torch
from transformers import AutoModel
try:
    import quarf_hf
    kwargs = {}
except ImportError:
    kwargs = {"trust_remote_code": True}
model = AutoModel.from_pretrained("quarf-test/tiny-contrique", **kwargs).eval()
with torch.no_grad():
    torch.save(model(torch.load("images.pt")).quality_features, "features.pt")
print(json.dumps({"module": type(model).__module__}))
"""
    info = local_hub.run(code, block_quarf_hf=block_quarf_hf, cwd=tmp_path)
    assert info["module"].startswith("quarf_hf") is (not block_quarf_hf)
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "features.pt"), model(images).quality_features, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("block_quarf_hf", [False, True], ids=["with-quarf_hf", "remote-code-only"])
def test_quarf_block_by_repo_id(local_hub, tmp_path, block_quarf_hf):
    """A single QuARF block (QuarfBlockModel) from the local Hub through AutoModel: the same output and routing."""
    torch.manual_seed(0)
    model = QuarfBlockModel(QuarfBlockConfig(in_channels=16, quality_dim=36, residual=True, top_k=2)).eval()
    with torch.no_grad():
        model.quarf.residual_scale.fill_(0.5)
    model.save_pretrained(tmp_path / "block")
    local_hub.publish(tmp_path / "block", "quarf-test/tiny-quarf-block")
    x, q = torch.randn(2, 16, 8, 8), torch.randn(2, 36)
    torch.save({"x": x, "q": q}, tmp_path / "inputs.pt")
    code = """
import json, torch
from transformers import AutoModel
try:
    import quarf_hf
    kwargs = {}
except ImportError:
    kwargs = {"trust_remote_code": True}
model = AutoModel.from_pretrained("quarf-test/tiny-quarf-block", **kwargs).eval()
inputs = torch.load("inputs.pt")
with torch.no_grad():
    out = model(inputs["x"], inputs["q"])
torch.save({"out": out.last_hidden_state, "routing": out.routing_weights}, "out.pt")
print(json.dumps({"module": type(model).__module__, "class": type(model).__name__}))
"""
    info = local_hub.run(code, block_quarf_hf=block_quarf_hf, cwd=tmp_path)
    assert info["module"].startswith("quarf_hf") is (not block_quarf_hf) and info["class"] == "QuarfBlockModel"
    got = torch.load(tmp_path / "out.pt")
    with torch.no_grad():
        expected = model(x, q)
    torch.testing.assert_close(got["out"], expected.last_hidden_state, atol=1e-6, rtol=0)
    torch.testing.assert_close(got["routing"], expected.routing_weights, atol=1e-6, rtol=0)


def test_unknown_repo_gives_a_clear_error(local_hub, tmp_path):
    code = """
import json
from transformers import AutoConfig
try:
    AutoConfig.from_pretrained("quarf-test/does-not-exist")
    print(json.dumps({"error": None}))
except OSError as err:
    print(json.dumps({"error": str(err)}))
"""
    info = local_hub.run(code, block_quarf_hf=False, cwd=tmp_path)
    assert info["error"] and "does-not-exist" in info["error"]
