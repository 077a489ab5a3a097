"""The training config: a validated dataclass read from YAML; errors name the offending key."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

TASKS = ("segmentation", "restoration")
MODEL_TYPES = {"segformer": "segmentation", "quarf_segformer": "segmentation", "quarf_restoration": "restoration"}
POLICIES = ("none", "degradation")
SCHEDULES = ("poly", "cosine", "constant")
PRECISIONS = ("no", "bf16", "fp16")
# "none" and every tracker accelerate can log to (its own list, so a new one needs no change here).
TRACKERS = ("none", "tensorboard", "wandb", "mlflow", "aim", "comet_ml", "clearml", "dvclive", "swanlab", "trackio")


@dataclass
class TrainConfig:
    """Everything a run needs. Sections of the YAML file map to the dict fields.

    model: ``type`` (segformer | quarf_segformer | quarf_restoration); optionally ``hub_config``
        (a hub_configs/ entry), ``base`` (a checkpoint folder/Hub id) and ``revision`` (its commit), ``config`` (architecture
        overrides), ``quarf`` (block settings) and ``quality`` (extractor spec).
    data: ``train`` and ``validation`` dataset specs (see ``quarf_hf.data.load_dataset_spec``).
    augmentation: ``policy`` none | degradation, ``p`` (share of degraded images), ``corruptions``
        (names, or "all"), ``severities`` (``[low, high]``: an inclusive range; a longer list: exactly those).
    evaluation: ``corruptions`` and ``severities`` of the degraded validation sets.
    """

    task: str = "segmentation"
    model: dict = field(default_factory=lambda: {"type": "quarf_segformer"})
    data: dict = field(default_factory=dict)
    augmentation: dict = field(default_factory=lambda: {"policy": "none"})
    evaluation: dict = field(default_factory=lambda: {"corruptions": ["gaussian_noise", "defocus_blur"], "severities": [3]})
    output_dir: str = "outputs/train"
    seed: int = 0
    max_steps: int = 100
    max_minutes: float | None = None  # wall-clock budget: training stops gracefully at it
    batch_size: int = 8
    gradient_accumulation_steps: int | None = None  # None: accelerate's (launch flag, config file), else 1
    max_grad_norm: float | None = 1.0
    learning_rate: float = 6e-4
    weight_decay: float = 0.01
    schedule: str = "poly"
    warmup_steps: int = 0
    mixed_precision: str | None = None  # None: accelerate's (launch flag, config file), else "no"
    load_balancing_weight: float = 0.0
    eval_every: int = 0  # 0: only at the end
    checkpoint_every: int = 0  # 0: no intermediate checkpoints
    keep_checkpoints: int = 2
    tracker: str = "none"
    push_to_hub: str | None = None
    log_sample_ids: bool = False  # write each process's sample ids (for checking sharding)

    def __post_init__(self):
        def check(name, value, allowed):
            if value not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, found {value!r}")

        check("task", self.task, TASKS)
        _check_types(self)
        if not isinstance(self.model, dict) or "type" not in self.model:
            raise ValueError(f"model: expected a mapping with a 'type', found {self.model!r}")
        check("model.type", self.model["type"], tuple(MODEL_TYPES))
        if MODEL_TYPES[self.model["type"]] != self.task:
            raise ValueError(f"model.type: {self.model['type']!r} is a {MODEL_TYPES[self.model['type']]} model, but task is {self.task!r}")
        if "train" not in self.data:
            raise ValueError("data.train: expected a dataset spec, found none")
        _check_keys("model", self.model, MODEL_KEYS)
        _check_keys("augmentation", self.augmentation, AUGMENTATION_KEYS)
        _check_keys("evaluation", self.evaluation, EVALUATION_KEYS)
        check("augmentation.policy", self.augmentation.get("policy", "none"), POLICIES)
        p = _number("augmentation.p", self.augmentation.get("p", 0.5))
        if not 0 <= p <= 1:
            raise ValueError(f"augmentation.p: expected a probability in [0, 1], found {p!r}")
        # Checked now, not when they are first used: a typo must not cost a whole training run.
        _check_degradations("augmentation", self.augmentation.get("corruptions", "all"),
                            self.augmentation.get("severities", [1, 5]))
        _check_degradations("evaluation", self.evaluation.get("corruptions", []), self.evaluation.get("severities", [3]))
        check("schedule", self.schedule, SCHEDULES)
        if self.mixed_precision is not None:
            check("mixed_precision", self.mixed_precision, PRECISIONS)
        check("tracker", self.tracker, TRACKERS)
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "keep_checkpoints"):
            value = getattr(self, name)
            if value is None and name == "gradient_accumulation_steps":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, found {value!r}")
        for name in ("warmup_steps", "eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an integer >= 0, found {value!r}")
        # YAML reads 6e-4 (no dot) as a string: accept it, name the key when it is no number.
        self.learning_rate = _number("learning_rate", self.learning_rate)
        self.weight_decay = _number("weight_decay", self.weight_decay)
        self.load_balancing_weight = _number("load_balancing_weight", self.load_balancing_weight)
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate: expected a positive number, found {self.learning_rate!r}")
        if self.weight_decay < 0 or self.load_balancing_weight < 0:
            raise ValueError(f"weight_decay, load_balancing_weight: expected numbers >= 0, found "
                             f"{self.weight_decay!r}, {self.load_balancing_weight!r}")
        if self.max_minutes is not None:
            self.max_minutes = _number("max_minutes", self.max_minutes)  # "5" would repeat a string later
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes: expected a positive number of minutes, found {self.max_minutes!r}")

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return dataclass_from_dict(cls, data)


def dataclass_from_dict(cls, data: dict):
    """``cls(**data)`` for a config dataclass, refusing keys it does not have (a typo names itself)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"config: unknown keys {unknown}; expected some of {sorted(known)}")
    return cls(**data)


def _check_types(config: "TrainConfig") -> None:
    """Values of the wrong type (a list for a number, a number for a mapping) name their key."""
    for name in ("model", "data", "augmentation", "evaluation"):
        value = getattr(config, name)
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a mapping (indented key: value lines), found {value!r}")
    for name in ("train", "validation"):
        spec = config.data.get(name)
        if spec is not None and not isinstance(spec, (dict, str)):
            raise ValueError(f"data.{name}: expected a dataset spec (a mapping or a folder/Hub id), found {spec!r}")
    if not isinstance(config.output_dir, str) or not config.output_dir.strip():
        raise ValueError(f"output_dir: expected a folder path, found {config.output_dir!r}")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int):
        raise ValueError(f"seed: expected an integer, found {config.seed!r}")
    for name in ("push_to_hub",):
        value = getattr(config, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name}: expected a Hub repo id (text) or nothing, found {value!r}")
    if not isinstance(config.log_sample_ids, bool):
        raise ValueError(f"log_sample_ids: expected true or false, found {config.log_sample_ids!r}")
    if config.max_grad_norm is not None:
        config.max_grad_norm = _number("max_grad_norm", config.max_grad_norm)
        if config.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm: expected a positive number or null, found {config.max_grad_norm!r}")
    for key in ("base", "hub_config"):
        value = config.model.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"model.{key}: expected a folder or Hub id (text), found {value!r}")
    revision = config.model.get("revision")
    if revision is not None and (not isinstance(revision, str) or not config.model.get("base")):
        raise ValueError(f"model.revision: expected the commit hash (text) of a Hub model.base, found {revision!r}"
                         + ("" if config.model.get("base") else " without a model.base"))
    for key in ("config", "quarf"):
        value = config.model.get(key)
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"model.{key}: expected a mapping, found {value!r}")


MODEL_KEYS = ("type", "hub_config", "base", "revision", "config", "quarf", "quality", "quarf_stage")
AUGMENTATION_KEYS = ("policy", "p", "corruptions", "severities")
EVALUATION_KEYS = ("corruptions", "severities")


def _check_keys(section: str, value, allowed) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{section}: expected a mapping, found {value!r}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValueError(f"{section}: unknown keys {unknown}; expected some of {list(allowed)}")


def _number(name: str, value) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, found {value!r}") from None


def _check_degradations(section: str, corruptions, severities) -> None:
    """A section's corruptions and severities, checked as everywhere else (quarf_hf.degradations);
    a wrong type is reported as a ValueError, like every other config error."""
    from ..degradations.registry import check_corruptions, check_severities

    try:
        check_corruptions(corruptions, f"{section}.corruptions", allow_empty=True)
        check_severities(severities, f"{section}.severities")
    except TypeError as err:
        raise ValueError(str(err)) from None


def load_train_config(path, **overrides) -> TrainConfig:
    from ..yaml_files import read_yaml_mapping

    data = read_yaml_mapping(Path(path), "CONFIG")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(data)
