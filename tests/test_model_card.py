"""Model cards: every writer (build, restoration build, CONTRIQUE conversion, training export) goes
through quarf_hf/hub/model_card.py. Each card is read back with huggingface_hub's ModelCard.load
(an independent YAML parser of the Hub's card format) and compared with what was written."""

import re
import warnings

import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image

import quarf_hf  # noqa: F401  (registers the Auto classes)
from quarf_hf.hub.build import build, load_hub_config
from quarf_hf.hub.convert_contrique import build_contrique_folder
from quarf_hf.training import TrainConfig
from quarf_hf.training.export import export_model
from quarf_hf.training.models import build_model
from tiny_models import segformer_config


def run_snippet(folder, reference, cwd, monkeypatch) -> dict:
    """Executes the card's ```python block with ``reference`` pointed at ``folder``; returns its names."""
    snippet = re.search(r"```python\n(.*?)```", (folder / "README.md").read_text(), re.S).group(1)
    assert reference in snippet
    monkeypatch.chdir(cwd)
    namespace = {}
    exec(snippet.replace(reference, str(folder)), namespace)
    return namespace


def test_contrique_card_fields_and_snippet(tmp_path, monkeypatch):
    """The conversion's card (a hand-written string before) carries the Hub fields and its snippet runs."""
    out = build_contrique_folder(tmp_path / "contrique", name="contrique-resnet50")
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "image-feature-extraction"
    assert card.data.license == "unknown" and {"contrique", "image-quality-assessment", "quarf"} <= set(card.data.tags)
    assert card.data.base_model is None and card.data.eval_results is None
    Image.new("RGB", (96, 80)).save(tmp_path / "image.png")
    namespace = run_snippet(out, "<your-org>/contrique-resnet50", tmp_path, monkeypatch)
    assert torch.tensor(namespace["features"]).shape == (1, 4096)


def test_restoration_card_fields_and_snippet(tmp_path, monkeypatch):
    """The restoration build's card: Hub fields from the hub config, and the pipeline snippet restores an image."""
    data = load_hub_config("quarf-restoration-small")
    out = build("quarf-restoration-small", tmp_path / "restoration", quality="brisque")
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "image-to-image"
    assert card.data.license == data.get("license", "apache-2.0") and "image-restoration" in card.data.tags
    Image.fromarray((torch.rand(30, 41, 3) * 255).byte().numpy()).save(tmp_path / "degraded.png")
    namespace = run_snippet(out, "<your-org>/quarf-restoration-small", tmp_path, monkeypatch)
    assert namespace["restored"].size == (41, 30)


def test_segformer_build_and_training_export_write_the_same_kind_of_card(tmp_path):
    """A built QuARF-SegFormer and a trained one get the same pipeline tag, tags and usage code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = build("quarf-segformer-b0", tmp_path / "built", quality="brisque")
    config = TrainConfig.from_dict({
        "output_dir": str(tmp_path / "run"),
        "model": {"type": "quarf_segformer", "quality": "brisque", "hub_config": "quarf-segformer-b0"},
        "data": {"train": {"type": "quarf-shapes"}},
    })
    model = build_model(config.model, num_labels=3)
    exported = export_model(model, tmp_path / "exported", config, {"steps": 2, "num_processes": 1, "evaluation": {}})
    cards = [ModelCard.load(folder / "README.md") for folder in (built, exported)]
    for key in ("library_name", "pipeline_tag", "tags"):
        assert getattr(cards[0].data, key) == getattr(cards[1].data, key), key
    usage = [re.search(r"```python\n(.*?)```", card.content, re.S).group(1) for card in cards]
    assert usage[0].replace("<your-org>/quarf-segformer-b0", "X") == usage[1].replace(str(exported), "X")


def test_training_export_card_has_a_model_index_of_the_evaluation(tmp_path):
    """The evaluation results of a run become the card's model-index: every metric of every
    condition, read back through huggingface_hub's EvalResult, equals the number in the results."""
    config = TrainConfig.from_dict({
        "output_dir": str(tmp_path / "run"),
        "model": {"type": "quarf_segformer", "quality": "brisque", "base": None,
                  "config": segformer_config(sr_ratios=[2, 1, 1, 1]),
                  "quarf": {"num_groups": 2, "experts": [[3, 1], [3, 2]], "top_k": 2}},
        "data": {"train": {"type": "quarf-shapes"}, "validation": {"type": "quarf-shapes", "num_samples": 4}},
    })
    model = build_model(config.model, num_labels=3)
    evaluation = {
        "task": "segmentation", "metric": "mIoU", "secondary_metric": "pixel_accuracy", "severities": [2, 4],
        "clean": {"mIoU": 0.61, "pixel_accuracy": 0.9, "per_class_iou": [0.5, 0.6, 0.7], "routing": [0.5, 0.5]},
        "corruptions": {"shot_noise": {"2": {"mIoU": 0.5, "pixel_accuracy": 0.8},
                                       "4": {"mIoU": 0.25, "pixel_accuracy": 0.6}}},
        "mean_corrupted": {"mIoU": 0.375, "pixel_accuracy": 0.7},
    }
    folder = export_model(model, tmp_path / "model", config, {"steps": 5, "num_processes": 1, "evaluation": evaluation})
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "image-segmentation"
    assert card.data.license == "apache-2.0" and "quarf" in card.data.tags and card.data.model_name == "model"
    found = {(result.dataset_name, result.metric_type): result.metric_value for result in card.data.eval_results}
    expected = {
        ("quarf-shapes (clean)", "mean_iou"): 0.61, ("quarf-shapes (clean)", "accuracy"): 0.9,
        ("quarf-shapes (shot_noise, severity 2)", "mean_iou"): 0.5,
        ("quarf-shapes (shot_noise, severity 2)", "accuracy"): 0.8,
        ("quarf-shapes (shot_noise, severity 4)", "mean_iou"): 0.25,
        ("quarf-shapes (shot_noise, severity 4)", "accuracy"): 0.6,
        ("quarf-shapes (mean over corruptions)", "mean_iou"): 0.375,
        ("quarf-shapes (mean over corruptions)", "accuracy"): 0.7,
    }
    assert found == pytest.approx(expected)
    assert all(result.task_type == "image-segmentation" and result.dataset_split == "validation"
               for result in card.data.eval_results)
    assert "## Evaluation" in card.content and "| shot_noise |" in card.content
