"""The training loop's settings, defined and checked once: every training config inherits them.

:class:`LoopSettings` holds what :func:`quarf_hf.training.loop.run_training` reads: the output
folder, the seed, the steps and time budget, the batch and accumulation, the optimiser and its
schedule, precision, checkpoints, the tracker, the Hub push and the card's title. ``train``'s
:class:`~quarf_hf.training.TrainConfig` and ``train-quality``'s
:class:`~quarf_hf.quality_training.QualityTrainConfig` add their task's own settings and choose the
defaults (``LOOP_DEFAULTS``) of the few loop settings whose default differs by task.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from ..models.checks import InputError, check_choice, check_int, check_number, short_repr

SCHEDULES = ("poly", "cosine", "constant")
PRECISIONS = ("no", "bf16", "fp16")
# "none" and every tracker accelerate can log to (its own list, so a new one needs no change here).
TRACKERS = ("none", "tensorboard", "wandb", "mlflow", "aim", "comet_ml", "clearml", "dvclive", "swanlab", "trackio")


class _TaskDefault:
    """The default of a loop setting that each training config chooses (its ``LOOP_DEFAULTS``)."""

    def __repr__(self) -> str:
        return "TASK_DEFAULT"


TASK_DEFAULT = _TaskDefault()


@dataclass
class LoopSettings:
    """The settings of the one training loop; a training config inherits them and adds its task's.

    Settings marked ``TASK_DEFAULT`` take the training config's ``LOOP_DEFAULTS`` when not given.
    ``None`` for ``gradient_accumulation_steps`` or ``mixed_precision`` leaves them to accelerate
    (its launch flags or config file, else 1 and "no"); for ``max_minutes``, no time budget; for
    ``max_grad_norm``, no clipping. Every value is checked here, each error naming its key.
    """

    # The task's defaults of the settings below marked TASK_DEFAULT.
    LOOP_DEFAULTS: ClassVar[dict] = {}

    output_dir: str = TASK_DEFAULT
    overwrite: bool = False  # replace an earlier run's model/, summary.json and checkpoints in output_dir
    seed: int = 0
    max_steps: int = TASK_DEFAULT
    max_minutes: float | None = None  # wall-clock budget: training stops gracefully at it
    batch_size: int = TASK_DEFAULT
    gradient_accumulation_steps: int | None = None  # None: accelerate's (launch flag, config file), else 1
    max_grad_norm: float | None = 1.0
    learning_rate: float = TASK_DEFAULT
    weight_decay: float = TASK_DEFAULT
    schedule: str = TASK_DEFAULT  # one of SCHEDULES
    warmup_steps: int = 0
    mixed_precision: str | None = None  # None: accelerate's (launch flag, config file), else "no"
    checkpoint_every: int = 0  # 0: no intermediate checkpoints
    keep_checkpoints: int = 2
    tracker: str = "none"
    push_to_hub: str | None = None
    name: str | None = None  # the model card's title (a published variant's name); default: the folder's

    def __post_init__(self):
        for key, value in self.LOOP_DEFAULTS.items():
            if getattr(self, key) is TASK_DEFAULT:
                setattr(self, key, value)
        if not isinstance(self.output_dir, str) or not self.output_dir.strip():
            raise InputError(f"output_dir: expected a folder path, found {short_repr(self.output_dir)}")
        if not isinstance(self.overwrite, bool):
            raise InputError(f"overwrite: expected true or false, found {short_repr(self.overwrite)}")
        for key in ("push_to_hub", "name"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise InputError(f"{key}: expected text or nothing, found {short_repr(value)}")
        check_int("seed", self.seed, minimum=None)
        for key in ("max_steps", "batch_size", "keep_checkpoints"):
            check_int(key, getattr(self, key))
        if self.gradient_accumulation_steps is not None:
            check_int("gradient_accumulation_steps", self.gradient_accumulation_steps)
        for key in ("warmup_steps", "checkpoint_every"):
            check_int(key, getattr(self, key), minimum=0)
        # YAML reads 6e-4 (no dot) as a string: check_number accepts it (and stores the float, since
        # "5" would repeat a string later) and names the key when it is no number.
        self.learning_rate = check_number("learning_rate", self.learning_rate, 0, exclusive=True)
        self.weight_decay = check_number("weight_decay", self.weight_decay, 0)
        for key in ("max_minutes", "max_grad_norm"):
            if getattr(self, key) is not None:
                setattr(self, key, check_number(key, getattr(self, key), 0, exclusive=True))
        check_choice("schedule", self.schedule, SCHEDULES)
        if self.mixed_precision is not None:
            check_choice("mixed_precision", self.mixed_precision, PRECISIONS)
        check_choice("tracker", self.tracker, TRACKERS)

    @classmethod
    def from_dict(cls, data: dict):
        """``cls(**data)``, refusing keys the config does not have (a typo names itself)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"config: unknown keys {unknown}; expected some of {sorted(known)}")
        return cls(**data)


def check_section_keys(section: str, value, allowed) -> None:
    """A config section (``model``, ``augmentation``, ...) is a mapping of only the ``allowed`` keys."""
    if not isinstance(value, dict):
        raise InputError(f"{section}: expected a mapping, found {short_repr(value)}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise InputError(f"{section}: unknown keys {unknown}; expected some of {list(allowed)}")
