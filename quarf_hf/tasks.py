"""The task registry: what "segmentation" and "restoration" mean to every part of the package.

Each :class:`TaskSpec` in :data:`TASKS` says, once, what the rest of the package asks of a task:
which model types it trains, which transformers Auto class loads its models, what a dataset item
holds, what the model outputs, which meter scores it and under which metric names, and whether
the degraded input is scored too (the *identity* row). Code that behaves differently per task
reads these fields; it never compares task names.

A model's task follows from its ``model_type`` (:func:`task_of`): QuARF restoration is
restoration; every other type (SegFormer, QuARF-SegFormer, any transformers semantic-segmentation
model) is segmentation. A task is never stored beside a model type that decides it.

Adding a task: one :class:`TaskSpec` here (with a meter in :mod:`quarf_hf.evaluation.metrics`),
its model types in ``model_types``, and a ``Task`` for the training loop
(:mod:`quarf_hf.training.segmentation`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .models.checks import check_choice


@dataclass(frozen=True)
class TaskSpec:
    """What one task is, for training, evaluation, prediction and the study.

    Args:
        name (`str`): the task's name in configs, results and on the command line.
        model_types (`tuple[str, ...]`): the model types ``quarf-hf train`` builds for it.
        auto_class (`str`): the transformers Auto class that loads its saved models.
        classes (`bool`): whether the model predicts a class per pixel (labels are ``(H, W)`` class
            ids, the model has ``num_labels``) rather than an image (labels are the clean image).
        output (`str`): the ``ModelOutput`` field holding the prediction.
        source_key (`str`): the item key of the clean image that evaluation degrades (a restoration
            item's ``pixel_values`` are already degraded; its ``labels`` are the clean image).
        label_dims (`int`): the dimensions of an item's ``labels``.
        labels (`str`): those labels in words, for messages.
        raw_pixels (`bool`): whether the model takes ``pixel_values`` in [0, 1] as they are (no
            mean/std normalisation).
        meter (`str`): the meter's class in :mod:`quarf_hf.evaluation.metrics`.
        metric (`str`), secondary_metric (`str`): the meter's main and second number.
        unit (`str`): the main metric's unit in reports.
        identity_row (`bool`): whether evaluation also scores the degraded input itself (what doing
            nothing scores, the floor a restorer must beat).
    """

    name: str
    model_types: tuple[str, ...]
    auto_class: str
    classes: bool
    output: str
    source_key: str
    label_dims: int
    labels: str
    raw_pixels: bool
    meter: str
    metric: str
    secondary_metric: str
    unit: str
    identity_row: bool

    def new_meter(self, num_labels: int = 0, ignore_index: int | None = None):
        """An empty meter of this task (``num_labels`` and ``ignore_index`` for class tasks)."""
        from .evaluation import metrics

        meter = getattr(metrics, self.meter)
        return meter(num_labels, ignore_index) if self.classes else meter()

    def load(self, source, **kwargs):
        """``auto_class.from_pretrained(source, **kwargs)``: a saved model of this task."""
        import transformers  # importing quarf_hf (this module's package) registered its classes with them

        return getattr(transformers, self.auto_class).from_pretrained(source, **kwargs)


SEGMENTATION = TaskSpec(
    name="segmentation", model_types=("segformer", "quarf_segformer"), auto_class="AutoModelForSemanticSegmentation",
    classes=True, output="logits", source_key="pixel_values", label_dims=2, labels="(H, W) label maps",
    raw_pixels=False, meter="SegmentationMeter", metric="mIoU", secondary_metric="pixel_accuracy", unit="mIoU",
    identity_row=False,
)
RESTORATION = TaskSpec(
    name="restoration", model_types=("quarf_restoration",), auto_class="AutoModel",
    classes=False, output="reconstruction", source_key="labels", label_dims=3, labels="clean (3, H, W) images",
    raw_pixels=True, meter="RestorationMeter", metric="psnr", secondary_metric="ssim", unit="dB",
    identity_row=True,
)
TASKS = {spec.name: spec for spec in (SEGMENTATION, RESTORATION)}
# Every trainable model type -> its task's name.
MODEL_TYPES = {model_type: spec.name for spec in TASKS.values() for model_type in spec.model_types}
# The task of a model type no task lists (transformers' semantic-segmentation models).
DEFAULT_TASK = SEGMENTATION


def get_task(name, argument: str = "task") -> TaskSpec:
    """The task called ``name``; an unknown name is an error naming ``argument``."""
    return TASKS[check_choice(argument, name, TASKS)]


def task_of(source) -> TaskSpec:
    """The task of a model, its config, a config.json's contents (a dict) or a model type.

    The ``model_type`` decides: a type a task lists is that task's, any other type is
    segmentation's (:data:`DEFAULT_TASK`).
    """
    if isinstance(source, str):
        model_type = source
    elif isinstance(source, dict):
        model_type = source.get("model_type")
    else:
        config = getattr(source, "config", source)
        model_type = getattr(config, "model_type", None)
    name = MODEL_TYPES.get(model_type) if isinstance(model_type, str) else None
    return DEFAULT_TASK if name is None else TASKS[name]


__all__ = ["TaskSpec", "TASKS", "MODEL_TYPES", "SEGMENTATION", "RESTORATION", "DEFAULT_TASK", "get_task", "task_of"]
