"""The quality-encoder training config: a validated dataclass read from YAML or a hub_configs/ variant."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..models.checks import InputError, check_int, check_int_list, check_number, check_path_name, check_probability, short_repr
from ..training.settings import LoopSettings, check_section_keys

MODEL_KEYS = ("config", "base")
PROBE_KEYS = ("data", "corruptions", "severities", "image_size")
# A CPU-sized encoder: what a config without ``model.config`` trains.
SMALL_CONTRIQUE = {"embedding_size": 16, "hidden_sizes": [16, 32, 64, 128], "depths": [1, 1, 1, 1], "projection_dim": 64}


@dataclass
class QualityTrainConfig(LoopSettings):
    """``train-quality``'s settings (CONTRIQUE's contrastive objective): the loop's
    (:class:`~quarf_hf.training.settings.LoopSettings`: output_dir, seed, max_steps, batch_size,
    learning_rate, schedule, ...) and the task's below.

    model: ``config`` (a :class:`~quarf_hf.ContriqueConfig` as a dict: ResNet depth and width;
        ``{}`` for CONTRIQUE's ResNet-50) or ``base`` (a ContriqueModel folder/Hub id to start from).
    data: ``train``, one dataset spec or a list of them: ``"quarf-shapes"``, any
        :func:`quarf_hf.data.load_dataset_spec` dict, or ``{"type": "images", "path": FOLDER}``
        (a folder of photos; see :mod:`quarf_hf.quality_training.data`).
    image_size: each training image is a square tile of this size; crop_size: the two crops
        (views) taken from each (degraded) tile.
    corruptions / severities: the synthetic classes: every (corruption, severity) pair, plus the
        pristine image as one more class when ``clean_class``.
    images_per_class: synthetic images in a batch that share a class (positives across images).
    authentic_fraction: share of each batch left undegraded with each image its own class
        (CONTRIQUE's authentic part); 1.0 trains on the data's own distortions only.
    probe: held-out ``corruptions`` and ``data`` measured at the end (see ``quarf-hf evaluate-quality``).
    """

    model: dict = field(default_factory=lambda: {"config": dict(SMALL_CONTRIQUE)})
    data: dict = field(default_factory=dict)
    image_size: int = 128
    crop_size: int = 96
    corruptions: list | str = "all"
    severities: list = field(default_factory=lambda: [1, 2, 3, 4, 5])
    clean_class: bool = True
    images_per_class: int = 2
    authentic_fraction: float = 0.0
    temperature: float = 0.1
    num_workers: int = 0  # the data loader's worker processes
    probe: dict | None = None

    LOOP_DEFAULTS: ClassVar[dict] = {"output_dir": "outputs/train-quality", "max_steps": 200, "batch_size": 16,
                                     "learning_rate": 1e-3, "weight_decay": 1e-4, "schedule": "cosine"}

    def __post_init__(self):
        from ..degradations import CORRUPTIONS

        super().__post_init__()  # the loop's settings first: batch_size is used below
        check_section_keys("model", self.model, MODEL_KEYS)
        if "config" in self.model and not isinstance(self.model["config"], dict):
            raise InputError(f"model.config: expected a mapping of ContriqueConfig settings, found {short_repr(self.model['config'])}")
        if not isinstance(self.data, dict) or "train" not in self.data:
            raise InputError(f"data.train: expected a dataset spec or a list of them, found {short_repr(self.data)}")
        check_section_keys("data", self.data, ("train",))
        for name in ("image_size", "crop_size", "images_per_class"):
            check_int(name, getattr(self, name))
        check_int("num_workers", self.num_workers, minimum=0)
        if self.crop_size > self.image_size:
            raise InputError(f"crop_size: expected at most image_size ({self.image_size}), found {self.crop_size}")
        if self.corruptions != "all":
            names = self.corruptions if isinstance(self.corruptions, list) else None
            if not names or any(n not in CORRUPTIONS for n in names):
                raise InputError(f"corruptions: expected 'all' or a list of names from {sorted(CORRUPTIONS)}, "
                                 f"found {short_repr(self.corruptions)}")
        check_int_list("severities", self.severities, 1, 5, distinct=True)
        self.authentic_fraction = check_probability("authentic_fraction", self.authentic_fraction)
        synthetic = self.batch_size - round(self.batch_size * self.authentic_fraction)
        if synthetic % self.images_per_class:
            raise InputError(f"images_per_class: the {synthetic} synthetic images of a batch of {self.batch_size} "
                             f"must split into groups of {self.images_per_class}")
        if synthetic // self.images_per_class > self.num_classes:
            raise InputError(f"batch_size: {synthetic // self.images_per_class} classes per batch needed but only "
                             f"{self.num_classes} synthetic classes exist; lower batch_size or raise images_per_class")
        self.temperature = check_number("temperature", self.temperature, 0, exclusive=True)
        if self.probe is not None:
            check_section_keys("probe", self.probe, PROBE_KEYS)
            probe_kinds = self.probe.get("corruptions", [])
            if not isinstance(probe_kinds, list) or any(n not in CORRUPTIONS for n in probe_kinds):
                raise InputError(f"probe.corruptions: expected a list of names from {sorted(CORRUPTIONS)}, found {short_repr(probe_kinds)}")
            shared = sorted(set(probe_kinds) & set(self.corruption_names))
            if shared:
                raise InputError(f"probe.corruptions: {shared} are also trained on; the probe measures held-out kinds")
        # The model config is checked now, not after the data is loaded.
        self.contrique_config()

    @property
    def corruption_names(self) -> list[str]:
        from ..degradations import CORRUPTIONS

        return list(CORRUPTIONS) if self.corruptions == "all" else list(self.corruptions)

    @property
    def num_classes(self) -> int:
        return len(self.corruption_names) * len(self.severities) + int(bool(self.clean_class))

    def contrique_config(self):
        from ..models.configuration_contrique import ContriqueConfig

        if self.model.get("base"):
            return None
        settings = self.model.get("config", {})
        try:
            config = ContriqueConfig(**{k: v for k, v in settings.items() if k != "model_type"})
        except (TypeError, ValueError) as err:
            raise InputError(f"model.config: {err}") from None
        if self.crop_size < config.min_image_size:
            raise InputError(f"crop_size: expected at least the model's min_image_size {config.min_image_size}, "
                             f"found {self.crop_size}")
        return config


def load_quality_config(path, **overrides) -> QualityTrainConfig:
    """A YAML training config, or a hub_configs/ variant name (its ``training`` section)."""
    from ..hub.variants import HUB_CONFIGS
    from ..yaml_files import read_yaml_mapping

    path = Path(path)
    if not path.is_file() and (HUB_CONFIGS / f"{path.name}.yaml").is_file():
        path = HUB_CONFIGS / f"{path.name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"CONFIG: no such file {str(path)!r}, nor a hub_configs/ variant of that name")
    data = read_yaml_mapping(path, "CONFIG")
    if "training" in data and "model" in data and data.get("model") == "contrique":
        # A published variant: its recipe plus the architecture it publishes.
        recipe = dict(data["training"])
        recipe.setdefault("model", {"config": dict(data.get("contrique", {}))})
        recipe.setdefault("output_dir", f"outputs/{check_path_name('name', data.get('name'))}")
        recipe.setdefault("name", data["name"])
        data = recipe
    data.update({k: v for k, v in overrides.items() if v is not None})
    return QualityTrainConfig.from_dict(data)
