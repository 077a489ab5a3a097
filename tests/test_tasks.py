"""The task registry (quarf_hf/tasks.py): every model type has one task, each task's Auto class loads
its models, the task follows from the model type everywhere, and no other code compares task names."""

import json
import re
from pathlib import Path

import pytest
import torch
from transformers import SegformerConfig

from quarf_hf import QuarfRestorationConfig, QuarfSegformerConfig
from quarf_hf.evaluation.metrics import RestorationMeter, SegmentationMeter
from quarf_hf.models.checks import InputError
from quarf_hf.tasks import DEFAULT_TASK, MODEL_TYPES, RESTORATION, SEGMENTATION, TASKS, get_task, task_of
from quarf_hf.training import TrainConfig
from tiny_models import make_quarf_segformer, make_restoration, make_segformer

ROOT = Path(__file__).resolve().parents[1]
TASK_NAME = r"""['"](?:segmentation|restoration)['"]"""
# `x == "restoration"`, `"restoration" != x`, `x in ("segmentation", ...)`; a loop `for x in (...)` is no comparison.
COMPARISON = re.compile(rf"[!=]=\s*{TASK_NAME}|{TASK_NAME}\s*[!=]=|\bin\s*[(\[{{]\s*{TASK_NAME}")
LOOP = re.compile(r"\bfor\s+[\w, ]+?\s+in\b")
MAX_COMPARISONS = 4


def task_comparisons(package: Path) -> list[str]:
    """``path:line`` of every string comparison of a task name in the package's Python files."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if COMPARISON.search(LOOP.sub("for", line)):
                found.append(f"{path.relative_to(package.parent)}:{number}")
    return found


def test_every_model_type_maps_to_one_task():
    """Each trainable model type is listed by exactly one task, and the types quarf_hf and transformers
    register (their own config classes' model_type, the independent reference) get the task of what
    they predict: class maps or images."""
    listed = [model_type for spec in TASKS.values() for model_type in spec.model_types]
    assert sorted(listed) == sorted(set(listed)) == sorted(MODEL_TYPES)
    assert all(TASKS[name].name == name for name in TASKS)
    assert task_of(SegformerConfig.model_type) is SEGMENTATION
    assert task_of(QuarfSegformerConfig.model_type) is SEGMENTATION
    assert task_of(QuarfRestorationConfig.model_type) is RESTORATION
    # any other type (transformers' semantic-segmentation models) is segmentation, as loading treats it
    for other in ("upernet", "contrique", None, 5, object()):
        assert task_of(other) is DEFAULT_TASK is SEGMENTATION
    with pytest.raises(InputError, match="task: expected one of segmentation, restoration, found 'depth'"):
        get_task("depth")


@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_the_training_config_derives_its_task_from_the_model_type(model_type):
    """``task:`` is not needed; repeated as it is, it is accepted; a disagreeing one is refused in one line."""
    section = {"model": {"type": model_type}, "data": {"train": {"type": "quarf-shapes"}}}
    derived = TrainConfig.from_dict(section).task
    assert derived == MODEL_TYPES[model_type] == task_of(model_type).name
    assert TrainConfig.from_dict({**section, "task": derived}).task == derived
    other = next(name for name in TASKS if name != derived)
    with pytest.raises(InputError, match=rf"model.type: '{model_type}' is a {derived} model, but task is '{other}'"):
        TrainConfig.from_dict({**section, "task": other})


@pytest.mark.parametrize("make, expected", [(make_quarf_segformer, SEGMENTATION), (make_segformer, SEGMENTATION),
                                            (make_restoration, RESTORATION)],
                         ids=["quarf_segformer", "segformer", "quarf_restoration"])
def test_the_auto_class_loads_each_tasks_tiny_model(tmp_path, make, expected):
    """A saved tiny model of each task comes back, through its task's Auto class, as the class that
    was saved with the same weights (the same output); task_of gives one answer for the model, its
    config, its config.json and its type; the output field and the meter are the task's."""
    torch.manual_seed(0)
    model = make()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert task_of(model) is task_of(model.config) is task_of(saved) is task_of(model.config.model_type) is expected
    loaded = expected.load(tmp_path).eval()
    assert type(loaded) is type(model)
    pixels = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        output = getattr(loaded(pixel_values=pixels), expected.output)
        reference = getattr(model(pixel_values=pixels), expected.output)
    torch.testing.assert_close(output, reference)
    if expected.classes:
        assert output.shape[1] == model.config.num_labels
    else:
        assert output.shape == pixels.shape
    meter = expected.new_meter(3, 255)
    assert isinstance(meter, SegmentationMeter if expected.classes else RestorationMeter)


def test_quarf_hf_compares_task_names_at_most_four_times():
    """Per-task behaviour reads the registry; the grep that counted 23 comparisons before the registry
    finds at most four (and sees a comparison when there is one)."""
    assert COMPARISON.search('if task == "restoration":') and COMPARISON.search("x in ('segmentation', 'other')")
    assert not COMPARISON.search(LOOP.sub("for", 'for role in ("restoration", "plain_restoration"):'))
    found = task_comparisons(ROOT / "quarf_hf")
    assert len(found) <= MAX_COMPARISONS, found


def test_architecture_says_where_tasks_live():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    assert re.search(r"^  tasks\.py +THE task registry", text, re.MULTILINE)
    assert "- **A task**" in text and "`TaskSpec` in `tasks.py`" in text
