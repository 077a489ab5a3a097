"""``quarf-hf train-quality``'s task: a ContriqueModel trained with CONTRIQUE's objective; the loop
is :mod:`quarf_hf.training.loop`'s (resume, accumulation, checkpoints, time budget)."""

from __future__ import annotations

import torch

from ..models.checks import InputError
from ..training.loop import Task, TrainingRun, run_training
from ..training.seeds import mixed_seed, seeded_generator
from .config import QualityTrainConfig
from .data import QualityImages
from .objective import class_table, contrique_loss, degrade_by_label, draw_labels, two_crops


def build_encoder(config: QualityTrainConfig):
    from ..models.modeling_contrique import ContriqueModel

    if config.model.get("base"):
        model = ContriqueModel.from_pretrained(config.model["base"])
        if config.crop_size < model.config.min_image_size:
            raise InputError(f"crop_size: expected at least the base model's min_image_size "
                             f"{model.config.min_image_size}, found {config.crop_size}")
        return model
    return ContriqueModel(config.contrique_config())


class QualityEncoderTask(Task):
    """Every random draw of a step (classes, degradations, crops) is seeded by the batch's position."""

    description = "training quality encoder"

    def __init__(self, config: QualityTrainConfig):
        self.config = config
        self.num_workers = config.num_workers
        self.table = class_table(config.corruption_names, config.severities, config.clean_class)
        self.authentic = round(config.batch_size * config.authentic_fraction)
        self.train_set = self.probe_data = None

    def load_data(self, accelerator):
        self.train_set = QualityImages(self.config.data["train"], self.config.image_size, seed=self.config.seed)
        return self.train_set

    def build_model(self, dataset, accelerator):
        config = self.config
        model = build_encoder(config)
        if config.probe:
            from .probe import probe_images

            # Checked now: a bad probe folder must not cost a training run.
            self.probe_data = probe_images(config.probe, config.probe.get("image_size", config.image_size),
                                           min_size=model.config.min_image_size)
        return model

    def collate(self, samples):
        return {"pixel_values": torch.stack([s["pixel_values"] for s in samples]),
                "index": torch.tensor([s["index"] for s in samples])}

    def loss(self, run: TrainingRun, batch: dict, position: tuple) -> torch.Tensor:
        """Degrade each image by its drawn class, take two crops, CONTRIQUE's contrastive loss."""
        config, images = self.config, batch["pixel_values"]
        draws = torch.Generator().manual_seed(mixed_seed(*position, 3))  # classes and crops: cheap, on the CPU
        labels = draw_labels(len(images), len(self.table), config.images_per_class, self.authentic, draws)
        with torch.no_grad():
            degraded = degrade_by_label(images, labels, self.table, seeded_generator(images.device, *position, 2))
        view_a, view_b = two_crops(degraded, config.crop_size, draws)
        with run.accelerator.autocast():
            return contrique_loss(run.model, view_a, view_b, labels, config.temperature)

    def finish(self, run: TrainingRun, summary: dict) -> None:
        """The recipe in the summary; the probe on held-out kinds and the Hub-ready folder (main process)."""
        import time

        config, accelerator = self.config, run.accelerator
        summary.update({"minutes": round((time.monotonic() - run.started) / 60, 2), "losses": run.losses,
                        "classes": len(self.table), "corruptions": config.corruption_names,
                        "severities": config.severities, "data": self.train_set.descriptions})
        state_dict = accelerator.get_state_dict(run.model)  # collective: FSDP / ZeRO-3 gather their shards
        if accelerator.is_main_process:
            from .export import export_encoder

            encoder = accelerator.unwrap_model(run.model).eval()
            probe = None
            if self.probe_data is not None:
                from .probe import run_probe

                probe = run_probe(encoder, self.probe_data, config.probe["corruptions"],
                                  config.probe.get("severities", [1, 2, 3, 4, 5]), seed=config.seed,
                                  return_features=True)
            export_encoder(encoder, run.output_dir / "model", config, summary, probe=probe,
                           push_to_hub=run.push_to_hub, name=config.name, state_dict=state_dict)


def train_quality(config: QualityTrainConfig, resume: bool = False, push_to_hub: str | None = None) -> dict:
    """Runs (or resumes) a quality-encoder run; returns its summary. Only the main process writes.

    Resuming restores model, optimiser, scheduler and RNG states and continues the same data
    order, so a resumed run ends with exactly the weights of an uninterrupted one; a damaged newest
    checkpoint is skipped (said, with why) for the newest intact one.
    """
    return run_training(QualityEncoderTask(config), resume=resume, push_to_hub=push_to_hub)
