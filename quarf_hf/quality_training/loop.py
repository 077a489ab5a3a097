"""The accelerate loop that trains a ContriqueModel with CONTRIQUE's objective (one or many processes)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..atomic import write_text_atomic
from ..training.checkpoints import latest_checkpoint, save_checkpoint
from ..training.loop import EpochSeededSampler, _generator, _mixed_seed
from .config import QualityTrainConfig
from .data import QualityImages
from .objective import class_table, contrique_loss, degrade_by_label, draw_labels, two_crops


def _collate(samples):
    return {"pixel_values": torch.stack([s["pixel_values"] for s in samples]),
            "index": torch.tensor([s["index"] for s in samples])}


def build_encoder(config: QualityTrainConfig):
    from ..models.modeling_contrique import ContriqueModel

    if config.model.get("base"):
        model = ContriqueModel.from_pretrained(config.model["base"])
        if config.crop_size < model.config.min_image_size:
            raise ValueError(f"crop_size: expected at least the base model's min_image_size "
                             f"{model.config.min_image_size}, found {config.crop_size}")
        return model
    return ContriqueModel(config.contrique_config())


def _scheduler(config: QualityTrainConfig, optimizer, num_processes: int):
    # accelerate's prepared scheduler steps once per process per optimiser step.
    name = "cosine" if config.schedule == "cosine" else "constant_with_warmup"
    return get_scheduler(name, optimizer, num_warmup_steps=config.warmup_steps * num_processes,
                         num_training_steps=config.max_steps * num_processes)


def train_quality(config: QualityTrainConfig, resume: bool = False, push_to_hub: str | None = None) -> dict:
    """Runs (or resumes) a quality-encoder run; returns its summary. Only the main process writes.

    Resuming restores model, optimiser, scheduler and RNG states and continues the same data
    order; every random draw of a step (classes, degradations, crops) is seeded by the batch's
    position, so a resumed run ends with exactly the weights of an uninterrupted one.
    """
    push_to_hub = push_to_hub or config.push_to_hub
    if push_to_hub:
        from ..hub.publish import resolve_token

        resolve_token(None)  # no token: fail now, not after training
    output_dir = Path(config.output_dir)
    if resume and latest_checkpoint(output_dir) is None:
        raise FileNotFoundError(f"--resume: no checkpoint under {output_dir / 'checkpoints'}")
    if not resume and latest_checkpoint(output_dir) is not None:
        raise ValueError(f"output_dir: {output_dir} already holds checkpoints of a run; pass --resume to continue "
                         "it, or choose another output_dir")
    # Everything the user can get wrong is checked before the first step.
    train_set = QualityImages(config.data["train"], config.image_size, seed=config.seed)
    set_seed(config.seed)  # the initial weights follow the seed
    model = build_encoder(config)
    probe_data = None
    if config.probe:
        from .probe import probe_images

        probe_data = probe_images(config.probe, config.probe.get("image_size", config.image_size),
                                  min_size=model.config.min_image_size)
    accelerator = Accelerator(mixed_precision=config.mixed_precision, project_dir=str(output_dir))
    if len(train_set) < config.batch_size * accelerator.num_processes:
        raise ValueError(f"batch_size: {config.batch_size} x {accelerator.num_processes} processes is more than "
                         f"the {len(train_set)} training images")
    table = class_table(config.corruption_names, config.severities, config.clean_class)
    authentic = round(config.batch_size * config.authentic_fraction)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = _scheduler(config, optimizer, accelerator.num_processes)
    sampler = EpochSeededSampler(len(train_set), config.seed)
    loader = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler, drop_last=True,
                        collate_fn=_collate, num_workers=config.num_workers)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    step = 0
    if resume:
        checkpoint, step = latest_checkpoint(output_dir)
        accelerator.load_state(str(checkpoint))
    steps_per_epoch = len(loader)
    losses: list[float] = []
    start_time = time.monotonic()
    progress = tqdm(total=config.max_steps, initial=step, disable=not accelerator.is_local_main_process,
                    desc="training quality encoder", mininterval=1.0)
    model.train()
    stopped_early = False
    while step < config.max_steps and not stopped_early:
        epoch, skip = divmod(step, steps_per_epoch)
        loader.set_epoch(epoch)
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        for batch_in_epoch, batch in enumerate(epoch_loader, start=skip):
            images = batch["pixel_values"]
            position = (config.seed, epoch, batch_in_epoch, accelerator.process_index)
            torch.manual_seed(_mixed_seed(*position, 1))
            draws = torch.Generator().manual_seed(_mixed_seed(*position, 3))  # classes and crops: cheap, on the CPU
            labels = draw_labels(len(images), len(table), config.images_per_class, authentic, draws)
            with torch.no_grad():
                degraded = degrade_by_label(images, labels, table, _generator(images.device, *position, 2))
            view_a, view_b = two_crops(degraded, config.crop_size, draws)
            with accelerator.autocast():
                loss = contrique_loss(model, view_a, view_b, labels, config.temperature)
            accelerator.backward(loss)
            if config.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            progress.update(1)
            mean_loss = accelerator.reduce(loss.detach().float(), "mean").item()
            losses.append(mean_loss)
            progress.set_postfix(loss=f"{mean_loss:.4f}")
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                save_checkpoint(accelerator, output_dir, step, config.keep_checkpoints)
            over_budget = config.max_minutes is not None and (time.monotonic() - start_time) > 60 * config.max_minutes
            stopped_early = accelerator.reduce(torch.tensor(float(over_budget), device=accelerator.device), "sum").item() > 0
            if step >= config.max_steps or stopped_early:
                break
    progress.close()

    summary = {"steps": step, "stopped_early": stopped_early, "num_processes": accelerator.num_processes,
               "minutes": round((time.monotonic() - start_time) / 60, 2), "losses": losses,
               "classes": len(table), "corruptions": config.corruption_names, "severities": config.severities,
               "data": train_set.descriptions}
    if accelerator.is_main_process:
        from .export import export_encoder

        encoder = accelerator.unwrap_model(model).eval()
        probe = None
        if probe_data is not None:
            from .probe import run_probe

            probe = run_probe(encoder, probe_data, config.probe["corruptions"],
                              config.probe.get("severities", [1, 2, 3, 4, 5]), seed=config.seed,
                              return_features=True)
        export_encoder(encoder, output_dir / "model", config, summary, probe=probe, push_to_hub=push_to_hub,
                       name=config.name)
        write_text_atomic(output_dir / "summary.json", json.dumps(summary, indent=2))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary
