"""Bad inputs to the corruptions (``degrade``, ``make_gallery``), the datasets (``load_dataset_spec``,
``check_items``) and ``evaluate_model``, each refused in one line naming the argument or file. The rows are
``(id, entry point, call(world, out), exception type, text the message must contain)``; bad_input_world.py
says what every row asserts."""

import pytest
import torch

from bad_input_world import assert_api_refuses

rand = torch.rand


def _degrade(images, name="gaussian_noise", severity=3):
    def call(w, out):
        from quarf_hf.degradations import degrade

        return degrade(images, name, severity)
    return call


def _gallery(key, **kwargs):
    def call(w, out):
        from quarf_hf.degradations.gallery import make_gallery

        return make_gallery(w[key] if isinstance(key, str) and key in w else key, out / "gallery.png", **kwargs)
    return call


def _dataset(spec):
    def call(w, out):
        from quarf_hf.data import load_dataset_spec

        return load_dataset_spec(spec(w) if callable(spec) else spec)
    return call


def _checked(key, num_labels=None, **kwargs):
    def call(w, out):
        from quarf_hf.data import load_dataset_spec
        from quarf_hf.data.checks import check_items

        spec = {"type": "folder", "path": str(w[key]), "split": "train"}
        if num_labels is not None:
            spec["num_labels"] = num_labels
        return check_items(load_dataset_spec(spec), "dataset", **kwargs)
    return call


def _evaluate(**kwargs):
    def call(w, out):
        from quarf_hf.data import QuarfShapes
        from quarf_hf.evaluation import evaluate_model

        dataset = kwargs.pop("dataset", None)
        dataset = QuarfShapes(num_samples=2, size=32, num_classes=3) if dataset is None else dataset
        return evaluate_model(w["seg"], dataset, progress=False, **kwargs)
    return call


API = [
    # --- degradations
    ("degrade name", "degrade", _degrade(rand(1, 3, 16, 16), "sunburn"), ValueError, "name"),
    ("degrade severity 0", "degrade", _degrade(rand(1, 3, 16, 16), severity=0), ValueError, "severity"),
    ("degrade severity 6", "degrade", _degrade(rand(1, 3, 16, 16), severity=6), ValueError, "severity"),
    ("degrade 3-D", "degrade", _degrade(rand(3, 16, 16)), ValueError, "images"),
    ("degrade NaN", "degrade", _degrade(torch.full((1, 3, 16, 16), float("nan"))), ValueError, "images"),
    ("gallery missing image", "make_gallery", _gallery("nope.png"), FileNotFoundError, "nope.png"),
    ("gallery size 2", "make_gallery", _gallery("good", size=2), ValueError, "size"),
    ("gallery names empty", "make_gallery", _gallery("good", names=[]), ValueError, "names"),
    # --- data
    ("dataset missing folder", "datasets", _dataset({"type": "folder", "path": "/nonexistent/ds"}), FileNotFoundError, "path"),
    ("dataset unknown type", "datasets", _dataset({"type": "coco"}), ValueError, "type"),
    ("dataset unknown key", "datasets", _dataset({"type": "quarf-shapes", "colour": 1}), ValueError, "colour"),
    ("dataset string", "datasets", _dataset("cityscapes"), ValueError, "spec"),
    ("dataset no masks", "datasets", _dataset(lambda w: {"type": "folder", "path": str(w["ds_nomask"])}), FileNotFoundError, "source"),
    ("dataset unknown layout", "datasets", _dataset(lambda w: {"type": "folder", "path": str(w["ds_unknown"])}), FileNotFoundError, "source"),
    ("dataset split", "datasets", _dataset(lambda w: {"type": "folder", "path": str(w["ds_good"]), "split": "test"}), ValueError, "split"),
    ("dataset size", "datasets", _dataset(lambda w: {"type": "folder", "path": str(w["ds_good"]), "split": "train", "size": 0}), ValueError, "size"),
    ("dataset label_map", "datasets", _dataset(lambda w: {"type": "folder", "path": str(w["ds_good"]), "split": "train", "label_map": {}}), ValueError, "label_map"),
    ("items class id >= num_labels", "check_items", _checked("ds_good", num_labels=2), ValueError, "a.png"),
    ("items truncated image", "check_items", _checked("ds_truncated"), ValueError, "b.png"),
    ("items text png", "check_items", _checked("ds_text"), ValueError, "b.png"),
    ("items mask size", "check_items", _checked("ds_masksize"), ValueError, "b.png"),
    ("items different sizes", "check_items", _checked("ds_truncated", same_size=True, skip_bad=False), ValueError, "b.png"),
    # --- evaluate_model
    ("evaluate corruption", "evaluate_model", _evaluate(corruptions=["sunburn"]), ValueError, "corruptions"),
    ("evaluate severity 0", "evaluate_model", _evaluate(severities=[0]), ValueError, "severities"),
    ("evaluate severity 6", "evaluate_model", _evaluate(severities=[6]), ValueError, "severities"),
    ("evaluate seed", "evaluate_model", _evaluate(seed="a"), ValueError, "seed"),
    ("evaluate batch size", "evaluate_model", _evaluate(batch_size=0), ValueError, "batch_size"),
    ("evaluate empty dataset", "evaluate_model", _evaluate(dataset=[]), ValueError, "dataset"),
    ("evaluate unsized dataset", "evaluate_model", _evaluate(dataset=5), ValueError, "dataset"),
]


@pytest.mark.parametrize("case", API, ids=[row[0] for row in API])
def test_api_refuses(bad_input_world, tmp_path, case):
    assert_api_refuses(bad_input_world, tmp_path, case)
