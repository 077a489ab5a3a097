"""Folders saved by earlier code still load and give the outputs they gave then.

Two fixture sets, each written by the code of its commit and holding ``expected.safetensors`` (the inputs
and the outputs that code recorded after reloading each folder):

- tests/fixtures/pre_layout/ (commit b08d724, the flat ``quarf_hf/modeling_*.py`` before the layout change
  of issue 10; tests/fixtures/make_pre_layout_folders.py): QuARF-SegFormer, QuARF restoration, CONTRIQUE;
- tests/fixtures/v0_1/ (quarf-hf 0.1.0, commit ec2d684, the ``quarf_hf/models/`` layout before the refactor
  of issue 20; tests/fixtures/make_v0_1_folders.py): the same three, a QuARF block and a QuARF adapter.

Each test compares today's outputs with those: through today's package (the Auto classes it registers, the
public classes and ``insert_quarf``), and in a Python where quarf_hf cannot be imported, through the
folder's own copied code (``trust_remote_code=True``). Only public names are used, so that the tests hold
across internal renames.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForSemanticSegmentation

from remote_code import run_without_quarf_hf

import quarf_hf
from quarf_hf import insert_quarf

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v0_1"
COMMIT = "ec2d684"
PRE_LAYOUT = Path(__file__).resolve().parent / "fixtures" / "pre_layout"
PRE_LAYOUT_COMMIT = "b08d724"
ATOL = 1e-5

# folder -> (Auto class, name of today's public class, output fields recorded)
FOLDERS = {
    "quarf_segformer": (AutoModelForSemanticSegmentation, "QuarfSegformerForSemanticSegmentation",
                        ("logits", "routing_weights", "quality_features")),
    "quarf_restoration": (AutoModel, "QuarfRestorationModel", ("reconstruction", "routing_weights", "quality_features")),
    "quarf_block": (AutoModel, "QuarfBlockModel", ("last_hidden_state", "routing_weights")),
    "contrique": (AutoModel, "ContriqueModel", ("quality_features", "projections")),
}
ADAPTER = FIXTURES / "quarf_adapter"
# (fixture set, folder): every 0.1.0 folder, and the three models that existed before the layout change
SAVED = {"v0_1": FIXTURES, "pre_layout": PRE_LAYOUT}
PRE_LAYOUT_FOLDERS = ["quarf_segformer", "quarf_restoration", "contrique"]
CASES = [("v0_1", name) for name in FOLDERS] + [("pre_layout", name) for name in PRE_LAYOUT_FOLDERS]


def _inputs(name: str, config, expected: dict) -> dict:
    """What make_v0_1_folders.py and make_pre_layout_folders.py fed each model (the same float32 arithmetic)."""
    if name == "quarf_block":
        return {"hidden_states": expected["hidden_states"], "quality_features": expected["quality_features"]}
    pixels = expected["image"].float() / 255
    if name == "quarf_segformer":
        mean = torch.tensor(config.image_mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(config.image_std, dtype=torch.float32).view(1, -1, 1, 1)
        return {"pixel_values": (pixels - mean) / std}
    if name == "contrique":
        return {"pixel_values": pixels, "return_projections": True}
    return {"pixel_values": pixels}


def base_network() -> torch.nn.Sequential:
    """The adapter's base network, as make_v0_1_folders.py defines it (weights: base.safetensors)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 3, 1),
    )


def _base(folder) -> torch.nn.Sequential:
    base = base_network().eval()
    base.load_state_dict(load_file(str(folder / "base.safetensors")))
    return base


def _adapter_pixels(expected: dict) -> torch.Tensor:
    """The adapter's base network takes pixels in [-1, 1] (the adapter's pixel_mean = pixel_std = 0.5)."""
    return (expected["image"].float() / 255 - 0.5) / 0.5


def _assert_outputs(got, expected: dict, fields, name: str) -> None:
    for field in fields:
        value = got[field] if isinstance(got, dict) else getattr(got, field)
        torch.testing.assert_close(value, expected[field], atol=ATOL, rtol=ATOL, msg=lambda m: f"{name}.{field}: {m}")


@pytest.mark.parametrize("saved, name", CASES)
def test_saved_folder_loads_with_todays_package(saved, name):
    """The Auto class (and the public class itself) gives today's class, every weight loaded (no
    missing or unexpected key), and the outputs recorded by the code that saved the folder."""
    folder = SAVED[saved] / name
    auto_class, class_name, fields = FOLDERS[name]
    model_class = getattr(quarf_hf, class_name)
    expected = load_file(str(folder / "expected.safetensors"))
    model, info = auto_class.from_pretrained(folder, output_loading_info=True)
    assert type(model) is model_class
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    for candidate in (model.eval(), model_class.from_pretrained(folder).eval()):
        with torch.no_grad():
            out = candidate(**_inputs(name, candidate.config, expected))
        _assert_outputs(out, expected, fields, name)


@pytest.mark.parametrize("saved, name", CASES)
def test_saved_folder_loads_with_its_own_code(saved, name, tmp_path):
    """trust_remote_code=True where quarf_hf cannot be imported: the folder's own copied code (of the
    commit that saved it) runs and gives the recorded outputs."""
    folder = SAVED[saved] / name
    auto_class, _, fields = FOLDERS[name]
    code = f"""
import json, torch
from safetensors.torch import load_file, save_file
from transformers import {auto_class.__name__}
{inspect.getsource(_inputs)}
model = {auto_class.__name__}.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
expected = load_file({str(folder / 'expected.safetensors')!r})
with torch.no_grad():
    out = model(**_inputs({name!r}, model.config, expected))
save_file({{f: getattr(out, f).contiguous() for f in {list(fields)!r}}}, {str(tmp_path / 'out.safetensors')!r})
print(json.dumps({{"module": type(model).__module__, "class": type(model).__name__}}))
"""
    info = run_without_quarf_hf(code, tmp_path)
    assert not info["module"].startswith("quarf_hf"), info
    assert info["class"] == FOLDERS[name][1], info
    _assert_outputs(load_file(str(tmp_path / "out.safetensors")), load_file(str(folder / "expected.safetensors")),
                    fields, name)


@pytest.mark.parametrize("how", ["insert_quarf", "AutoModel", "QuarfAdapter"])
def test_v0_1_adapter_attaches_with_todays_package(how):
    """The saved adapter, attached to its rebuilt base network (insert_quarf(adapter=folder), or
    loaded with AutoModel / QuarfAdapter.from_pretrained and attach()), gives the recorded network
    output and quality features; unload() gives back the base network's own output."""
    expected = load_file(str(ADAPTER / "expected.safetensors"))
    pixels = _adapter_pixels(expected)
    base = _base(ADAPTER)
    with torch.no_grad():
        torch.testing.assert_close(base(pixels), expected["base_output"], atol=ATOL, rtol=ATOL)
    if how == "insert_quarf":
        adapter = insert_quarf(base, adapter=str(ADAPTER))
    else:
        loader = AutoModel if how == "AutoModel" else quarf_hf.QuarfAdapter
        adapter, info = loader.from_pretrained(ADAPTER, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        adapter = adapter.attach(base)
    assert type(adapter) is quarf_hf.QuarfAdapter
    adapter.eval()
    with torch.no_grad():
        output = base(pixels)
        quality = adapter(pixel_values=pixels).quality_features
    _assert_outputs({"output": output, "quality_features": quality}, expected, ("output", "quality_features"), how)
    plain = adapter.unload()
    assert plain is base
    with torch.no_grad():
        torch.testing.assert_close(plain(pixels), expected["base_output"], atol=ATOL, rtol=ATOL)


def test_v0_1_adapter_attaches_with_its_own_code(tmp_path):
    """AutoModel.from_pretrained(folder, trust_remote_code=True).attach(base) where quarf_hf cannot be
    imported (what the adapter's model card tells a user) gives the recorded outputs."""
    code = f"""
import json, torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel
{inspect.getsource(base_network)}
{inspect.getsource(_adapter_pixels)}
base = base_network().eval()
base.load_state_dict(load_file({str(ADAPTER / 'base.safetensors')!r}))
expected = load_file({str(ADAPTER / 'expected.safetensors')!r})
pixels = _adapter_pixels(expected)
adapter = AutoModel.from_pretrained({str(ADAPTER)!r}, trust_remote_code=True).eval().attach(base)
with torch.no_grad():
    out = {{"output": base(pixels), "quality_features": adapter(pixel_values=pixels).quality_features}}
    adapter.detach()  # 0.1.0's name for unload()
    out["base_output"] = base(pixels)
save_file({{k: v.contiguous() for k, v in out.items()}}, {str(tmp_path / 'out.safetensors')!r})
print(json.dumps({{"module": type(adapter).__module__, "class": type(adapter).__name__}}))
"""
    info = run_without_quarf_hf(code, tmp_path)
    assert not info["module"].startswith("quarf_hf") and info["class"] == "QuarfAdapter", info
    _assert_outputs(load_file(str(tmp_path / "out.safetensors")), load_file(str(ADAPTER / "expected.safetensors")),
                    ("output", "quality_features", "base_output"), "quarf_adapter")


def test_v0_1_fixture_was_written_by_commit_ec2d684():
    """The fixture really is 0.1.0's: every recorded output stamped with commit ec2d684, every
    auto_map file present in its folder, the QuARF blocks not the identity, and the folder small."""
    made_with = json.loads((FIXTURES / "made_with.json").read_text())
    assert made_with["commit"] == COMMIT
    names = [*FOLDERS, ADAPTER.name]
    assert sorted(made_with["folders"]) == sorted(names)
    for name in names:
        with safe_open(str(FIXTURES / name / "expected.safetensors"), "pt") as handle:
            assert handle.metadata()["commit"] == COMMIT
        config = json.loads((FIXTURES / name / "config.json").read_text())
        assert config["auto_map"], name
        for target in config["auto_map"].values():
            assert (FIXTURES / name / f"{target.split('.')[0]}.py").is_file(), target
    block = load_file(str(FIXTURES / "quarf_block" / "expected.safetensors"))
    assert (block["last_hidden_state"] - block["hidden_states"]).abs().max() > 0.01
    adapter = load_file(str(ADAPTER / "expected.safetensors"))
    assert (adapter["output"] - adapter["base_output"]).abs().max() > 0.01
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert total < 800_000, f"tests/fixtures/v0_1 is {total} bytes"


def test_fixture_was_written_by_the_pre_layout_code():
    """The fixture really is pre-layout: written by commit b08d724, with the flat code files."""
    for name in PRE_LAYOUT_FOLDERS:
        with safe_open(str(PRE_LAYOUT / name / "expected.safetensors"), "pt") as handle:
            assert handle.metadata()["commit"] == PRE_LAYOUT_COMMIT
        config = json.loads((PRE_LAYOUT / name / "config.json").read_text())
        for target in config["auto_map"].values():
            assert (PRE_LAYOUT / name / f"{target.split('.')[0]}.py").is_file(), target
    total = sum(p.stat().st_size for p in PRE_LAYOUT.rglob("*") if p.is_file())
    assert total < 300_000, f"tests/fixtures/pre_layout is {total} bytes"
