"""The Space's restoration side without a server: which folders it loads (the demo's
restoration/quarf and restoration/plain models, environment overrides, revisions), the built-in
photos as input, the comparison at one severity (PSNR equal to torchmetrics' on the same tensors)
and the sweep over severities (routing rows summing to 1 per group), the degradation size rule
shared with configs/restoration, bad input answered in one line, and the page's tab order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torchmetrics.functional.image import peak_signal_noise_ratio

from quarf_hf.degradations import degrade
from quarf_hf.evaluation.runner import degradation_seed
from quarf_hf.models.checks import InputError
from quarf_hf.space import inference
from quarf_hf.space.images import load_input, load_photo_input
from quarf_hf.space.models import SpaceModels, load_space_models, prepare, resolve_revisions, resolve_sources
from tiny_models import make_quarf_segformer, save_demo_restoration

ROOT = Path(__file__).resolve().parents[1]
ROLES = ("quarf", "baseline", "restoration", "plain_restoration")


@pytest.fixture
def clean_env(monkeypatch):
    for variable in ("QUARF_MODEL", "BASELINE_MODEL", "RESTORATION_MODEL", "PLAIN_RESTORATION_MODEL", "QUARF_DEMO_DIR",
                     "QUARF_REVISION", "BASELINE_REVISION", "RESTORATION_REVISION", "PLAIN_RESTORATION_REVISION"):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A folder laid out as `quarf-hf demo` writes it: tiny restoration models and a tiny QuARF-SegFormer."""
    folder = tmp_path_factory.mktemp("demo")
    save_demo_restoration(folder)
    torch.manual_seed(0)
    make_quarf_segformer().save_pretrained(folder / "quarf" / "model")
    return folder


@pytest.fixture(scope="module")
def restorers(tmp_path_factory):
    models = save_demo_restoration(tmp_path_factory.mktemp("restorers"))
    return [prepare(role, role, model) for role, model in models.items()]


@pytest.fixture(scope="module")
def photo():
    """A corner of a built-in test photo (small: the models run on two shared cores)."""
    return load_photo_input("chelsea")[..., :64, :96].contiguous()


def test_the_demo_folders_give_the_restoration_pair(clean_env, demo_dir):
    clean_env.setenv("QUARF_DEMO_DIR", str(demo_dir))
    assert resolve_sources() == {"quarf": str(demo_dir / "quarf" / "model"),
                                 "restoration": str(demo_dir / "restoration" / "quarf" / "model"),
                                 "plain_restoration": str(demo_dir / "restoration" / "plain" / "model")}
    models = load_space_models(device="cpu")
    assert models.errors == {}
    assert [m.role for m in models.restorers] == ["restoration", "plain_restoration"]
    assert all(m.task == "restoration" for m in models.restorers) and models.quarf.task == "segmentation"
    assert [rf for _, _, rf in models.restoration.experts] == [3, 5, 9, 17]
    assert models.plain_restoration.experts is None  # conditioning "none": nothing is routed


def test_environment_overrides_and_revisions(clean_env, demo_dir, tmp_path):
    """A restoration model named in the environment replaces the demo's pair (no plain model from
    elsewhere is mixed in); the segmentation pair still comes from the demo; revisions per role."""
    clean_env.setenv("QUARF_DEMO_DIR", str(demo_dir))
    clean_env.setenv("RESTORATION_MODEL", "someone/restorer")
    clean_env.setenv("RESTORATION_REVISION", "0123abc")
    clean_env.setenv("PLAIN_RESTORATION_REVISION", "4567def")
    sources = resolve_sources()
    assert sources == {"quarf": str(demo_dir / "quarf" / "model"), "restoration": "someone/restorer"}
    assert resolve_sources(plain_restoration="other/plain")["plain_restoration"] == "other/plain"
    assert resolve_revisions() == {"restoration": "0123abc", "plain_restoration": "4567def"}
    assert resolve_revisions({"restoration": "fedcba9"})["restoration"] == "fedcba9"

    import quarf_hf.space.models as space_models

    calls = []

    def fake_load_one(role, source, device="cpu", revision=None):
        calls.append((role, source, revision))
        raise OSError(f"{source}: not reachable here")

    clean_env.setattr(space_models, "load_one", fake_load_one)
    clean_env.setenv("QUARF_MODEL", "someone/segmenter")
    models = load_space_models(device="cpu")
    assert ("restoration", "someone/restorer", "0123abc") in calls
    assert models.restoration is None and "not reachable" in models.errors["restoration"]


def test_photos_by_name_only(tmp_path):
    image = load_input(None, "chelsea")
    assert image.shape == (1, 3, 300, 451) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    # an upload wins over the photo
    from PIL import Image

    Image.fromarray(np.full((40, 50, 3), 7, np.uint8)).save(tmp_path / "up.png")
    assert load_input(tmp_path / "up.png", "chelsea").shape == (1, 3, 40, 50)
    for name in ("nope", str(tmp_path / "up.png"), "../../skimage/data/chelsea"):
        with pytest.raises(InputError, match=r"^photo: unknown photo .*; built-in photos: .*chelsea") as error:
            load_input(None, name)
        assert "\n" not in str(error.value)
    with pytest.raises(InputError, match="upload an image or pick a built-in photo"):
        load_input(None, None)


def test_comparison_psnr_equals_torchmetrics(restorers, photo):
    result = inference.compare_restorations(restorers, photo, "gaussian_noise", 3)
    generator = torch.Generator().manual_seed(degradation_seed(0, "gaussian_noise", 3, 0))
    expected = degrade(photo, "gaussian_noise", 3, generator=generator, reference_size=None).clamp(0, 1)
    assert torch.equal(result["degraded"], expected)
    assert result["psnr"]["degraded"] == pytest.approx(
        float(peak_signal_noise_ratio(result["degraded"], photo, data_range=1.0)), abs=1e-4)
    for model in restorers:
        restored = result["restored"][model.role]
        with torch.no_grad():
            assert torch.allclose(restored, model.model(pixel_values=result["degraded"]).reconstruction, atol=1e-6)
        assert result["psnr"][model.role] == pytest.approx(
            float(peak_signal_noise_ratio(restored, photo, data_range=1.0)), abs=1e-4)
        assert result["psnr"][model.role] != pytest.approx(result["psnr"]["degraded"], abs=1e-3)  # not the identity
    routing = result["routing"]
    assert list(routing) == ["restoration"] and routing["restoration"].shape == (4, 4)  # groups x experts
    assert torch.allclose(routing["restoration"].sum(-1), torch.ones(4), atol=1e-5)


def test_sweep_covers_the_severities(restorers, photo):
    sweep = inference.restoration_sweep(restorers, photo, "gaussian_noise")
    assert sweep["severities"] == [0, 1, 2, 3, 4, 5]
    assert set(sweep["psnr"]) == {"degraded", "restoration", "plain_restoration"}
    assert all(len(values) == 6 for values in sweep["psnr"].values())
    degraded = sweep["psnr"]["degraded"]
    assert degraded[0] == 100.0 and all(a > b for a, b in zip(degraded, degraded[1:]))  # noise grows with severity
    routing = sweep["routing"]["restoration"]
    assert routing.shape == (6, 4, 4) and "plain_restoration" not in sweep["routing"]
    assert torch.allclose(routing.sum(-1), torch.ones(6, 4), atol=1e-5)
    one = inference.compare_restorations(restorers, photo, "gaussian_noise", 3)  # the sweep's severity 3 = one request
    assert sweep["psnr"]["restoration"][3] == pytest.approx(one["psnr"]["restoration"], abs=1e-6)
    assert torch.allclose(routing[3], one["routing"]["restoration"], atol=1e-6)


def test_the_size_rule_is_the_restoration_configs():
    """The page degrades as the demo's restoration arms were trained and evaluated: their reference_size."""
    files = sorted((ROOT / "configs" / "restoration").glob("*.yaml"))
    assert len(files) >= 2
    for path in files:
        config = yaml.safe_load(path.read_text())
        assert config["augmentation"]["reference_size"] == inference.REFERENCE_SIZE, path.name
        assert config["evaluation"]["reference_size"] == inference.REFERENCE_SIZE, path.name
    image = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(degradation_seed(0, "pixelate", 2, 0))
    scaled = degrade(image, "pixelate", 2, generator=torch.Generator().manual_seed(1), reference_size=224)
    ours = inference.degraded_image(image, "pixelate", 2)
    assert torch.equal(ours, degrade(image, "pixelate", 2, generator=generator, reference_size=None).clamp(0, 1))
    assert not torch.equal(ours, scaled)


def test_page_logic_shows_the_psnr_and_answers_bad_input_in_one_line(restorers, tmp_path):
    gr = pytest.importorskip("gradio")
    from quarf_hf.space.app import SpaceLogic, _page_errors

    logic = SpaceLogic(SpaceModels(restoration=restorers[0], plain_restoration=restorers[1]))
    clean, degraded, quarf, plain, text, chart, details = logic.restore(None, "defocus_blur", 2, "chelsea")
    assert clean.shape == degraded.shape == quarf.shape == plain.shape == (300, 451, 3)
    for title in ("degraded", "QuARF", "plain"):
        assert f"{details['psnr'][title]:.2f} dB" in text, title
    assert details["image"] == "photo chelsea" and details["reference_size"] is None
    assert set(chart["expert"]) == set(details["models"]["QuARF"]["experts"]) and "routing" not in details["models"]["plain"]

    (tmp_path / "notes.txt").write_text("not an image\n")
    restore = _page_errors(logic.restore)
    for path, photo, message in ((tmp_path / "notes.txt", None, "image: expected an image file"),
                                 (None, "nope", "photo: unknown photo 'nope'")):
        with pytest.raises(gr.Error) as error:
            restore(path, "fog", 2, photo)
        assert str(error.value.message).startswith(message) and "\n" not in error.value.message
        assert "Traceback" not in error.value.message
    # without restoration models: a clear line, not a crash
    with pytest.raises(InputError, match="no restoration model is loaded; get them with `quarf-hf demo"):
        SpaceLogic(SpaceModels()).restore(None, "fog", 2, "chelsea")


def test_tabs_restoration_first_only_when_loaded(restorers, tmp_path):
    pytest.importorskip("gradio")
    from quarf_hf.space.app import build_app, status_markdown

    def tabs(models):
        app = build_app(models, examples_dir=tmp_path / "examples")
        return [c["props"]["label"] for c in app.config["components"] if c.get("type") == "tabitem"]

    with_restoration = SpaceModels(restoration=restorers[0], plain_restoration=restorers[1])
    assert tabs(with_restoration) == ["Restoration", "Segmentation"]
    assert tabs(SpaceModels()) == ["Segmentation"]
    assert "No restoration model is loaded" in status_markdown(SpaceModels())
    assert "quarf-hf demo" in status_markdown(SpaceModels())
    status = status_markdown(with_restoration)
    assert "QuARF restoration: `restoration`" in status and "plain restoration: `plain_restoration`" in status
