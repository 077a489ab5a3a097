"""``quarf-hf train``'s task: fine-tuning a segmentation (SegFormer, QuARF-SegFormer) or restoration
model with degradation augmentation, evaluated clean and degraded; the loop is :mod:`.loop`'s."""

from __future__ import annotations

import json

import torch

from ..atomic import write_text_atomic
from .config import TrainConfig
from .loop import Task, TrainingRun, run_training
from .models import build_model, model_block
from .seeds import seeded_generator


class IndexedDataset(torch.utils.data.Dataset):
    """Adds each sample's index (to check how processes shard the data)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return {**self.dataset[index], "index": index}

    def set_epoch(self, epoch: int) -> None:
        """Passed on (random photo crops are drawn from the seed, the epoch and the index)."""
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


def _evaluate(model, dataset, config: TrainConfig, accelerator) -> dict:
    """Clean and degraded validation metrics, shared over processes (see quarf_hf.evaluation)."""
    from ..evaluation import evaluate_model

    model.eval()
    results = evaluate_model(
        accelerator.unwrap_model(model), dataset,
        corruptions=config.evaluation.get("corruptions", []),
        severities=config.evaluation.get("severities", [3]),
        seed=config.seed, batch_size=config.batch_size, accelerator=accelerator,
        progress=accelerator.is_local_main_process, reference_size=config.evaluation.get("reference_size"),
    )
    model.train()
    return results


def _flat_metrics(results: dict) -> dict:
    """``{"eval/clean/mIoU": ..., "eval/gaussian_noise@3/mIoU": ...}`` for a tracker."""
    flat = {f"eval/clean/{k}": v for k, v in results["clean"].items() if isinstance(v, float)}
    for name, by_severity in results.get("corruptions", {}).items():
        for severity, metrics in by_severity.items():
            flat.update({f"eval/{name}@{severity}/{k}": v for k, v in metrics.items() if isinstance(v, float)})
    return flat


def _severity_choice(severities):
    """The YAML form: ``[low, high]`` is an inclusive range, a longer list the exact severities."""
    if isinstance(severities, (list, tuple)) and len(severities) == 2:
        return tuple(severities)
    return list(severities) if isinstance(severities, (list, tuple)) else severities


def _augmentation(config: TrainConfig):
    from ..degradations import RandomDegradation

    if config.augmentation.get("policy", "none") != "degradation":
        return None
    names = config.augmentation.get("corruptions", "all")
    return RandomDegradation(
        names=None if names == "all" else names,
        severities=_severity_choice(config.augmentation.get("severities", [1, 5])),
        p=config.augmentation.get("p", 0.5),
        reference_size=config.augmentation.get("reference_size"),
    )


def _load_spec(spec, where: str):
    """``load_dataset_spec(spec)``; its one-line errors (``path: no images in ...``, ``photos: unknown
    photo ...``, ``crop_size: ... is larger than ...``) name the setting in the config
    (``data.train.path: ...``)."""
    import re

    from ..data import load_dataset_spec

    try:
        return load_dataset_spec(spec)
    except (ValueError, FileNotFoundError) as err:
        message = str(err)
        key = re.match(r"^([A-Za-z_][\w.]*): ", message)
        if key and "\n" not in message:
            named = where if key.group(1) == "spec" else f"{where}.{key.group(1)}"
            raise type(err)(f"{named}: {message[key.end():]}") from None
        raise


def _hard_routing(model_section: dict) -> bool:
    """Whether the model's QuARF block routes each image to one expert (``mode: hard``)."""
    return (model_block(model_section).settings or {}).get("mode") == "hard"


class SegmentationTask(Task):
    """Segmentation or restoration (``config.task``) with a :class:`TrainConfig`.

    Every training and validation item is read first (a damaged file or a mask of the wrong size
    stops the run with its name); ``skip_bad`` leaves such items out instead and lists them
    (printed, and in the summary's ``skipped``)."""

    def __init__(self, config: TrainConfig, skip_bad: bool = False):
        self.config, self.skip_bad = config, skip_bad
        self.unused_parameters = _hard_routing(config.model)
        self.train_set = self.validation_set = self.augmentation = None
        self.mean = self.std = None
        self.skipped: list = []  # (item, reason) left out by skip_bad
        self.seen_ids: list[int] = []  # with log_sample_ids: the sample ids this process trained on

    def load_data(self, accelerator):
        from ..data.checks import check_items, skipped_lines

        config, task = self.config, self.config.task
        self.train_set, skipped = check_items(_load_spec(config.data["train"], "data.train"), "data.train",
                                              skip_bad=self.skip_bad, same_size=True, task=task)
        skipped_validation = []
        if config.data.get("validation"):
            self.validation_set, skipped_validation = check_items(_load_spec(config.data["validation"], "data.validation"),
                                                                  "data.validation", skip_bad=self.skip_bad, task=task)
        self.skipped = [(f"data.train {name}", reason) for name, reason in skipped] + [
            (f"data.validation {name}", reason) for name, reason in skipped_validation]
        if accelerator.is_main_process:
            for line in skipped_lines(self.skipped):
                print(line)
        return IndexedDataset(self.train_set)

    def build_model(self, dataset, accelerator):
        from ..evaluation import model_pixel_normalisation

        data = self.train_set
        model = build_model(self.config.model, num_labels=getattr(data, "num_labels", None),
                            id2label=getattr(data, "id2label", None), ignore_index=getattr(data, "ignore_index", None))
        self.mean, self.std = (torch.tensor(v, device=accelerator.device).view(1, -1, 1, 1)
                               for v in model_pixel_normalisation(model))
        self.augmentation = _augmentation(self.config)
        weight = (self.config.model.get("config") or {}).get("load_balancing_weight")
        if weight is not None and hasattr(model.config, "load_balancing_weight"):
            # A model from model.base has its own weight: the section's, when it sets one, replaces it.
            model.config.load_balancing_weight = float(weight)
        return model

    def collate(self, samples):
        batch = {key: torch.stack([s[key] for s in samples]) for key in ("pixel_values", "labels")}
        batch["index"] = torch.tensor([s.get("index", -1) for s in samples])
        return batch

    def loss(self, run: TrainingRun, batch: dict, position: tuple) -> torch.Tensor:
        """Degrade (seeded by the batch's position), normalise, forward. The model's loss includes the
        routers' balance loss (its config's ``load_balancing_weight``), as under ``transformers.Trainer``."""
        config = self.config
        if config.log_sample_ids:
            self.seen_ids.extend(batch["index"].tolist())
        pixels, labels = batch["pixel_values"], batch["labels"]
        if self.augmentation is not None:
            pixels = self.augmentation(pixels, generator=seeded_generator(pixels.device, *position, 2))
        with run.accelerator.autocast():
            out = run.model(pixel_values=(pixels - self.mean) / self.std, labels=labels)
        return out.loss

    def after_step(self, run: TrainingRun) -> None:
        config = self.config
        if (config.eval_every and run.step % config.eval_every == 0 and self.validation_set is not None
                and run.step < config.max_steps):
            metrics = _evaluate(run.model, self.validation_set, config, run.accelerator)
            if config.tracker != "none":
                run.accelerator.log(_flat_metrics(metrics), step=run.step)

    def finish(self, run: TrainingRun, summary: dict) -> None:
        """The final evaluation, the sample-id log and the exported model folder (main process)."""
        config, accelerator = self.config, run.accelerator
        results = _evaluate(run.model, self.validation_set, config, accelerator) if self.validation_set is not None else {}
        if config.log_sample_ids:
            ids_path = run.output_dir / f"sample_ids_rank{accelerator.process_index}.json"
            write_text_atomic(ids_path, json.dumps(self.seen_ids))
        summary["evaluation"] = results
        if self.skipped:
            summary["skipped"] = [{"item": name, "reason": reason} for name, reason in self.skipped]
        # Every process takes part (FSDP / ZeRO-3 gather their shards here); the main one writes.
        state_dict = accelerator.get_state_dict(run.model)
        if accelerator.is_main_process:
            from .export import export_model

            image_size = tuple(int(n) for n in self.train_set[0]["pixel_values"].shape[-2:])
            export_model(accelerator.unwrap_model(run.model), run.output_dir / "model", config, summary,
                         push_to_hub=run.push_to_hub, image_size=image_size, state_dict=state_dict)


def train(config: TrainConfig, resume: bool = False, push_to_hub: str | None = None, skip_bad: bool = False) -> dict:
    """Runs (or resumes) a segmentation or restoration fine-tuning; returns the run summary.

    Only the main process writes files; resuming ends with the weights of an uninterrupted run
    (see :func:`quarf_hf.training.loop.run_training`). ``skip_bad``: leave out (and list, in the
    summary's ``skipped``) unreadable items and masks of the wrong size instead of stopping.
    """
    return run_training(SegmentationTask(config, skip_bad), resume=resume, push_to_hub=push_to_hub)
