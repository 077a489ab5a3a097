"""The training config: a validated dataclass read from YAML; errors name the offending key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..models.checks import InputError, check_choice, check_int, check_int_list, check_number, check_probability, short_repr
from .settings import LoopSettings, check_section_keys
from ..tasks import MODEL_TYPES, TASKS

POLICIES = ("none", "degradation")


@dataclass
class TrainConfig(LoopSettings):
    """``train``'s settings: the loop's (:class:`~quarf_hf.training.settings.LoopSettings`: output_dir,
    seed, max_steps, batch_size, learning_rate, schedule, ...) and the task's below. Sections of the
    YAML file map to the dict fields.

    model: ``type`` (segformer | quarf_segformer | quarf_restoration); optionally ``hub_config``
        (a hub_configs/ entry), ``base`` (a checkpoint folder/Hub id) and ``revision`` (its commit), ``config`` (architecture
        overrides), ``quarf`` (block settings) and ``quality`` (extractor spec).
    data: ``train`` and ``validation`` dataset specs (see ``quarf_hf.data.load_dataset_spec``).
    augmentation: ``policy`` none | degradation, ``p`` (share of degraded images), ``corruptions``
        (names, or "all"), ``severities`` (``[low, high]``: an inclusive range; a longer list: exactly
        those), ``reference_size`` (the degradations' size rule: ``null`` keeps the tables' pixel
        values, 224 scales spatial parameters with the image's shorter side; see
        :mod:`quarf_hf.degradations.registry`).
    evaluation: ``corruptions``, ``severities`` and ``reference_size`` of the degraded validation sets.

    The routers' load-balancing weight is the model's setting: ``model.config.load_balancing_weight``
    (a model from ``model.base`` keeps its own unless ``model.config`` sets one).

    ``task`` follows from ``model.type`` (:mod:`quarf_hf.tasks`); a config may repeat it only as it
    is. Restoration (model ``quarf_restoration``) trains on clean crops (``{type: photos}`` or
    ``{type: images, path}``): each batch's ``pixel_values`` are degraded on the device and the
    clean ``labels`` are the target. Every ``crop_size`` of its data must be a multiple of the UNet's
    downsampling factor (``2 ** (levels - 1)``).
    """

    task: str | None = None  # derived from model.type
    model: dict = field(default_factory=lambda: {"type": "quarf_segformer"})
    data: dict = field(default_factory=dict)
    augmentation: dict = field(default_factory=lambda: {"policy": "none"})
    evaluation: dict = field(default_factory=lambda: {"corruptions": ["gaussian_noise", "defocus_blur"], "severities": [3]})
    eval_every: int = 0  # 0: only at the end
    log_sample_ids: bool = False  # write each process's sample ids (for checking sharding)
    limitations: str | None = None  # the model card's "Limitations" section (what the evaluation does not cover)

    LOOP_DEFAULTS: ClassVar[dict] = {"output_dir": "outputs/train", "max_steps": 100, "batch_size": 8,
                                     "learning_rate": 6e-4, "weight_decay": 0.01, "schedule": "poly"}

    def __post_init__(self):
        if self.task is not None:
            check_choice("task", self.task, TASKS)
        _check_types(self)
        if not isinstance(self.model, dict) or "type" not in self.model:
            raise InputError(f"model: expected a mapping with a 'type', found {short_repr(self.model)}")
        task = MODEL_TYPES[check_choice("model.type", self.model["type"], MODEL_TYPES)]
        if self.task not in (None, task):
            raise InputError(f"model.type: {self.model['type']!r} is a {task} model, but task is {self.task!r}")
        self.task = task
        if "train" not in self.data:
            raise InputError("data.train: expected a dataset spec, found none")
        check_section_keys("model", self.model, MODEL_KEYS)
        check_section_keys("augmentation", self.augmentation, AUGMENTATION_KEYS)
        check_section_keys("evaluation", self.evaluation, EVALUATION_KEYS)
        check_choice("augmentation.policy", self.augmentation.get("policy", "none"), POLICIES)
        check_probability("augmentation.p", self.augmentation.get("p", 0.5))
        # Checked now, not when they are first used: a typo must not cost a whole training run.
        _check_degradations("augmentation", self.augmentation.get("corruptions", "all"),
                            self.augmentation.get("severities", [1, 5]))
        _check_degradations("evaluation", self.evaluation.get("corruptions", []), self.evaluation.get("severities", [3]))
        for section in ("augmentation", "evaluation"):
            _check_reference_size(f"{section}.reference_size", getattr(self, section).get("reference_size"))
        if self.model["type"] == "quarf_restoration":  # the UNet's sides halve at each level
            _check_crop_sizes(self.model, self.data)
        check_int("eval_every", self.eval_every, minimum=0)
        super().__post_init__()  # the loop's settings

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        if "load_balancing_weight" in data:
            raise InputError("load_balancing_weight: a setting of the model now; write it as "
                             "model.config.load_balancing_weight (the model's loss adds the routers' balance term)")
        return super().from_dict(data)


def _check_types(config: "TrainConfig") -> None:
    """Values of the wrong type (a list for a number, a number for a mapping) name their key."""
    for name in ("model", "data", "augmentation", "evaluation"):
        value = getattr(config, name)
        if not isinstance(value, dict):
            raise InputError(f"{name}: expected a mapping (indented key: value lines), found {short_repr(value)}")
    for name in ("train", "validation"):
        spec = config.data.get(name)
        if spec is not None and not isinstance(spec, (dict, str)):
            raise InputError(f"data.{name}: expected a dataset spec (a mapping or a folder/Hub id), found {short_repr(spec)}")
    if config.limitations is not None and not isinstance(config.limitations, str):
        raise InputError(f"limitations: expected text or nothing, found {short_repr(config.limitations)}")
    if not isinstance(config.log_sample_ids, bool):
        raise InputError(f"log_sample_ids: expected true or false, found {short_repr(config.log_sample_ids)}")
    for key in ("base", "hub_config"):
        value = config.model.get(key)
        if value is not None and not isinstance(value, str):
            raise InputError(f"model.{key}: expected a folder or Hub id (text), found {short_repr(value)}")
    revision = config.model.get("revision")
    if revision is not None and (not isinstance(revision, str) or not config.model.get("base")):
        raise InputError(f"model.revision: expected the commit hash (text) of a Hub model.base, found {short_repr(revision)}"
                         + ("" if config.model.get("base") else " without a model.base"))
    for key in ("config", "quarf"):
        value = config.model.get(key)
        if value is not None and not isinstance(value, dict):
            raise InputError(f"model.{key}: expected a mapping, found {short_repr(value)}")
    weight = (config.model.get("config") or {}).get("load_balancing_weight")
    if weight is not None:
        check_number("model.config.load_balancing_weight", weight, 0)


MODEL_KEYS = ("type", "hub_config", "base", "revision", "config", "quarf", "quality", "quarf_stage")
AUGMENTATION_KEYS = ("policy", "p", "corruptions", "severities", "reference_size")
EVALUATION_KEYS = ("corruptions", "severities", "reference_size")


def _check_degradations(section: str, corruptions, severities) -> None:
    """A section's corruptions and severities, checked as everywhere else (quarf_hf.degradations)."""
    from ..degradations.registry import check_corruptions, check_severities

    check_corruptions(corruptions, f"{section}.corruptions", allow_empty=True)
    check_severities(severities, f"{section}.severities")


def _check_reference_size(name: str, value) -> None:
    from ..degradations.registry import check_reference_size

    check_reference_size(value, name)


def _check_crop_sizes(model: dict, data: dict) -> None:
    """Each photo dataset's ``crop_size`` is a multiple of the restoration UNet's downsampling factor
    (known from the config without loading anything; a ``base`` on the Hub is not checked here)."""
    from ..data.specs import DEFAULT_CROP_SIZE
    from .models import restoration_size_multiple

    multiple = restoration_size_multiple(model)
    if multiple is None:
        return
    for split in ("train", "validation"):
        spec = data.get(split)
        if not isinstance(spec, dict) or spec.get("type") not in ("photos", "images"):
            continue
        size = spec.get("crop_size", DEFAULT_CROP_SIZE)
        name = f"data.{split}.crop_size"
        sides = check_int_list(name, size) if isinstance(size, (list, tuple)) else [check_int(name, size)]
        if any(side % multiple for side in sides):
            fits = sorted({max(multiple, side - side % multiple) for side in sides})
            raise InputError(f"data.{split}.crop_size: expected a multiple of {multiple} (the restoration UNet halves "
                             f"the size {multiple.bit_length() - 1} times), found {short_repr(size)}; e.g. {fits[0]}")


def load_train_config(path, **overrides) -> TrainConfig:
    """A YAML training config, or the name of a hub_configs/ variant with a ``training`` recipe
    (``quarf-restoration-photos``): its recipe, the architecture it publishes (``model.hub_config``)
    and, by default, ``output_dir: outputs/<name>``; the model card is titled with its name."""
    from ..hub.variants import HUB_CONFIGS
    from ..yaml_files import read_yaml_mapping

    path = Path(path)
    published = HUB_CONFIGS / f"{path.name}.yaml"
    if not path.is_file() and published.is_file():
        path = published
    data = read_yaml_mapping(path, "CONFIG")
    if path.resolve().parent == HUB_CONFIGS.resolve() and "training" in data and data.get("model") == "quarf_restoration":
        data = _published_recipe(data)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(data)


def _published_recipe(variant: dict) -> dict:
    """A hub_configs/ variant's ``training`` section as a training config."""
    recipe = variant["training"]
    if not isinstance(recipe, dict):
        raise InputError(f"CONFIG: training: expected a mapping (the recipe), found {short_repr(recipe)}")
    recipe = dict(recipe)
    model = {"type": variant["model"], "hub_config": variant["name"], "quality": variant.get("quality", "brisque")}
    if "model" in recipe:
        raise InputError("CONFIG: training.model: the architecture is the variant's own (unet, quarf, quality); "
                         "remove training.model")
    recipe["model"] = model
    recipe.setdefault("output_dir", f"outputs/{variant['name']}")
    recipe.setdefault("name", variant["name"])
    return recipe
