"""The study config: arms, the three disjoint sets of corruption kinds, seeds and the shared recipe.

A study YAML file::

    base:            # a training config (see quarf_hf.training.TrainConfig) shared by every arm;
      task: segmentation            # no output_dir, evaluation, max_minutes or seed: the study sets them
      data: {train: ..., validation: ...}
      max_steps: 300
      ...
    arms:            # name -> the keys that differ (usually model and augmentation)
      baseline: {model: {type: segformer, ...}, augmentation: {policy: none}}
      quarf: {model: {type: quarf_segformer, quality: brisque, ...}, augmentation: {policy: degradation}}
    kinds:           # disjoint; each spans the noise, blur, weather and digital families
      augmentation: [gaussian_noise, gaussian_blur, rain, contrast, ...]   # used in training only
      development: [speckle_noise, zoom_blur, raindrops, brightness]       # for choices
      test: [shot_noise, defocus_blur, fog, jpeg_compression]              # for the final report only
    severities: [1, 3, 5]           # of the evaluated corruptions
    seeds: [0, 1, 2, 3, 4]          # at least 5
    evaluate: [development]         # add "test" once every choice is made
    comparisons: [[quarf, augmentation], [quarf, static]]   # paired differences: first minus second
    workers: 2                      # side-by-side processes, one thread each
    max_minutes: null               # a cap on the whole study: hitting it aborts (resume later)

An augmentation arm (``policy: degradation``) trains on the ``augmentation`` kinds unless it
names its own, which must then come from that set as well: no arm ever trains on a kind it is
evaluated on.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..models.checks import InputError, check_int, check_int_list, check_number

FAMILIES = ("noise", "blur", "weather", "digital")
SPLITS = ("augmentation", "development", "test")
EVALUATED_SPLITS = ("development", "test")
MIN_SEEDS = 5
# Keys of the base recipe the study owns (set per run, identical across arms).
STUDY_OWNED = ("output_dir", "evaluation", "max_minutes", "seed", "push_to_hub", "checkpoint_every")
STUDY_KEYS = ("base", "arms", "kinds", "severities", "seeds", "evaluate", "comparisons", "workers", "max_minutes",
              "min_seeds")


def corruption_family(name: str) -> str:
    """``noise`` / ``blur`` / ``weather`` / ``digital``: the degradations module a corruption lives in."""
    from ..degradations import CORRUPTIONS

    return CORRUPTIONS[name].__module__.rsplit(".", 1)[-1]


@dataclass
class StudyConfig:
    base: dict
    arms: dict
    kinds: dict
    severities: list = field(default_factory=lambda: [1, 3, 5])
    seeds: list = field(default_factory=lambda: list(range(5)))
    evaluate: list = field(default_factory=lambda: ["development"])
    comparisons: list = field(default_factory=list)
    workers: int = 2
    max_minutes: float | None = None
    min_seeds: int = MIN_SEEDS  # tests lower it; a real study keeps 5

    def __post_init__(self):
        from ..degradations import CORRUPTIONS

        if not isinstance(self.base, dict):
            raise InputError(f"base: expected a mapping (a training config), found {self.base!r}")
        if not isinstance(self.base.get("data"), dict) or not self.base["data"].get("validation"):
            raise InputError("base.data.validation: expected a dataset spec to evaluate every run on, found none")
        owned = sorted(set(self.base) & set(STUDY_OWNED))
        if owned:
            raise InputError(f"base: {owned} are set by the study for every run; remove them")
        if not isinstance(self.arms, dict) or len(self.arms) < 2:
            raise InputError(f"arms: expected a mapping of at least two arms, found {self.arms!r}")
        for name, arm in self.arms.items():
            if not isinstance(arm, dict):
                raise InputError(f"arms.{name}: expected a mapping of training-config keys, found {arm!r}")
            owned = sorted(set(arm) & set(STUDY_OWNED + ("max_steps",)))
            if owned:
                # Equal steps for every arm: the step count lives in base only.
                raise InputError(f"arms.{name}: {owned} must be the same for every arm; set them in base")
        # Kinds: known names, three disjoint sets, each spanning the families.
        if not isinstance(self.kinds, dict) or sorted(self.kinds) != sorted(SPLITS):
            raise InputError(f"kinds: expected a mapping with exactly {list(SPLITS)}, found {self.kinds!r}")
        for split in SPLITS:
            names = self.kinds[split]
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise InputError(f"kinds.{split}: expected a non-empty list of corruption names, found {names!r}")
            unknown = [n for n in names if n not in CORRUPTIONS]
            if unknown:
                raise InputError(f"kinds.{split}: unknown {unknown}; expected names from {sorted(CORRUPTIONS)}")
            missing = [f for f in FAMILIES if f not in {corruption_family(n) for n in names}]
            if missing:
                raise InputError(f"kinds.{split}: must span the families {list(FAMILIES)}; none from {missing} in {names}")
        for i, first in enumerate(SPLITS):
            for second in SPLITS[i + 1:]:
                shared = sorted(set(self.kinds[first]) & set(self.kinds[second]))
                if shared:
                    raise InputError(f"kinds: {first} and {second} must be disjoint, both contain {shared}")
        for name, arm in self.arms.items():
            augmentation = arm.get("augmentation", self.base.get("augmentation", {"policy": "none"}))
            names = augmentation.get("corruptions") if isinstance(augmentation, dict) else None
            if names is not None:
                if names == "all":
                    names = ["all (every kind)"]
                outside = sorted(set([names] if isinstance(names, str) else names) - set(self.kinds["augmentation"]))
                if outside:
                    raise InputError(f"arms.{name}.augmentation.corruptions: {outside} are not in kinds.augmentation; "
                                     "an arm may train only on augmentation kinds")
        # Seeds, severities, evaluation, comparisons, workers.
        check_int_list("seeds", self.seeds, minimum=0, distinct=True)
        if len(self.seeds) < self.min_seeds:
            raise InputError(f"seeds: expected at least {self.min_seeds} seeds, found {len(self.seeds)}")
        check_int_list("severities", self.severities, 1, 5)
        if (not isinstance(self.evaluate, list) or not self.evaluate
                or any(s not in EVALUATED_SPLITS for s in self.evaluate)):
            raise InputError(f"evaluate: expected a list from {list(EVALUATED_SPLITS)}, found {self.evaluate!r}")
        for pair in self.comparisons:
            if not isinstance(pair, list) or len(pair) != 2 or any(a not in self.arms for a in pair) or pair[0] == pair[1]:
                raise InputError(f"comparisons: expected pairs of two different arms from {list(self.arms)}, found {pair!r}")
        check_int("workers", self.workers)
        if self.max_minutes is not None:
            self.max_minutes = check_number("max_minutes", self.max_minutes, 0, exclusive=True)
        # Every run's training config must be valid now, not after hours of other runs.
        for name in self.arms:
            self.train_config(name, self.seeds[0], "/nonexistent")

    @classmethod
    def from_dict(cls, data: dict) -> "StudyConfig":
        if not isinstance(data, dict):
            raise InputError(f"CONFIG: expected a mapping, found {type(data).__name__}")
        unknown = sorted(set(data) - set(STUDY_KEYS))
        if unknown:
            raise InputError(f"CONFIG: unknown keys {unknown}; expected some of {list(STUDY_KEYS)}")
        missing = [k for k in ("base", "arms", "kinds") if k not in data]
        if missing:
            raise InputError(f"CONFIG: missing {missing}")
        return cls(**copy.deepcopy(data))

    def to_dict(self) -> dict:
        return {k: copy.deepcopy(getattr(self, k)) for k in STUDY_KEYS}

    def train_dict(self, arm: str, seed: int, output_dir) -> dict:
        """The training config of one run, as a dict (identical across arms but for the arm's keys)."""
        data = copy.deepcopy(self.base)
        data.update(copy.deepcopy(self.arms[arm]))
        augmentation = dict(data.get("augmentation", {"policy": "none"}))
        if augmentation.get("policy", "none") == "degradation" and "corruptions" not in augmentation:
            augmentation["corruptions"] = list(self.kinds["augmentation"])
        data["augmentation"] = augmentation
        # Each seed draws its own training scenes (and initialisation); arms of a seed share them.
        datasets = copy.deepcopy(data.get("data", {}))
        train_spec = datasets.get("train")
        if isinstance(train_spec, dict) and isinstance(train_spec.get("seed"), int):
            train_spec["seed"] = train_spec["seed"] + 1000 * seed
        data["data"] = datasets
        # Evaluation on the kinds happens after training (quarf_hf.study.worker): clean only here.
        data.update(seed=seed, output_dir=str(output_dir), evaluation={"corruptions": [], "severities": [3]},
                    max_minutes=None, checkpoint_every=0)
        return data

    def train_config(self, arm: str, seed: int, output_dir):
        from ..training import TrainConfig

        try:
            return TrainConfig.from_dict(self.train_dict(arm, seed, output_dir))
        except InputError as err:
            raise InputError(f"arms.{arm} (with base): {err}") from None

    def fingerprint(self, arm: str, seed: int) -> str:
        """A hash of what a run trains: results made under another recipe are never mixed in."""
        text = json.dumps(self.train_dict(arm, seed, "-"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_study_config(path, **overrides) -> StudyConfig:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CONFIG: no such file {str(path)!r}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise InputError(f"CONFIG: {path} must hold a YAML mapping, found {type(data).__name__}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return StudyConfig.from_dict(data)
