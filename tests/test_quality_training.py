"""train-quality / evaluate-quality: CONTRIQUE's objective on tiny encoders, resume, the probe,
Hub round trips of a trained encoder, and the quality="folder-or-id" spec everywhere."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

import quarf_hf  # noqa: F401  (registers the Auto classes)
from quarf_hf.cli import main as cli_main
from quarf_hf.data.shapes import QuarfShapes
from quarf_hf.degradations import degrade
from quarf_hf.models.modeling_contrique import ContriqueModel
from quarf_hf.quality_training import QualityTrainConfig, load_quality_config, train_quality
from quarf_hf.quality_training.objective import supervised_contrastive_loss
from quarf_hf.quality_training.probe import logistic_probe_accuracy, spearman
from quarf_hf.training import loop as training_loop
from tiny_models import make_quarf_segformer, make_restoration, segformer_config

REPO = Path(__file__).resolve().parents[1]
TINY_ENCODER = {"embedding_size": 16, "hidden_sizes": [16, 32, 64, 64], "depths": [1, 1, 1, 1], "projection_dim": 32}


def tiny_config(tmp_path, name="run", **overrides) -> dict:
    config = {
        "model": {"config": TINY_ENCODER},
        "data": {"train": {"type": "quarf-shapes", "num_samples": 32, "size": 72, "seed": 0}},
        "image_size": 72,
        "crop_size": 64,
        "corruptions": ["gaussian_noise", "gaussian_blur", "jpeg_compression"],
        "severities": [3, 5],
        "batch_size": 8,
        "max_steps": 40,
        "learning_rate": 0.002,
        "output_dir": str(tmp_path / name),
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 80-step run of a small encoder (about 15 s on one CPU thread), with a probe at the end."""
    tmp_path = tmp_path_factory.mktemp("quality")
    config = QualityTrainConfig.from_dict(tiny_config(
        tmp_path, max_steps=80, probe={"corruptions": ["shot_noise", "defocus_blur"], "image_size": 64,
                         "data": [{"type": "quarf-shapes", "num_samples": 8, "size": 64, "seed": 5}]}))
    summary = train_quality(config)
    return summary, Path(config.output_dir) / "model"


def _fixed_batch_loss(model, temperature=0.1) -> float:
    """CONTRIQUE's loss on one fixed batch of held-out scenes (classes, degradations and crops seeded)."""
    from quarf_hf.quality_training.objective import class_table, contrique_loss, degrade_by_label, draw_labels, two_crops

    images = torch.stack([QuarfShapes(12, size=72, seed=77)[i]["pixel_values"] for i in range(12)])
    table = class_table(["gaussian_noise", "gaussian_blur", "jpeg_compression"], [3, 5], True)
    draws = torch.Generator().manual_seed(1)
    labels = draw_labels(12, len(table), 2, 0, draws)
    degraded = degrade_by_label(images, labels, table, torch.Generator().manual_seed(2))
    view_a, view_b = two_crops(degraded, 64, draws)
    with torch.no_grad():
        return contrique_loss(model.train(), view_a, view_b, labels, temperature).item()


def test_loss_falls_on_a_tiny_run(trained):
    """The objective on a fixed held-out batch: the trained encoder against its own initial weights
    (the run seeds them: set_seed(0) then the model, as the loop does)."""
    from accelerate.utils import set_seed

    summary, folder = trained
    losses = summary["losses"]
    assert summary["steps"] == 80 and len(losses) == 80
    assert sum(losses[-10:]) < 0.9 * sum(losses[:10]), "the training loss, first 10 steps against last 10"
    set_seed(0)
    initial = ContriqueModel(QualityTrainConfig.from_dict(tiny_config(Path("unused"))).contrique_config())
    before, after = _fixed_batch_loss(initial), _fixed_batch_loss(ContriqueModel.from_pretrained(folder))
    # Measured: 9.67 -> 8.57 (a random encoder sits near 9.7; the lowest possible is about 2 log 3 = 2.2).
    assert after < 0.95 * before, f"loss on a fixed batch: {before:.3f} at initialisation, {after:.3f} after 80 steps"


def _crop_similarities(model) -> tuple[float, float]:
    """Cosine similarity of two crops of the same noisy image, and of a crop of it with a crop of the
    same scene blurred (other kind, same content): held-out scenes, not seen in training."""
    images = torch.stack([QuarfShapes(8, size=96, seed=77)[i]["pixel_values"] for i in range(8)])
    generator = torch.Generator().manual_seed(0)
    noisy = degrade(images, "gaussian_noise", 5, generator=generator)
    blurred = degrade(images, "gaussian_blur", 5, generator=generator)
    model.eval()
    with torch.no_grad():
        def features(x, offset):
            return model(pixel_values=x[..., offset:offset + 64, offset:offset + 64]).quality_features
        a, b, c = features(noisy, 0), features(noisy, 32), features(blurred, 32)
    cosine = torch.nn.functional.cosine_similarity
    return cosine(a, b).mean().item(), cosine(a, c).mean().item()


def test_crops_of_one_degraded_image_are_closer_than_other_kinds(trained):
    """After 80 steps, two crops of one noisy image are closer than a crop of the same scene blurred:
    a margin (0.23 measured) that a random encoder of the same architecture does not have."""
    _, folder = trained
    same, other = _crop_similarities(ContriqueModel.from_pretrained(folder))
    assert same - other > 0.1, (same, other)
    torch.manual_seed(0)
    random_same, random_other = _crop_similarities(ContriqueModel(QualityTrainConfig.from_dict(
        tiny_config(Path("unused"))).contrique_config()))
    assert random_same - random_other < 0.01, "the margin comes from training, not from the architecture"


def test_trained_folder_is_hub_ready_with_recipe_probe_and_card(trained):
    from huggingface_hub import ModelCard

    _, folder = trained
    for name in ("model.safetensors", "config.json", "modeling_contrique.py", "configuration_contrique.py",
                 "quality_training.json", "probe.json", "probe.png", "README.md"):
        assert (folder / name).is_file(), name
    recipe = json.loads((folder / "quality_training.json").read_text())
    assert recipe["corruptions"] == ["gaussian_noise", "gaussian_blur", "jpeg_compression"]
    assert recipe["probe_corruptions"] == ["shot_noise", "defocus_blur"]
    probe = json.loads((folder / "probe.json").read_text())
    assert set(probe) == {"setup", "encoder", "brisque"} and probe["brisque"]["feature_dim"] == 36
    assert probe["encoder"]["feature_dim"] == 128 and 0 <= probe["encoder"]["kind_accuracy"] <= 1
    card = ModelCard.load(folder / "README.md")
    assert card.data.pipeline_tag == "image-feature-extraction" and "contrique" in card.data.tags
    assert "| kind accuracy (linear probe) |" in card.text and "![probe](probe.png)" in card.text
    assert Image.open(folder / "probe.png").size[0] > 500


@pytest.mark.parametrize("crash_step", [2, 3])
def test_resume_after_a_crash_ends_with_the_same_weights(tmp_path, monkeypatch, crash_step):
    """Run A: 5 steps uninterrupted. Run B: crashes right after the checkpoint at ``crash_step``
    (with 32 images and batches of 8 an epoch has 4 steps, so step 3 resumes mid-epoch and the run
    crosses an epoch), then --resume finishes it. Weights (and BatchNorm statistics) must be identical."""
    common = {"max_steps": 5, "data": {"train": {"type": "quarf-shapes", "num_samples": 32, "size": 72, "seed": 0}}}
    uninterrupted = QualityTrainConfig.from_dict(tiny_config(tmp_path, name="a", **common))
    train_quality(uninterrupted)
    resumed = QualityTrainConfig.from_dict(tiny_config(tmp_path, name="b", checkpoint_every=crash_step, **common))
    real_save = training_loop.save_checkpoint

    def save_then_crash(accelerator, output_dir, step, keep):
        real_save(accelerator, output_dir, step, keep)
        if step == crash_step:
            raise KeyboardInterrupt("simulated crash right after a checkpoint")

    monkeypatch.setattr(training_loop, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train_quality(resumed)
    assert not (Path(resumed.output_dir) / "model").exists()
    monkeypatch.setattr(training_loop, "save_checkpoint", real_save)
    assert train_quality(resumed, resume=True)["steps"] == 5
    a = load_file(str(Path(uninterrupted.output_dir) / "model" / "model.safetensors"))
    b = load_file(str(Path(resumed.output_dir) / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed weights differ: {different[:5]}"


def test_resume_and_fresh_run_guards(tmp_path):
    config = QualityTrainConfig.from_dict(tiny_config(tmp_path, name="g", max_steps=1, checkpoint_every=1))
    with pytest.raises(FileNotFoundError, match="--resume: no checkpoint"):
        train_quality(config, resume=True)
    train_quality(config)
    with pytest.raises(ValueError, match="output_dir: .* already holds an earlier run's checkpoints"):
        train_quality(config)


def test_supervised_contrastive_loss_with_one_positive_is_nt_xent():
    """Independent reference: SimCLR's NT-Xent written as cross-entropy over the other 2N-1 samples,
    the positive being the other view of the same image."""
    torch.manual_seed(0)
    n, temperature = 6, 0.2
    z = torch.randn(2 * n, 5)
    labels = torch.arange(n).repeat(2)
    ours = supervised_contrastive_loss(z, labels, temperature)
    normed = torch.nn.functional.normalize(z, dim=1)
    logits = normed @ normed.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    torch.testing.assert_close(ours, torch.nn.functional.cross_entropy(logits, targets))
    # Several positives: the loss averages the log-probabilities of all of them (by hand for anchor 0).
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4])
    log_prob = logits[0] - torch.logsumexp(logits[0][1:], dim=0)
    expected_anchor0 = -(log_prob[1] + log_prob[2]) / 2
    per_anchor = []
    for i in range(2 * n):
        row = logits[i] - torch.logsumexp(torch.cat([logits[i][:i], logits[i][i + 1:]]), dim=0)
        positives = [j for j in range(2 * n) if j != i and labels[j] == labels[i]]
        per_anchor.append(-row[positives].mean())
    torch.testing.assert_close(per_anchor[0], expected_anchor0)
    torch.testing.assert_close(supervised_contrastive_loss(z, labels, temperature), torch.stack(per_anchor).mean())


def test_authentic_part_trains_each_image_as_its_own_class(tmp_path):
    """authentic_fraction 1: no degradation, two crops of one image are the only positives (still trains)."""
    config = QualityTrainConfig.from_dict(tiny_config(tmp_path, name="auth", max_steps=3, authentic_fraction=1.0))
    summary = train_quality(config)
    assert summary["steps"] == 3 and all(torch.isfinite(torch.tensor(summary["losses"])))


def test_spearman_and_logistic_probe_match_references():
    from scipy.stats import spearmanr

    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 6, (40,), generator=generator).double()  # ties, as severities have
    y = x + torch.randn(40, generator=generator, dtype=torch.float64)
    assert spearman(y, x) == pytest.approx(spearmanr(y.numpy(), x.numpy()).statistic, abs=1e-12)
    features = torch.randn(60, 4, generator=generator)
    labels = (features[:, 0] > 0).long()  # separable along one feature: a linear probe gets every test sample
    assert logistic_probe_accuracy(features[:40], labels[:40], features[40:], labels[40:]) == 1.0
    assert logistic_probe_accuracy(features[:40], torch.randint(0, 2, (40,), generator=generator),
                                   features[40:], labels[40:]) < 0.9


def test_evaluate_quality_command(trained, tmp_path, capsys):
    """Held-out kinds default to those the recipe kept for the probe; table, JSON and PNG are written."""
    _, folder = trained
    out = tmp_path / "probe"
    assert cli_main(["evaluate-quality", str(folder), "--image-size", "64", "--out", str(out),
                     "--data", "{type: quarf-shapes, num_samples: 8, size: 64, seed: 9}"]) == 0
    printed = capsys.readouterr().out
    assert "| kind accuracy (linear probe) |" in printed and "shot_noise" in printed and "defocus_blur" in printed
    results = json.loads((out / "probe.json").read_text())
    assert results["setup"]["corruptions"] == ["shot_noise", "defocus_blur"]
    assert results["setup"]["samples"] == 8 * (1 + 2 * 5)
    assert (out / "probe.png").stat().st_size > 10_000


def test_evaluate_quality_errors(trained, tmp_path, capsys):
    _, folder = trained
    assert cli_main(["evaluate-quality", str(tmp_path / "missing")]) == 2
    assert "MODEL: could not load a ContriqueModel" in capsys.readouterr().err
    assert cli_main(["evaluate-quality", str(folder), "--corruptions", "gaussian_noise", "nope"]) == 2
    assert "--corruptions: unknown 'nope'" in capsys.readouterr().err
    assert cli_main(["evaluate-quality", str(folder), "--image-size", "32"]) == 2
    assert "image_size: expected an integer of at least 64" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    ({"crop_size": 80}, r"crop_size: expected at most image_size \(72\), found 80"),
    ({"corruptions": ["gaussian_noise", "fogg"]}, r"corruptions: expected 'all' or a list of names"),
    ({"severities": [0, 3]}, r"severities\[0\]: expected an integer from 1 to 5, found 0"),
    ({"batch_size": 7}, r"images_per_class: the 7 synthetic images of a batch of 7 must split into groups of 2"),
    ({"batch_size": 16, "corruptions": ["gaussian_noise"], "severities": [5]}, r"batch_size: 8 classes per batch"),
    ({"authentic_fraction": 2}, r"authentic_fraction: expected a number >= 0 and <= 1, found 2"),
    ({"model": {"config": {"hidden_sizes": [8, 16], "depths": [1]}}}, r"model.config: depths: expected one depth"),
    ({"model": {"confg": {}}}, r"model: unknown keys \['confg'\]"),
    ({"learning_rate": "fast"}, r"learning_rate: expected a finite number, found 'fast'"),
    ({"probe": {"corruptions": ["gaussian_noise"]}}, r"probe.corruptions: \['gaussian_noise'\] are also trained on"),
    ({"temprature": 0.1}, r"config: unknown keys \['temprature'\]"),
    ({"image_size": 48, "crop_size": 48}, r"crop_size: expected at least the model's min_image_size 64, found 48"),
])
def test_bad_configs_name_the_key(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        QualityTrainConfig.from_dict(tiny_config(tmp_path, **change))


def test_too_small_images_are_clear_errors_before_training(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (100, 90)).save(photos / "big.png")
    Image.new("RGB", (60, 50)).save(photos / "small.jpg")
    config = QualityTrainConfig.from_dict(tiny_config(tmp_path, name="small", data={"train": [
        {"type": "quarf-shapes", "num_samples": 8, "size": 72}, {"type": "images", "path": str(photos)}]}))
    with pytest.raises(ValueError, match=r"image_size: .*small.jpg is 50x60 pixels, smaller than the 72x72 tiles"):
        train_quality(config)
    config = QualityTrainConfig.from_dict(tiny_config(tmp_path, name="scenes", data={"train": {
        "type": "quarf-shapes", "num_samples": 8, "size": 64}}))
    with pytest.raises(ValueError, match=r"image_size: .*QuarfShapes.* is 64x64 pixels, smaller than the 72x72"):
        train_quality(config)
    assert not (tmp_path / "small").exists() and not (tmp_path / "scenes").exists(), "nothing written"


def test_photo_folder_sources(tmp_path):
    """A folder of photos (rescaled, repeated into several tiles); an optional absent folder is skipped."""
    from quarf_hf.quality_training.data import QualityImages

    photos = tmp_path / "photos"
    photos.mkdir()
    for name, size in (("a.png", (300, 200)), ("b.jpg", (150, 400))):
        Image.new("RGB", size, (10, 200, 30)).save(photos / name)
    images = QualityImages([{"type": "images", "path": str(photos), "resize_short_side": 100, "repeats": 3}], 96)
    assert len(images) == 6 and images.groups == [0, 0, 0, 1, 1, 1]
    tile = images[4]["pixel_values"]
    assert tile.shape == (3, 96, 96) and torch.equal(tile, images[4]["pixel_values"]), "an item never changes"
    with pytest.warns(UserWarning, match="optional photo folder .* not found, skipped"):
        mixed = QualityImages([{"type": "images", "path": str(tmp_path / "none"), "optional": True}, "quarf-shapes"], 64)
    assert len(mixed) == 256
    with pytest.raises(FileNotFoundError, match="path: photo folder not found"):
        QualityImages([{"type": "images", "path": str(tmp_path / "none")}], 64)
    with pytest.raises(FileNotFoundError, match=r"files: \['c.png'\] not found"):
        QualityImages([{"type": "images", "path": str(photos), "files": ["c.png"]}], 64)


def test_published_recipe_loads_and_runs_without_the_shared_photos(tmp_path, monkeypatch):
    """quarf-quality-small's recipe is a valid config; from a folder without ../shared its photo
    sources are skipped, and two steps of it run."""
    monkeypatch.chdir(tmp_path)
    config = load_quality_config("quarf-quality-small", max_steps=2, output_dir=str(tmp_path / "recipe"))
    assert config.name == "quarf-quality-small" and config.contrique_config().feature_dim == 512
    assert not set(config.probe["corruptions"]) & set(config.corruption_names)
    config.probe = None
    config.data["train"][0]["num_samples"] = 32
    with pytest.warns(UserWarning, match="optional photo folder"):
        summary = train_quality(config)
    assert summary["steps"] == 2 and ContriqueModel.from_pretrained(tmp_path / "recipe" / "model").feature_dim == 512


def test_build_of_the_trained_variant(tmp_path, capsys):
    """quarf-hf build quarf-quality-small: without --base a clear error (it is trained, not built);
    with the model folder of a run it is published with the variant's name in the card."""
    from quarf_hf.hub.build import build, load_hub_config

    assert cli_main(["build", "quarf-quality-small", "--out", str(tmp_path / "out")]) == 2
    assert "--base: quarf-quality-small is trained" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    data = load_hub_config("quarf-quality-small")
    config = QualityTrainConfig.from_dict(tiny_config(tmp_path, name="run", max_steps=1, model={"config": data["contrique"]},
                                                      image_size=72, crop_size=64))
    train_quality(config)
    out = build("quarf-quality-small", tmp_path / "out", base=str(tmp_path / "run" / "model"))
    text = (out / "README.md").read_text()
    assert text.count("<your-org>/quarf-quality-small") >= 2 and "# quarf-quality-small" in text
    assert ContriqueModel.from_pretrained(out).feature_dim == 512
    with pytest.raises(ValueError, match=r"--base: its hidden_sizes \[16, 32, 64, 64\] do not match"):
        tiny = QualityTrainConfig.from_dict(tiny_config(tmp_path, name="tiny", max_steps=1))
        train_quality(tiny)
        build("quarf-quality-small", tmp_path / "out2", base=str(tmp_path / "tiny" / "model"))


def test_quality_folder_plugs_in_wherever_a_quality_spec_is_taken(trained, tmp_path):
    """quality="<folder>" in QuarfSegformerConfig, QuarfRestorationConfig and a training config gives
    the trained encoder's features; from_pretrained of the saved QuARF model never reads the folder."""
    import shutil

    from quarf_hf import QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation
    from quarf_hf.training.models import build_model

    _, folder = trained
    source = tmp_path / "encoder"
    shutil.copytree(folder, source)
    encoder = ContriqueModel.from_pretrained(source).eval()
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = encoder(pixels).quality_features
    segformer = make_quarf_segformer(quality=str(source))
    assert segformer.config.quality["source"] == str(source) and segformer.config.quarf["quality_dim"] == 128
    restoration = make_restoration(quality=str(source), layers_per_block=1, mid_block_attention=False)
    trainable = build_model({"type": "quarf_segformer", "quality": str(source), "config": segformer_config()}, num_labels=3)
    with torch.no_grad():
        for extractor in (segformer.segformer.quality_extractor, restoration.quality_extractor,
                          trainable.segformer.quality_extractor):
            torch.testing.assert_close(extractor(pixels), expected)
    segformer.save_pretrained(tmp_path / "seg")
    shutil.rmtree(source)
    reloaded = QuarfSegformerForSemanticSegmentation.from_pretrained(tmp_path / "seg").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.segformer.quality_extractor(pixels), expected)
    with pytest.raises(ValueError, match="quality: no such folder"):
        QuarfSegformerConfig(quality=str(source))


LOAD_ENCODER = """
import json, torch
from transformers import AutoModel
try:
    import quarf_hf
    kwargs = {}
except ImportError:
    kwargs = {"trust_remote_code": True}
model = AutoModel.from_pretrained("quarf-test/tiny-quality-encoder", **kwargs).eval()
with torch.no_grad():
    features = model(torch.load("images.pt")).quality_features
torch.save(features, "features.pt")
info = {"module": type(model).__module__}
if kwargs == {}:  # the Hub id as a quality spec, as a user of the package writes it
    from quarf_hf import QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation
    seg = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(
        hidden_sizes=[8, 16, 16, 16], depths=[1] * 4, num_attention_heads=[1] * 4, decoder_hidden_size=16,
        num_labels=3, quality="quarf-test/tiny-quality-encoder")).eval()
    with torch.no_grad():
        info["spec_matches"] = bool(torch.allclose(seg.segformer.quality_extractor(torch.load("images.pt")), features))
print(json.dumps(info))
"""


@pytest.mark.parametrize("block_quarf_hf", [False, True], ids=["with-quarf_hf", "remote-code-only"])
def test_trained_encoder_by_repo_id(local_hub, trained, tmp_path, block_quarf_hf):
    """The train-quality folder, served by a real Hub server, loads by repo id with and without quarf_hf
    and gives the features of the folder loaded locally."""
    _, folder = trained
    local_hub.publish(folder, "quarf-test/tiny-quality-encoder")
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    torch.save(images, tmp_path / "images.pt")
    info = local_hub.run(LOAD_ENCODER, block_quarf_hf=block_quarf_hf, cwd=tmp_path)
    assert info["module"].startswith("quarf_hf") is (not block_quarf_hf)
    if not block_quarf_hf:
        assert info["spec_matches"] is True
    with torch.no_grad():
        expected = ContriqueModel.from_pretrained(folder).eval()(images).quality_features
    torch.testing.assert_close(torch.load(tmp_path / "features.pt"), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_accelerate_launch_runs_the_module(tmp_path):
    """The documented entry point: ``accelerate launch -m quarf_hf train-quality CONFIG`` (one CPU process)."""
    data = tiny_config(tmp_path, name="launched", max_steps=2)
    config_path = tmp_path / "launched.yaml"
    config_path.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), ACCELERATE_USE_CPU="true")
    result = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
                             "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                             "-m", "quarf_hf", "train-quality", str(config_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert '"steps": 2' in result.stdout
    assert (Path(data["output_dir"]) / "model" / "model.safetensors").is_file()


def test_recipe_holds_out_the_demos_held_out_kinds():
    """The published encoder must not have seen the corruptions the demo evaluates as held out."""
    from quarf_hf.training import load_train_config

    HELD_OUT = load_train_config(REPO / "configs" / "quarf.yaml").evaluation  # the demo's held-out kinds
    config = load_quality_config("quarf-quality-small")
    assert sorted(config.probe["corruptions"]) == sorted(HELD_OUT["corruptions"])
    assert not set(HELD_OUT["corruptions"]) & set(config.corruption_names)


def test_docs_quality_config_is_valid(tmp_path):
    """docs/training.md's example config (a YAML block, not run by test_readme) is a valid QualityTrainConfig."""
    import re

    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "training.md").read_text(), flags=re.S)
    example = [b for b in blocks if "authentic_fraction" in b]
    assert len(example) == 1
    config = QualityTrainConfig.from_dict(yaml.safe_load(example[0]))
    assert config.num_classes == 4 * 5 + 1 and config.contrique_config().feature_dim == 512


def test_the_shared_loop_accumulates_and_resumes_past_a_damaged_checkpoint(tmp_path, capsys, monkeypatch):
    """train-quality runs in train's loop: gradient accumulation (2 batches a step), a killed run's
    staging folder removed, and --resume falls back past a truncated newest checkpoint."""
    from quarf_hf.quality_training.task import QualityEncoderTask

    batches = []
    real_loss = QualityEncoderTask.loss
    monkeypatch.setattr(QualityEncoderTask, "loss", lambda self, run, batch, position: (
        batches.append(position), real_loss(self, run, batch, position))[1])
    data = {"train": {"type": "quarf-shapes", "num_samples": 16, "size": 72, "seed": 0}}
    config = QualityTrainConfig.from_dict(tiny_config(tmp_path, name="acc", max_steps=2, data=data, checkpoint_every=1,
                                                      keep_checkpoints=2, gradient_accumulation_steps=2))
    assert train_quality(config)["steps"] == 2
    assert len(batches) == 4  # two batches for each of the two optimiser steps
    out = Path(config.output_dir)
    newest = out / "checkpoints" / "step-00000002" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])
    from quarf_hf.atomic import staging_folder

    saving = staging_folder(out / "checkpoints" / "step-00000003", suffix="saving__")  # a killed checkpoint save
    capsys.readouterr()
    assert train_quality(config, resume=True)["steps"] == 2
    printed = capsys.readouterr().out
    assert "skipping damaged checkpoint" in printed and "resuming from" in printed and "step-00000001" in printed
    assert not saving.exists()
