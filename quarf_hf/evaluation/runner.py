"""Evaluate a model on clean data and on every corruption x severity.

For each condition (clean, then each corruption at each severity) the runner takes the clean
[0, 1] source images, degrades them (not for clean), normalises them as the model expects
(:func:`~quarf_hf.evaluation.pixels.model_pixel_normalisation`), runs the model under
``torch.no_grad()`` and scores the output as its task (:mod:`quarf_hf.tasks`) says:

- segmentation: the source is ``item["pixel_values"]``; logits are upsampled bilinearly to the
  label size and arg-maxed; mIoU and pixel accuracy (:class:`SegmentationMeter`).
- restoration: the source is ``item["labels"]`` (the clean image). The dataset's own degraded
  ``pixel_values`` are not used, so every corruption is applied to the same clean images and
  "clean" means the model is given the clean image itself (a good restorer leaves it alone).
  Mean per-image PSNR and SSIM (:class:`RestorationMeter`), and the same scores of the degraded
  input itself (the *identity*: what doing nothing scores, the floor a restorer must beat), under
  ``"identity"`` in the results.

Degraded images are fixed by the seed: image ``i`` under corruption ``c`` at severity ``s`` is
degraded on its own, on the CPU, with a ``torch.Generator`` seeded from a hash of ``(seed, c, s,
i)``. They depend neither on which other corruptions are evaluated, nor on the batch size, nor
on the number of processes, nor on the device, so two models (or two runs) see identical
images. ``reference_size`` is the degradations' size rule (:mod:`quarf_hf.degradations.registry`;
``None``: the tables' pixel values), applied to each image at its own size.

With an ``accelerator`` process ``p`` of ``n`` takes the images ``p, p + n, p + 2n, ...`` and
the meters are summed across processes, giving the single-process numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.checks import InputError, check_int
from ..tasks import TaskSpec, task_of
from .pixels import model_pixel_normalisation
from .routing import expert_fields, routing_per_image

SEVERITIES = (1, 2, 3, 4, 5)


def degradation_seed(seed: int, corruption: str, severity: int, index: int) -> int:
    """A 63-bit seed from (seed, corruption name, severity, image index); stable across runs and machines."""
    digest = hashlib.sha256(f"{seed}/{corruption}/{severity}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _validate(corruptions, severities, seed, batch_size, dataset):
    from quarf_hf.degradations.registry import check_corruptions, check_severities

    corruptions = check_corruptions(corruptions, "corruptions", allow_empty=True)
    severities = check_severities(severities, "severities", allow_empty=not corruptions)
    check_int("seed", seed, minimum=None)
    check_int("batch_size", batch_size)
    try:
        size = len(dataset)
    except TypeError:
        raise InputError(f"dataset: expected a sized, indexable dataset, found {type(dataset).__name__}") from None
    if size == 0:
        raise InputError("dataset: expected at least one image, found an empty dataset")
    return corruptions, severities


def _model_device(model) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def _experts(model):
    experts = expert_fields(model)
    return None if experts is None else [expert["receptive_field"] for expert in experts]


def _batches(indices: Sequence[int], dataset, batch_size: int, task: TaskSpec):
    """Consecutive runs of at most ``batch_size`` indices whose images share one shape."""
    batch, shape = [], None
    for index in indices:
        item = dataset[index]
        source = torch.as_tensor(item[task.source_key])
        if batch and (len(batch) == batch_size or source.shape != shape):
            yield batch
            batch = []
        shape = source.shape
        batch.append((index, source, torch.as_tensor(item["labels"])))
    if batch:
        yield batch


class _Condition:
    """The meters of one condition: the task's metric and the mean routing weights."""

    def __init__(self, task: TaskSpec, num_labels: int, ignore_index, num_experts: int | None):
        self.meter = task.new_meter(num_labels, ignore_index)
        # the degraded input scored against the clean image (the identity's row)
        self.identity = task.new_meter() if task.identity_row else None
        # Zeros, not None, for a QuARF model: a process with no images must still join the reduction.
        self.routing_sum = None if num_experts is None else torch.zeros(num_experts, dtype=torch.float64)
        self.count = torch.zeros((), dtype=torch.float64)

    def add_routing(self, routing: torch.Tensor | None, batch: int):
        self.count += batch
        if routing is None:
            return
        self.routing_sum = self.routing_sum + routing_per_image(routing).sum(0)

    def compute(self, accelerator) -> dict:
        metrics = self.meter.compute(accelerator)
        if self.routing_sum is not None:
            sums = torch.cat([self.routing_sum, self.count.reshape(1)])
            if accelerator is not None:
                sums = accelerator.reduce(sums.to(accelerator.device), "sum").cpu()
            metrics["routing"] = (sums[:-1] / sums[-1]).tolist()
        return metrics


def _mean_metrics(entries: list[dict]) -> dict:
    if not entries:
        return {}
    mean = {}
    for key, value in entries[0].items():
        if key == "per_class_iou":
            continue
        if key == "routing":
            mean[key] = [sum(entry[key][e] for entry in entries) / len(entries) for e in range(len(value))]
        else:
            mean[key] = sum(entry[key] for entry in entries) / len(entries)
    return mean


@dataclass
class Evaluation:
    """What :func:`setup_evaluation` fixes for a run: the checked arguments, the model's task,
    normalisation and experts, this process's share of the images and the conditions."""

    model: torch.nn.Module
    dataset: object
    task: TaskSpec
    corruptions: list[str]
    severities: list[int]
    seed: int
    batch_size: int
    accelerator: object
    device: torch.device
    mean: torch.Tensor
    std: torch.Tensor
    num_labels: int
    ignore_index: int | None
    experts: list[int] | None
    indices: list[int]
    conditions: list[tuple[str | None, int | None]]
    reference_size: int | None = None

    def new_condition(self) -> _Condition:
        """Empty meters for one condition."""
        return _Condition(self.task, self.num_labels, self.ignore_index, None if self.experts is None else len(self.experts))

    def batches(self):
        """This process's images in batches (see :func:`_batches`)."""
        return _batches(self.indices, self.dataset, self.batch_size, self.task)


def setup_evaluation(model, dataset, *, corruptions: Sequence[str] = ("gaussian_noise",),
                     severities: Sequence[int] = SEVERITIES, seed: int = 0, batch_size: int = 8,
                     accelerator=None, reference_size: int | None = None) -> Evaluation:
    """Checks the arguments and the dataset against the model (before the model runs) and fixes
    the conditions, the normalisation, the device and this process's images."""
    from quarf_hf.degradations.registry import check_reference_size

    corruptions, severities = _validate(corruptions, severities, seed, batch_size, dataset)
    reference_size = check_reference_size(reference_size)
    task = task_of(model)
    config = model.config
    num_labels, ignore_index = 0, None
    if task.classes:
        num_labels = int(config.num_labels)
        ignore_index = getattr(config, "semantic_loss_ignore_index", 255)
        dataset_labels = getattr(dataset, "num_labels", None)
        # A dataset whose classes are the model's first ones (its masks need not hold the top class)
        # is scored over the model's classes; more classes than the model predicts cannot be.
        if dataset_labels is not None and int(dataset_labels) > num_labels:
            raise InputError(f"dataset: has {dataset_labels} labels but the model predicts only {num_labels}")

    first = dataset[0]
    labels_shape = tuple(torch.as_tensor(first["labels"]).shape)
    if len(labels_shape) != task.label_dims:
        raise InputError(f"dataset: {task.name} evaluation needs items whose labels are {task.labels}, "
                         f"found labels of shape {labels_shape}")

    mean, std = model_pixel_normalisation(model)
    device = accelerator.device if accelerator is not None else _model_device(model)
    rank = int(getattr(accelerator, "process_index", 0)) if accelerator is not None else 0
    world = int(getattr(accelerator, "num_processes", 1)) if accelerator is not None else 1
    return Evaluation(
        model=model, dataset=dataset, task=task, corruptions=corruptions, severities=severities, seed=seed,
        batch_size=batch_size, accelerator=accelerator, device=device,
        mean=torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1),
        std=torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1),
        num_labels=num_labels, ignore_index=ignore_index, experts=_experts(model),
        indices=list(range(rank, len(dataset), world)),
        conditions=[(None, None)] + [(name, severity) for name in corruptions for severity in severities],
        reference_size=reference_size,
    )


def evaluate_batch(run: Evaluation, state: _Condition, batch, name: str | None, severity: int | None) -> None:
    """One batch under one condition: degrade each image (seeded by its index, on the CPU), run
    the model and add the scores and routing to ``state``. Call under ``torch.no_grad()``."""
    from quarf_hf.degradations import degrade

    images = []
    for index, source, _ in batch:
        image = source.to(dtype=torch.float32).unsqueeze(0)
        if name is not None:
            # On the CPU with a CPU generator: the same images on every device.
            generator = torch.Generator().manual_seed(degradation_seed(run.seed, name, severity, index))
            image = degrade(image.cpu(), name, severity, generator=generator, reference_size=run.reference_size)
        images.append(image.to(run.device))
    pixels = torch.cat(images)
    labels = torch.stack([labels for _, _, labels in batch]).to(run.device)
    output = run.model(pixel_values=(pixels - run.mean) / run.std)
    prediction = getattr(output, run.task.output).float()
    if run.task.classes:  # logits at the labels' size, then each pixel's class
        prediction = F.interpolate(prediction, size=labels.shape[-2:], mode="bilinear", align_corners=False)
        state.meter.update(prediction.argmax(1), labels.long())
    else:
        state.meter.update(prediction, labels.float())
    if state.identity is not None:
        state.identity.update(pixels.float(), labels.float())
    state.add_routing(getattr(output, "routing_weights", None), len(batch))


def store_condition(results: dict, state: _Condition, name: str | None, severity: int | None, accelerator) -> None:
    """A finished condition's metrics into ``results`` (the identity's under ``identity:<name>``)."""
    for key, meter_metrics in (("", state.compute(accelerator)),
                               ("identity:", None if state.identity is None else state.identity.compute(accelerator))):
        if meter_metrics is None:
            continue
        if name is None:
            results[f"{key}clean"] = meter_metrics
        else:
            results.setdefault(f"{key}{name}", {})[str(severity)] = meter_metrics


def finish_evaluation(run: Evaluation, results: dict) -> dict:
    """``results`` (``{"clean": metrics, name: {"severity": metrics}}``) -> the JSON-serialisable
    dict :func:`evaluate_model` returns (means over corruptions, image count over processes)."""
    accelerator = run.accelerator
    count = torch.tensor(float(len(run.indices)), dtype=torch.float64)
    if accelerator is not None:
        count = accelerator.reduce(count.to(accelerator.device), "sum").cpu()
    corrupted = {name: results[name] for name in run.corruptions}
    out = {
        "task": run.task.name,
        "metric": run.task.metric,
        "secondary_metric": run.task.secondary_metric,
        "clean": results["clean"],
        "corruptions": corrupted,
        "mean_corrupted": _mean_metrics([entry for by_severity in corrupted.values() for entry in by_severity.values()]),
        "severities": run.severities,
        "num_images": int(round(float(count))),
        "seed": run.seed,
    }
    if run.experts is not None:
        out["experts"] = run.experts
    if run.task.identity_row:
        identity = {key: results[f"identity:{key}"] for key in ["clean", *run.corruptions]}
        out["identity"] = {
            "clean": identity["clean"],
            "corruptions": {name: identity[name] for name in run.corruptions},
            "mean_corrupted": _mean_metrics([entry for name in run.corruptions for entry in identity[name].values()]),
        }
    return out


def evaluate_model(
    model,
    dataset,
    *,
    corruptions: Sequence[str] = ("gaussian_noise",),
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    batch_size: int = 8,
    accelerator=None,
    progress: bool = True,
    reference_size: int | None = None,
) -> dict:
    """Metrics of ``model`` on ``dataset`` clean and under each corruption at each severity.

    Returns a JSON-serialisable dict::

        {"task": "segmentation" | "restoration", "metric": "mIoU" | "psnr",
         "secondary_metric": "pixel_accuracy" | "ssim",
         "clean": {metrics..., "routing": [mean weight per expert] (QuARF only)},
         "corruptions": {name: {"1": {metrics...}, ...}},   # in the order given
         "mean_corrupted": {metrics averaged over every corruption x severity},
         "experts": [receptive field per expert] (routed QuARF models only),
         "identity": {"clean": ..., "corruptions": ..., "mean_corrupted": ...},  # restoration only
         "severities": [...], "num_images": N, "seed": seed}

    Segmentation metrics: ``mIoU``, ``pixel_accuracy``, ``per_class_iou``; restoration:
    ``psnr`` (dB), ``ssim``; ``identity`` holds the scores of the degraded inputs themselves (the
    floor). ``reference_size``: the degradations' size rule (``None``: the tables' pixel values).
    See the module docstring for how images are degraded and sharded.
    The steps are :func:`setup_evaluation`, :func:`evaluate_batch` per batch and condition, and
    :func:`finish_evaluation`.
    """
    run = setup_evaluation(model, dataset, corruptions=corruptions, severities=severities, seed=seed,
                           batch_size=batch_size, accelerator=accelerator, reference_size=reference_size)
    show = progress and (accelerator is None or getattr(accelerator, "is_main_process", True))
    from ..progress import progress_bar

    bar = progress_bar(total=len(run.conditions) * len(run.indices), desc="evaluate", unit="img", disable=not show)
    was_training = model.training
    model.eval()
    results: dict = {}
    try:
        with torch.no_grad():
            for name, severity in run.conditions:
                bar.set_postfix_str("clean" if name is None else f"{name} s{severity}")
                state = run.new_condition()
                for batch in run.batches():
                    evaluate_batch(run, state, batch, name, severity)
                    bar.update(len(batch))
                store_condition(results, state, name, severity, accelerator)
    finally:
        bar.close()
        model.train(was_training)
    return finish_evaluation(run, results)


__all__ = ["evaluate_model", "setup_evaluation", "evaluate_batch", "finish_evaluation", "store_condition", "Evaluation", "degradation_seed"]
