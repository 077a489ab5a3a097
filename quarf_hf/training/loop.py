"""The one accelerate training loop (one or many processes, CPU or GPUs) behind ``train`` and
``train-quality``.

What differs between the two is a :class:`Task`: its data, its model, the loss of one batch and
what is written at the end. Everything else is here, once: the output-folder checks and the
clean-up of what a killed run left, resume past damaged checkpoints, the optimiser and schedule,
gradient accumulation, position-seeded batches (a resumed run is bit-identical), the progress
bar, tracker logging, checkpoint rotation, the time budget and ``summary.json``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import get_scheduler

from ..atomic import write_text_atomic
from ..models.checks import InputError
from ..outputs import check_output_folder
from ..progress import progress_bar
from .checkpoints import checkpoint_problem, checkpoint_step, list_checkpoints, save_checkpoint
from .seeds import EpochSeededSampler, mixed_seed
from .settings import LoopSettings


class Task:
    """The task-specific part of a training run; :func:`run_training` calls these in this order.

    ``config`` is the task's training config: a :class:`~.settings.LoopSettings` (all the loop
    reads) with the task's own settings added.
    """

    description = "training"  # the progress bar's label
    config: LoopSettings = None
    num_workers = 0  # the data loader's worker processes
    unused_parameters = False  # True when some parameters may get no gradient in a step (DDP must know)

    def load_data(self, accelerator) -> torch.utils.data.Dataset:
        """The training items, every one checked (a bad item stops the run here, named)."""
        raise NotImplementedError

    def build_model(self, dataset, accelerator) -> torch.nn.Module:
        """The model to train (called right after ``set_seed(config.seed)``: its initial weights follow the seed)."""
        raise NotImplementedError

    def collate(self, samples: list) -> dict:
        raise NotImplementedError

    def loss(self, run: "TrainingRun", batch: dict, position: tuple) -> torch.Tensor:
        """The loss of one batch (forward under ``run.accelerator.autocast()``). ``position`` is
        ``(seed, epoch, batch_in_epoch, process_index)``: seed every draw from it (see :mod:`.seeds`)."""
        raise NotImplementedError

    def after_step(self, run: "TrainingRun") -> None:
        """After each optimiser step (``run.step`` done), before the checkpoint: e.g. a periodic evaluation."""

    def finish(self, run: "TrainingRun", summary: dict) -> None:
        """At the end, on every process: add to ``summary`` and write the model folder (main process only)."""
        raise NotImplementedError


@dataclass
class TrainingRun:
    """Everything :func:`setup_training` prepares: the task, the accelerator, the prepared model,
    optimiser, scheduler and data loader, the training items and the progress so far."""

    task: Task
    config: LoopSettings
    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    loader: DataLoader
    dataset: object
    output_dir: Path
    push_to_hub: str | None
    step: int = 0  # optimiser steps done (restored by resume)
    losses: list = field(default_factory=list)  # the mean loss over processes of each step of this session
    started: float = field(default_factory=time.monotonic)


def _scheduler(config: LoopSettings, optimizer, num_processes: int):
    # accelerate's prepared scheduler steps once per process for every optimiser step, so the
    # schedule is laid out over max_steps x num_processes of its own steps.
    warmup, total = config.warmup_steps * num_processes, config.max_steps * num_processes
    if config.schedule == "poly":
        return get_scheduler("polynomial", optimizer, num_warmup_steps=warmup, num_training_steps=total,
                             scheduler_specific_kwargs={"power": 1.0})
    name = "cosine" if config.schedule == "cosine" else "constant_with_warmup"
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total)


def accelerator_is_main_process_env() -> bool:
    """Rank 0 (or a single process), before the Accelerator exists: only it cleans the folder."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0


RUN_OUTPUTS = ("model", "summary.json", "checkpoints")  # what a training run writes into output_dir


def check_output_dir(output_dir: Path, resume: bool, overwrite: bool = False) -> None:
    """A folder (not a file) whose outputs (:data:`RUN_OUTPUTS`) are no links, and hold an earlier
    run exactly when resuming (or when ``overwrite``: its checkpoints are then removed); then
    removes what a killed run left half-written in it (the package's marked staging only)."""
    if resume and not list_checkpoints(output_dir):
        check_output_folder(output_dir, RUN_OUTPUTS, "output_dir", overwrite=True)
        raise FileNotFoundError(f"--resume: no checkpoint under {output_dir / 'checkpoints'}")
    # A fresh run would replace the old run's model, or mix its checkpoints with the old run's.
    check_output_folder(output_dir, RUN_OUTPUTS, "output_dir", overwrite=resume or overwrite,
                        to_replace="pass --resume to continue that run, or --overwrite (overwrite: true) to replace it")
    if accelerator_is_main_process_env():
        from ..atomic import remove_stale_staging
        from .checkpoints import remove_stale_checkpoint_staging

        remove_stale_staging(output_dir)
        remove_stale_checkpoint_staging(output_dir)
        if overwrite and not resume:
            for checkpoint in list_checkpoints(output_dir):  # the old run's, by the names save_checkpoint gives
                shutil.rmtree(checkpoint)


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
    raise InputError(f"--resume: every checkpoint under {output_dir / 'checkpoints'} is damaged "
                     f"({', '.join(p.name for p in skipped)}); start a new run in another output_dir")


# Config key -> the environment variable that `accelerate launch` (its flags or its config file) sets.
ACCELERATE_SETTINGS = {"mixed_precision": "ACCELERATE_MIXED_PRECISION",
                       "gradient_accumulation_steps": "ACCELERATE_GRADIENT_ACCUMULATION_STEPS"}


def accelerator_settings(config: LoopSettings, environ=None) -> tuple[dict, list[str]]:
    """The ``Accelerator`` arguments for ``config``, and a line for every setting the config overrides.

    A setting the YAML leaves unset (`None`) is not passed, so accelerate's own value applies
    (``accelerate launch --mixed_precision bf16``, its config file, else its default: "no", 1).
    A setting in both places: the YAML's wins, and when the values differ a line says so.
    Gradient accumulation goes in as a ``GradientAccumulationPlugin``: accelerate would let its
    environment variable win over a plain ``gradient_accumulation_steps=`` argument.
    """
    from accelerate.utils import GradientAccumulationPlugin

    environ = os.environ if environ is None else environ
    kwargs, notes = {}, []
    for key, variable in ACCELERATE_SETTINGS.items():
        value = getattr(config, key)
        if value is None:
            continue
        launched = environ.get(variable)
        if launched is not None and str(launched).lower() != str(value).lower():
            notes.append(f"{key}: the config's {value!r} overrides accelerate's {launched!r} ({variable})")
        if key == "gradient_accumulation_steps":
            kwargs["gradient_accumulation_plugin"] = GradientAccumulationPlugin(num_steps=value)
        else:
            kwargs[key] = value
    return kwargs, notes


def setup_training(task: Task, resume: bool = False, push_to_hub: str | None = None) -> TrainingRun:
    """Checks the output folder (and the token when pushing), then builds the accelerator, the
    task's data and model, the optimiser and scheduler, prepares them and, with ``resume``,
    restores the newest intact checkpoint (skipping damaged newer ones, saying which and why)."""
    config = task.config
    push_to_hub = push_to_hub or config.push_to_hub
    if push_to_hub:
        from ..hub.publish import resolve_token

        resolve_token(None)  # no token: fail now, not after training
    output_dir = Path(config.output_dir)
    check_output_dir(output_dir, resume, config.overwrite)
    settings, notes = accelerator_settings(config)
    if task.unused_parameters:
        # Hard routing runs one expert per image: experts no image of a batch chose get no gradient,
        # which DDP must be told about (else it waits for their gradients and fails).
        from accelerate.utils import DistributedDataParallelKwargs

        settings["kwargs_handlers"] = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    accelerator = Accelerator(**settings, log_with=None if config.tracker == "none" else config.tracker,
                              project_dir=str(output_dir))
    if accelerator.is_main_process:
        for line in notes:
            print(line, flush=True)
    set_seed(config.seed)  # data a task draws at random follows the seed, not the RNG's history
    dataset = task.load_data(accelerator)
    if len(dataset) < config.batch_size * accelerator.num_processes:
        raise InputError(f"batch_size: {config.batch_size} x {accelerator.num_processes} processes is more than "
                         f"the {len(dataset)} training samples")
    set_seed(config.seed)  # again: the initial weights follow the seed only, however much loading drew
    model = task.build_model(dataset, accelerator)
    trainable = [p for p in model.parameters() if p.requires_grad]  # a quality extractor stays frozen
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = _scheduler(config, optimizer, accelerator.num_processes)
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=EpochSeededSampler(len(dataset), config.seed),
                        drop_last=True, collate_fn=task.collate, num_workers=task.num_workers)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    if config.tracker != "none":
        accelerator.init_trackers("quarf", config={k: v for k, v in vars(config).items() if isinstance(v, (int, float, str, bool))})
    run = TrainingRun(task=task, config=config, accelerator=accelerator, model=model, optimizer=optimizer,
                      scheduler=scheduler, loader=loader, dataset=dataset, output_dir=output_dir, push_to_hub=push_to_hub)
    if resume:
        run.step = _resume(accelerator, output_dir)
    return run


def training_step(run: TrainingRun, batch: dict, epoch: int, batch_in_epoch: int) -> torch.Tensor:
    """One batch: the task's loss, backward and, at the end of an accumulation, clipping and the
    optimiser and scheduler steps. Returns the batch's loss."""
    config, accelerator, model = run.config, run.accelerator, run.model
    # All randomness of a batch (degradations, crops, router noise, dropout) is seeded by its
    # position, not by the RNG's history: a resumed run draws exactly the same numbers
    # although creating the data iterator again consumes global random state.
    position = (config.seed, epoch, batch_in_epoch, accelerator.process_index)
    torch.manual_seed(mixed_seed(*position, 1))
    with accelerator.accumulate(model):
        loss = run.task.loss(run, batch, position)
        accelerator.backward(loss)
        if accelerator.sync_gradients and config.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad()
    return loss


def finish_training(run: TrainingRun, stopped_early: bool) -> dict:
    """The task's end (evaluation, export) and ``summary.json`` (main process only); returns the summary."""
    accelerator = run.accelerator
    summary = {"steps": run.step, "stopped_early": stopped_early, "num_processes": accelerator.num_processes,
               "mixed_precision": accelerator.mixed_precision,
               "gradient_accumulation_steps": accelerator.gradient_accumulation_steps}
    run.task.finish(run, summary)
    if accelerator.is_main_process:
        write_text_atomic(run.output_dir / "summary.json", json.dumps(summary, indent=2))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


def run_training(task: Task, resume: bool = False, push_to_hub: str | None = None) -> dict:
    """Runs (or resumes) ``task``'s training; returns the run summary. Only the main process writes files.

    Resuming restores model, optimiser, scheduler and RNG states (``accelerator.load_state``) and
    continues the same data order: with the same seed it ends with the same weights as an
    uninterrupted run. The steps are :func:`setup_training`, :func:`training_step` per batch and
    :func:`finish_training`; this function is the loop over epochs, logging, the task's
    ``after_step``, checkpoints and the time budget (``max_minutes``: stop gracefully).
    """
    run = setup_training(task, resume, push_to_hub)
    config, accelerator, loader = run.config, run.accelerator, run.loader
    # The YAML's value, else accelerate's (launch flag / config file); accelerate also steps at the
    # end of the data, so a last partial accumulation counts as a step.
    accumulation = accelerator.gradient_accumulation_steps
    steps_per_epoch = math.ceil(len(loader) / accumulation)
    run.started = time.monotonic()
    progress = progress_bar(total=config.max_steps, initial=run.step, disable=not accelerator.is_local_main_process,
                            desc=task.description, mininterval=1.0)
    run.model.train()
    stopped_early = False
    if resume and run.step >= config.max_steps and accelerator.is_main_process:
        print(f"--resume: the checkpoint is at step {run.step}, max_steps is {config.max_steps}: nothing left to "
              f"train; the model is exported as it was at step {run.step} (raise --max-steps to train on)", flush=True)
    while run.step < config.max_steps and not stopped_early:
        epoch, done_in_epoch = divmod(run.step, steps_per_epoch)
        loader.set_epoch(epoch)
        if hasattr(run.dataset, "set_epoch"):  # accelerate passes the epoch to the sampler only
            run.dataset.set_epoch(epoch)
        skip = done_in_epoch * accumulation
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        for batch_in_epoch, batch in enumerate(epoch_loader, start=skip):
            loss = training_step(run, batch, epoch, batch_in_epoch)
            if not accelerator.sync_gradients:
                continue
            run.step += 1
            step = run.step
            progress.update(1)
            mean_loss = accelerator.reduce(loss.detach().float(), "mean").item()
            run.losses.append(mean_loss)
            progress.set_postfix(loss=f"{mean_loss:.4f}")
            if config.tracker != "none":
                accelerator.log({"train/loss": mean_loss, "lr": run.scheduler.get_last_lr()[0]}, step=step)
            task.after_step(run)
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                save_checkpoint(accelerator, run.output_dir, step, config.keep_checkpoints)
            over_budget = config.max_minutes is not None and (time.monotonic() - run.started) > 60 * config.max_minutes
            # Every process must agree to stop at the same step.
            stopped_early = accelerator.reduce(torch.tensor(float(over_budget), device=accelerator.device), "sum").item() > 0
            if step >= config.max_steps or stopped_early:
                break
    progress.close()
    return finish_training(run, stopped_early)
