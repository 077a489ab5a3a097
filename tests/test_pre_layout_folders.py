"""Folders saved before the layout change (issue 10) still load and give the outputs they gave then.

tests/fixtures/pre_layout/ holds tiny QuARF-SegFormer, QuARF restoration and CONTRIQUE folders
written by the code of commit b08d724 (flat ``quarf_hf/modeling_*.py``) with
tests/fixtures/make_pre_layout_folders.py, and ``expected.safetensors``: the input image and the
outputs that code recorded after reloading each folder. Each test compares today's outputs with
those recorded ones: through today's package (the Auto classes it registers), and in a Python
where quarf_hf cannot be imported, through the folder's own copied code (trust_remote_code=True).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForSemanticSegmentation

from remote_code import run_without_quarf_hf

import quarf_hf  # noqa: F401 - registers the Auto classes
from quarf_hf import ContriqueModel, QuarfRestorationModel, QuarfSegformerForSemanticSegmentation

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pre_layout"
ATOL = 1e-5

# folder -> (Auto class, today's class, output fields recorded)
FOLDERS = {
    "quarf_segformer": (AutoModelForSemanticSegmentation, QuarfSegformerForSemanticSegmentation,
                        ("logits", "routing_weights", "quality_features")),
    "quarf_restoration": (AutoModel, QuarfRestorationModel, ("reconstruction", "routing_weights", "quality_features")),
    "contrique": (AutoModel, ContriqueModel, ("quality_features", "projections")),
}


def _inputs(name: str, config, image: torch.Tensor) -> dict:
    """What make_pre_layout_folders.py fed each model (the same float32 arithmetic)."""
    pixels = image.float() / 255
    if name == "quarf_segformer":
        mean = torch.tensor(config.image_mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(config.image_std, dtype=torch.float32).view(1, -1, 1, 1)
        return {"pixel_values": (pixels - mean) / std}
    if name == "contrique":
        return {"pixel_values": pixels, "return_projections": True}
    return {"pixel_values": pixels}


@pytest.mark.parametrize("name", list(FOLDERS))
def test_pre_layout_folder_loads_with_todays_package(name):
    """from_pretrained through the Auto classes (and the class itself) gives today's class, every
    weight loaded (no missing or unexpected key), and the outputs recorded by commit b08d724."""
    folder = FIXTURES / name
    auto_class, model_class, fields = FOLDERS[name]
    expected = load_file(str(folder / "expected.safetensors"))
    model, info = auto_class.from_pretrained(folder, output_loading_info=True)
    assert type(model) is model_class
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    direct = model_class.from_pretrained(folder).eval()
    for candidate in (model.eval(), direct):
        with torch.no_grad():
            out = candidate(**_inputs(name, candidate.config, expected["image"]))
        for field in fields:
            torch.testing.assert_close(getattr(out, field), expected[field], atol=ATOL, rtol=ATOL, msg=f"{name}.{field}")


@pytest.mark.parametrize("name", list(FOLDERS))
def test_pre_layout_folder_loads_with_its_own_code(name, tmp_path):
    """trust_remote_code=True where quarf_hf cannot be imported: the folder's own copied (pre-layout)
    code runs and gives the recorded outputs."""
    folder = FIXTURES / name
    auto_class, _, fields = FOLDERS[name]
    code = f"""
import json, torch
from safetensors.torch import load_file, save_file
from transformers import {auto_class.__name__}
{inspect.getsource(_inputs)}
model = {auto_class.__name__}.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
expected = load_file({str(folder / 'expected.safetensors')!r})
with torch.no_grad():
    out = model(**_inputs({name!r}, model.config, expected["image"]))
save_file({{f: getattr(out, f).contiguous() for f in {list(fields)!r}}}, {str(tmp_path / 'out.safetensors')!r})
print(json.dumps({{"module": type(model).__module__}}))
"""
    info = run_without_quarf_hf(code, tmp_path)
    assert not info["module"].startswith("quarf_hf"), info
    expected = load_file(str(folder / "expected.safetensors"))
    got = load_file(str(tmp_path / "out.safetensors"))
    for field in fields:
        torch.testing.assert_close(got[field], expected[field], atol=ATOL, rtol=ATOL, msg=f"{name}.{field}")


def test_fixture_was_written_by_the_pre_layout_code():
    """The fixture really is pre-layout: written by commit b08d724, with the flat code files."""
    from safetensors import safe_open

    for name in FOLDERS:
        with safe_open(str(FIXTURES / name / "expected.safetensors"), "pt") as handle:
            assert handle.metadata()["commit"] == "b08d724"
        config = json.loads((FIXTURES / name / "config.json").read_text())
        for target in config["auto_map"].values():
            assert (FIXTURES / name / f"{target.split('.')[0]}.py").is_file(), target
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert total < 300_000, f"tests/fixtures/pre_layout is {total} bytes"
