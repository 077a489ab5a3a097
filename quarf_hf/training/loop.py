"""The accelerate training loop (one or many processes, CPU or GPUs)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..atomic import write_text_atomic
from ..models.quarf import quarf_aux_loss
from .checkpoints import checkpoint_problem, checkpoint_step, list_checkpoints, save_checkpoint
from .config import TrainConfig
from .models import build_model


class EpochSeededSampler(Sampler):
    """A permutation drawn from (seed, epoch): the same order in a resumed run as in an uninterrupted one."""

    def __init__(self, length: int, seed: int):
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=generator).tolist())

    def __len__(self):
        return self.length


def collate(samples):
    batch = {key: torch.stack([s[key] for s in samples]) for key in ("pixel_values", "labels")}
    batch["index"] = torch.tensor([s.get("index", -1) for s in samples])
    return batch


class IndexedDataset(torch.utils.data.Dataset):
    """Adds each sample's index (to check how processes shard the data)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return {**self.dataset[index], "index": index}


def _mixed_seed(*parts: int) -> int:
    seed = 0
    for part in parts:
        seed = (seed * 1_000_003 + int(part)) % (2**63 - 1)
    return seed


def _generator(device, *parts: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(_mixed_seed(*parts))


def _scheduler(config: TrainConfig, optimizer, num_processes: int):
    # accelerate's prepared scheduler steps once per process for every optimiser step, so the
    # schedule is laid out over max_steps x num_processes of its own steps.
    warmup, total = config.warmup_steps * num_processes, config.max_steps * num_processes
    if config.schedule == "poly":
        return get_scheduler("polynomial", optimizer, num_warmup_steps=warmup, num_training_steps=total,
                             scheduler_specific_kwargs={"power": 1.0})
    name = "cosine" if config.schedule == "cosine" else "constant_with_warmup"
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total)


def _evaluate(model, dataset, config: TrainConfig, accelerator) -> dict:
    """Clean and degraded validation metrics, shared over processes (see quarf_hf.evaluation)."""
    from ..evaluation import evaluate_model

    model.eval()
    results = evaluate_model(
        accelerator.unwrap_model(model), dataset,
        corruptions=config.evaluation.get("corruptions", []),
        severities=config.evaluation.get("severities", [3]),
        seed=config.seed, batch_size=config.batch_size, accelerator=accelerator,
        progress=accelerator.is_local_main_process,
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
    )


@dataclass
class TrainingRun:
    """Everything :func:`setup_training` prepares for the loop: the accelerator, the prepared model,
    optimiser, scheduler and data loader, the data, the pixel normalisation and the augmentation."""

    config: TrainConfig
    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    loader: DataLoader
    train_set: object
    validation_set: object | None
    mean: torch.Tensor
    std: torch.Tensor
    augmentation: object | None
    output_dir: Path
    push_to_hub: str | None
    step: int = 0  # optimiser steps done (restored by resume)
    skipped: list = field(default_factory=list)  # (item, reason) left out by skip_bad


def accelerator_is_main_process_env() -> bool:
    """Rank 0 (or a single process), before the Accelerator exists: only it cleans the folder."""
    import os

    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0


def _resume(accelerator, output_dir: Path) -> int:
    """Loads the newest intact checkpoint; skips damaged newer ones, saying which and why. Returns its step."""
    skipped = []
    for checkpoint in reversed(list_checkpoints(output_dir)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            try:
                accelerator.load_state(str(checkpoint))
            except Exception as err:  # noqa: BLE001 - a damaged pickle: fall back to an older one
                problem = f"loading it failed ({type(err).__name__}: {' '.join(str(err).split())[:200]})"
        if problem is not None:
            skipped.append(checkpoint)
            if accelerator.is_main_process:
                print(f"--resume: skipping damaged checkpoint {checkpoint}: {problem}", flush=True)
            continue
        if skipped and accelerator.is_main_process:
            print(f"--resume: resuming from {checkpoint} instead", flush=True)
        return checkpoint_step(checkpoint)
    raise ValueError(f"--resume: every checkpoint under {output_dir / 'checkpoints'} is damaged "
                     f"({', '.join(p.name for p in skipped)}); start a new run in another output_dir")


def setup_training(config: TrainConfig, resume: bool = False, push_to_hub: str | None = None,
                   skip_bad: bool = False) -> TrainingRun:
    """Checks the output folder (and the token when pushing), then builds the accelerator, data,
    model, optimiser and scheduler, prepares them and, with ``resume``, restores the newest intact
    checkpoint (skipping damaged newer ones, saying which and why).

    Every training and validation item is read first (a damaged file or a mask of the wrong size
    stops the run with its name); ``skip_bad`` leaves such items out instead and lists them
    (printed, and in ``run.skipped``)."""
    from ..data import load_dataset_spec
    from ..evaluation import model_pixel_normalisation

    push_to_hub = push_to_hub or config.push_to_hub
    if push_to_hub:
        from ..hub.publish import resolve_token

        resolve_token(None)  # no token: fail now, not after training
    output_dir = Path(config.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"output_dir: {str(output_dir)!r} exists and is not a folder; choose another output_dir")
    for parent in output_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise FileExistsError(f"output_dir: {str(parent)!r} (a parent of {str(output_dir)!r}) is a file, not a folder")
    if resume and not list_checkpoints(output_dir):
        raise FileNotFoundError(f"--resume: no checkpoint under {output_dir / 'checkpoints'}")
    if not resume and list_checkpoints(output_dir):
        # A fresh run would mix its checkpoints with the old run's (and rotate its own away).
        raise ValueError(f"output_dir: {output_dir} already holds checkpoints of a run; pass --resume to continue "
                         "it, or choose another output_dir")
    if accelerator_is_main_process_env():
        # What a killed run left half-written in this folder (staging folders, temporary files).
        from ..atomic import remove_stale_staging
        from .checkpoints import remove_stale_checkpoint_staging

        remove_stale_staging(output_dir)
        remove_stale_checkpoint_staging(output_dir)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=None if config.tracker == "none" else config.tracker,
        project_dir=str(output_dir),
    )
    set_seed(config.seed)
    from ..data.checks import check_items, skipped_lines

    task = config.task
    train_set, skipped = check_items(load_dataset_spec(config.data["train"]), "data.train", skip_bad=skip_bad,
                                     same_size=True, task=task)
    validation_set, skipped_validation = None, []
    if config.data.get("validation"):
        validation_set, skipped_validation = check_items(load_dataset_spec(config.data["validation"]), "data.validation",
                                                         skip_bad=skip_bad, task=task)
    skipped = [(f"data.train {name}", reason) for name, reason in skipped] + [
        (f"data.validation {name}", reason) for name, reason in skipped_validation]
    if accelerator.is_main_process:
        for line in skipped_lines(skipped):
            print(line)
    if len(train_set) < config.batch_size * accelerator.num_processes:
        raise ValueError(f"batch_size: {config.batch_size} x {accelerator.num_processes} processes is more than "
                         f"the {len(train_set)} training samples")
    model = build_model(config.model, num_labels=getattr(train_set, "num_labels", None),
                        id2label=getattr(train_set, "id2label", None),
                        ignore_index=getattr(train_set, "ignore_index", None))
    mean, std = (torch.tensor(v, device=accelerator.device).view(1, -1, 1, 1) for v in model_pixel_normalisation(model))
    augmentation = _augmentation(config)
    trainable = [p for p in model.parameters() if p.requires_grad]  # the quality extractor is frozen
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = _scheduler(config, optimizer, accelerator.num_processes)
    sampler = EpochSeededSampler(len(train_set), config.seed)
    loader = DataLoader(IndexedDataset(train_set), batch_size=config.batch_size, sampler=sampler,
                        drop_last=True, collate_fn=collate)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    if config.tracker != "none":
        accelerator.init_trackers("quarf", config={k: v for k, v in vars(config).items() if isinstance(v, (int, float, str, bool))})
    run = TrainingRun(config=config, accelerator=accelerator, model=model, optimizer=optimizer, scheduler=scheduler,
                      loader=loader, train_set=train_set, validation_set=validation_set, mean=mean, std=std,
                      augmentation=augmentation, output_dir=output_dir, push_to_hub=push_to_hub, skipped=skipped)
    if resume:
        run.step = _resume(accelerator, output_dir)
    return run


def training_step(run: TrainingRun, batch: dict, epoch: int, batch_in_epoch: int) -> torch.Tensor:
    """One batch: degrade (seeded by its position), forward, backward and, at the end of an
    accumulation, the optimiser and scheduler steps. Returns the batch's loss."""
    config, accelerator, model = run.config, run.accelerator, run.model
    pixels, labels = batch["pixel_values"], batch["labels"]
    # All randomness of a batch (degradations, router noise, dropout) is seeded by its
    # position, not by the RNG's history: a resumed run draws exactly the same numbers
    # although creating the data iterator again consumes global random state.
    position = (config.seed, epoch, batch_in_epoch, accelerator.process_index)
    torch.manual_seed(_mixed_seed(*position, 1))
    if run.augmentation is not None:
        pixels = run.augmentation(pixels, generator=_generator(pixels.device, *position, 2))
    with accelerator.accumulate(model):
        with accelerator.autocast():
            out = model(pixel_values=(pixels - run.mean) / run.std, labels=labels)
        loss = out.loss
        if config.load_balancing_weight:
            aux = quarf_aux_loss(model)
            if aux is not None:
                loss = loss + config.load_balancing_weight * aux
        accelerator.backward(loss)
        if accelerator.sync_gradients and config.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad()
    return loss


def finish_training(run: TrainingRun, stopped_early: bool, seen_ids: list[int]) -> dict:
    """The final evaluation, the sample-id log, the exported model folder and ``summary.json``
    (main process only); returns the run summary."""
    config, accelerator = run.config, run.accelerator
    results = _evaluate(run.model, run.validation_set, config, accelerator) if run.validation_set is not None else {}
    if config.log_sample_ids:
        ids_path = run.output_dir / f"sample_ids_rank{accelerator.process_index}.json"
        write_text_atomic(ids_path, json.dumps(seen_ids))
    summary = {"steps": run.step, "stopped_early": stopped_early, "num_processes": accelerator.num_processes,
               "evaluation": results}
    if run.skipped:
        summary["skipped"] = [{"item": name, "reason": reason} for name, reason in run.skipped]
    if accelerator.is_main_process:
        from .export import export_model

        image_size = tuple(int(n) for n in run.train_set[0]["pixel_values"].shape[-2:])
        export_model(accelerator.unwrap_model(run.model), run.output_dir / "model", config, summary,
                     push_to_hub=run.push_to_hub, image_size=image_size)
        write_text_atomic(run.output_dir / "summary.json", json.dumps(summary, indent=2))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


def train(config: TrainConfig, resume: bool = False, push_to_hub: str | None = None, skip_bad: bool = False) -> dict:
    """Runs (or resumes) training; returns the run summary. Only the main process writes files.

    Resuming restores model, optimiser, scheduler and RNG states (``accelerator.load_state``) and
    continues the same data order: with the same seed it ends with the same weights as an
    uninterrupted run. The steps are :func:`setup_training`, :func:`training_step` per batch and
    :func:`finish_training`; this function is the loop over epochs, logging, periodic
    evaluation and checkpoints, and the time budget. ``skip_bad``: leave out (and list, in the
    summary's ``skipped``) unreadable items and masks of the wrong size instead of stopping.
    """
    run = setup_training(config, resume, push_to_hub, skip_bad)
    accelerator, loader = run.accelerator, run.loader
    # accelerate also steps at the end of the data, so a last partial accumulation counts as a step.
    steps_per_epoch = math.ceil(len(loader) / config.gradient_accumulation_steps)
    seen_ids = []
    start_time = time.monotonic()
    progress = tqdm(total=config.max_steps, initial=run.step, disable=not accelerator.is_local_main_process,
                    desc="training", mininterval=1.0)
    run.model.train()
    stopped_early = False
    while run.step < config.max_steps and not stopped_early:
        epoch, done_in_epoch = divmod(run.step, steps_per_epoch)
        loader.set_epoch(epoch)
        skip = done_in_epoch * config.gradient_accumulation_steps
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        for batch_in_epoch, batch in enumerate(epoch_loader, start=skip):
            if config.log_sample_ids:
                seen_ids.extend(batch["index"].tolist())
            loss = training_step(run, batch, epoch, batch_in_epoch)
            if not accelerator.sync_gradients:
                continue
            run.step += 1
            step = run.step
            progress.update(1)
            mean_loss = accelerator.reduce(loss.detach().float(), "mean").item()
            progress.set_postfix(loss=f"{mean_loss:.4f}")
            if config.tracker != "none":
                accelerator.log({"train/loss": mean_loss, "lr": run.scheduler.get_last_lr()[0]}, step=step)
            if (config.eval_every and step % config.eval_every == 0 and run.validation_set is not None
                    and step < config.max_steps):
                metrics = _evaluate(run.model, run.validation_set, config, accelerator)
                if config.tracker != "none":
                    accelerator.log(_flat_metrics(metrics), step=step)
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                save_checkpoint(accelerator, run.output_dir, step, config.keep_checkpoints)
            over_budget = config.max_minutes is not None and (time.monotonic() - start_time) > 60 * config.max_minutes
            # Every process must agree to stop at the same step.
            stopped_early = accelerator.reduce(torch.tensor(float(over_budget), device=accelerator.device), "sum").item() > 0
            if step >= config.max_steps or stopped_early:
                break
    progress.close()
    return finish_training(run, stopped_early, seen_ids)
