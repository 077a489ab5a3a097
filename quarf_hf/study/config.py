"""The study config: the base recipe, the arms, the protocol, the controls, the kinds, the power.

A study YAML file::

    base:            # a training config (see quarf_hf.training.TrainConfig) shared by every run;
                                    # no output_dir, evaluation, max_minutes or seed: the study sets them
      model: {type: quarf_restoration, ...}   # its type is the study's task (the same for every run)
      data: {train: ...}            # training data only: the evaluated images are `images`
      max_steps: 200
    protocol: finetune              # or scratch: every arm trained from a random initialisation
    pretrain: {model: ..., augmentation: ...}   # what differs for the base network of each seed
    arms:            # name -> the keys that differ (model; augmentation)
      plain: {model: {...conditioning: none}}
      static: ...; film: ...; quarf: ...
    control: plain                  # the augmentation-only arm (the regime gate reads it)
    diagnostics: {arm: quarf, dilations: [1, 2, 4, 8], oracle: true}
    images:                         # separate images: development for every choice, test for the table
      development: {type: photos, split: development, crops: random, num_samples: 16, crop_size: 64}
      test: {type: photos, split: test, crops: random, num_samples: 16, crop_size: 64}
    kinds:           # disjoint: augmentation (training only), development (choices), test (the table)
      augmentation: [...]; development: [...]; test: [...]
    test_kinds: unseen              # or training: development and test are the training kinds on other
                                    # photos, and kinds.unseen (test photos) is a secondary comparison
    families: [noise, blur, weather, digital]   # each set of kinds spans these
    severities: [2, 4]
    effect: 0.1                     # the practical effect, in the metric's unit (dB PSNR, mIoU)
    primary: [quarf, static]        # first minus second, on the test kinds
    secondary: [[quarf, film], [static, plain]]
    pilot_seeds: 4                  # seeds 0.. on development data (at least 4): the paired sd for the power
    declared_sd: null               # or the paired sd of an earlier study to plan on (else the pilot's
                                    # one-sided 80% chi-square upper bound)
    min_seeds: 5                    # test seeds (they start after the pilot seeds) ...
    max_seeds: 20                   # ... as many as the power needs, at most this many
    precondition: {margin: 0.05, pick_gain: 0.1}   # optional: see quarf_hf.study.report.precondition
    min_gain_over_identity: 1.0     # restoration gate: the control beats the degraded input by this (dB)
    workers: 2
    max_minutes: 60                 # the whole study; the test seeds stop where it would be passed

Every run's augmentation (the base network's too) trains only on ``kinds.augmentation``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..models.checks import InputError, check_choice, check_int, check_int_list, check_number, check_path_name, short_repr
from ..tasks import TaskSpec, get_task

FAMILIES = ("noise", "blur", "weather", "digital")
# The oracle router's quality vector (quarf_hf.study.evaluation): family one-hot + severity one-hot (0 = clean, 1..5).
ORACLE_DIM = len(FAMILIES) + 6
SPLITS = ("augmentation", "development", "test")
EVALUATED_SPLITS = ("development", "test")
PROTOCOLS = ("finetune", "scratch")
BASE = "base"  # the run name of each seed's base network
MIN_SEEDS = 5
SEEDED_DATA = ("photos", "images", "quarf-shapes")  # dataset types whose draws follow a seed
# Keys of the base recipe the study owns (set per run, identical across arms).
STUDY_OWNED = ("output_dir", "evaluation", "max_minutes", "seed", "push_to_hub", "checkpoint_every")
MIN_PILOT_SEEDS = 4  # fewer give the paired sd too few degrees of freedom to plan on
TEST_KINDS = ("unseen", "training")
STUDY_KEYS = ("base", "arms", "kinds", "test_kinds", "families", "severities", "protocol", "pretrain", "control",
              "diagnostics", "images", "effect", "primary", "secondary", "pilot_seeds", "declared_sd", "min_seeds",
              "max_seeds", "precondition", "min_gain_over_identity", "workers", "max_minutes")
# What may change between runs of one output folder: how fast it runs, not what it tests.
UNFROZEN = ("workers", "max_minutes")


def corruption_family(name: str) -> str:
    """``noise`` / ``blur`` / ``weather`` / ``digital``: the degradations module a corruption lives in."""
    from ..degradations import CORRUPTIONS

    return CORRUPTIONS[name].__module__.rsplit(".", 1)[-1]


@dataclass
class StudyConfig:
    base: dict
    arms: dict
    kinds: dict
    images: dict
    primary: list
    effect: float
    control: str
    families: list = field(default_factory=lambda: list(FAMILIES))
    severities: list = field(default_factory=lambda: [1, 3, 5])
    protocol: str = "finetune"
    pretrain: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    secondary: list = field(default_factory=list)
    test_kinds: str = "unseen"
    pilot_seeds: int = MIN_PILOT_SEEDS
    declared_sd: float | None = None
    min_seeds: int = MIN_SEEDS  # tests lower it; a real study keeps 5
    precondition: dict = field(default_factory=dict)
    max_seeds: int = 20
    min_gain_over_identity: float = 1.0
    workers: int = 2
    max_minutes: float | None = None

    def __post_init__(self):
        from ..degradations import CORRUPTIONS

        if not isinstance(self.base, dict):
            raise InputError(f"base: expected a mapping (a training config), found {short_repr(self.base)}")
        if not isinstance(self.base.get("data"), dict) or "validation" in self.base["data"]:
            raise InputError("base.data: expected only the training data (data.train); the evaluated images are "
                             "images.development and images.test")
        owned = sorted(set(self.base) & set(STUDY_OWNED))
        if owned:
            raise InputError(f"base: {owned} are set by the study for every run; remove them")
        check_choice("protocol", self.protocol, PROTOCOLS)
        if not isinstance(self.arms, dict) or len(self.arms) < 2:
            raise InputError(f"arms: expected a mapping of at least two arms, found {short_repr(self.arms)}")
        for name, arm in self.arms.items():
            check_path_name("arms", name)  # each arm's runs live in <out>/runs/<name>/
            if not isinstance(arm, dict):
                raise InputError(f"arms.{name}: expected a mapping of training-config keys, found {short_repr(arm)}")
            if name == BASE or name.startswith(("expert_d", "oracle")):
                raise InputError(f"arms.{name}: the names {BASE!r}, 'expert_d*' and 'oracle' are the study's own runs")
            owned = sorted(set(arm) & set(STUDY_OWNED + ("max_steps",)))
            if owned:
                # Equal steps for every arm: the step count lives in base only.
                raise InputError(f"arms.{name}: {owned} must be the same for every arm; set them in base")
        names = list(self.arms)
        for i, name in enumerate(names):
            twin = next((other for other in names[:i] if self.arms[other] == self.arms[name]), None)
            if twin is not None:
                # Identical recipes give identical runs: the pilot's paired spread is 0 and sizes nothing.
                raise InputError(f"arms.{name}: expected a recipe different from every other arm, found the same "
                                 f"settings as arms.{twin} (their paired differences would have no spread)")
        if not isinstance(self.pretrain, dict) or set(self.pretrain) - {"model", "augmentation", "max_steps"}:
            raise InputError(f"pretrain: expected a mapping of model, augmentation and max_steps, found {short_repr(self.pretrain)}")
        check_choice("control", self.control, self.arms)
        # Kinds: known names, three disjoint sets, each spanning the families.
        if not isinstance(self.families, list) or not self.families or any(f not in FAMILIES for f in self.families):
            raise InputError(f"families: expected a list from {list(FAMILIES)}, found {short_repr(self.families)}")
        check_choice("test_kinds", self.test_kinds, TEST_KINDS)
        splits = SPLITS + (("unseen",) if self.test_kinds == "training" else ())
        if not isinstance(self.kinds, dict) or sorted(self.kinds) != sorted(splits):
            raise InputError(f"kinds: expected a mapping with exactly {list(splits)} (test_kinds: {self.test_kinds}), "
                             f"found {short_repr(self.kinds)}")
        for split in splits:
            names = self.kinds[split]
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise InputError(f"kinds.{split}: expected a non-empty list of corruption names, found {short_repr(names)}")
            unknown = [n for n in names if n not in CORRUPTIONS]
            if unknown:
                raise InputError(f"kinds.{split}: unknown {unknown}; expected names from {sorted(CORRUPTIONS)}")
            missing = [f for f in self.families if f not in {corruption_family(n) for n in names}]
            if missing:
                raise InputError(f"kinds.{split}: must span the families {self.families}; none from {missing} in {names}")
        if self.test_kinds == "training":  # the training kinds on other photos; unseen kinds apart
            for split in EVALUATED_SPLITS:
                if sorted(self.kinds[split]) != sorted(self.kinds["augmentation"]):
                    raise InputError(f"kinds.{split}: with test_kinds: training, expected the augmentation kinds "
                                     f"{self.kinds['augmentation']}, found {self.kinds[split]}")
            disjoint = [("augmentation", "unseen")]
        else:
            disjoint = [(a, b) for i, a in enumerate(SPLITS) for b in SPLITS[i + 1:]]
        for first, second in disjoint:
            shared = sorted(set(self.kinds[first]) & set(self.kinds[second]))
            if shared:
                raise InputError(f"kinds: {first} and {second} must be disjoint, both contain {shared}")
        self._check_images()
        # Statistics: the declared effect and comparisons, seeds.
        self.effect = check_number("effect", self.effect, 0, exclusive=True)
        for where, pair in [("primary", self.primary)] + [("secondary", p) for p in self.secondary]:
            if not isinstance(pair, list) or len(pair) != 2 or any(a not in self.arms for a in pair) or pair[0] == pair[1]:
                raise InputError(f"{where}: expected pairs of two different arms from {list(self.arms)}, found {short_repr(pair)}")
        check_int("pilot_seeds", self.pilot_seeds, minimum=MIN_PILOT_SEEDS)
        if self.declared_sd is not None:
            self.declared_sd = check_number("declared_sd", self.declared_sd, 0, exclusive=True)
        check_int("min_seeds", self.min_seeds, minimum=2)
        check_int("max_seeds", self.max_seeds, minimum=self.min_seeds)
        check_int_list("severities", self.severities, 1, 5)
        self.min_gain_over_identity = check_number("min_gain_over_identity", self.min_gain_over_identity, None)
        check_int("workers", self.workers)
        if self.max_minutes is not None:
            self.max_minutes = check_number("max_minutes", self.max_minutes, 0, exclusive=True)
        if not isinstance(self.diagnostics, dict) or set(self.diagnostics) - {"arm", "dilations", "oracle"}:
            raise InputError(f"diagnostics: expected a mapping of arm, dilations and oracle, found {short_repr(self.diagnostics)}")
        if self.diagnostics:
            check_choice("diagnostics.arm", self.diagnostics.get("arm"), self.arms)
            check_int_list("diagnostics.dilations", self.diagnostics.get("dilations", []), minimum=1, distinct=True)
        self._check_precondition()
        # Every run's training config must be valid now, not after hours of other runs; no run, the
        # base network's included, trains on a kind it is evaluated on; and all runs share one task.
        tasks = {}
        for name in self.run_names():
            augmentation = self.train_dict(name, 0, "/nonexistent")["augmentation"]
            names = augmentation.get("corruptions", []) if augmentation.get("policy", "none") == "degradation" else []
            names = ["all (every kind)"] if names == "all" else names
            outside = sorted(set(names) - set(self.kinds["augmentation"]))
            if outside:
                where = "pretrain" if name == BASE else f"arms.{name}"
                raise InputError(f"{where}.augmentation.corruptions: {outside} are not in kinds.augmentation; "
                                 "a run may train only on augmentation kinds")
            tasks[name] = self.train_config(name, 0, "/nonexistent").task
            if tasks[name] != tasks[BASE]:
                raise InputError(f"{_run_label(self, name)}.model.type: a {tasks[name]} model, but the base network "
                                 f"is a {tasks[BASE]} model; every run of a study has the same task")

    @property
    def task(self) -> TaskSpec:
        """The study's task (:mod:`quarf_hf.tasks`): its base network's model type decides it."""
        return get_task(self.train_config(BASE, 0, "-").task)

    def _check_precondition(self) -> None:
        if not isinstance(self.precondition, dict) or set(self.precondition) - {"margin", "pick_gain"}:
            raise InputError(f"precondition: expected a mapping of margin and pick_gain, found {short_repr(self.precondition)}")
        if not self.precondition:
            return
        for key in ("margin", "pick_gain"):
            self.precondition[key] = check_number(f"precondition.{key}", self.precondition.get(key), 0)
        if len(self.diagnostics.get("dilations", [])) < 2 or not self.diagnostics.get("oracle"):
            raise InputError("precondition: needs diagnostics with at least two dilations and oracle: true, found "
                             f"{short_repr(self.diagnostics)}")

    def evaluated_images(self, split: str) -> dict:
        """The images ``split`` is evaluated on (``unseen``: the unseen kinds on the test images)."""
        return self.images["test" if split == "unseen" else split]

    @property
    def test_splits(self) -> list[str]:
        """What every test seed is evaluated on: the test kinds, and the unseen kinds when declared."""
        return ["test", "unseen"] if "unseen" in self.kinds else ["test"]

    def frozen(self) -> dict:
        """Every setting that shapes what is tested: a study's output folder keeps them."""
        return {k: v for k, v in self.to_dict().items() if k not in UNFROZEN}

    def _check_images(self) -> None:
        if not isinstance(self.images, dict) or sorted(self.images) != sorted(EVALUATED_SPLITS):
            raise InputError(f"images: expected a mapping with exactly {list(EVALUATED_SPLITS)}, found {short_repr(self.images)}")
        development, test = self.images["development"], self.images["test"]
        if development == test:
            raise InputError("images: development and test must be different images, found the same spec")
        for spec in (development, test):
            if isinstance(spec, dict) and spec.get("type") == "photos" and spec.get("split") == "train":
                raise InputError("images: the training photos (split: train) cannot be evaluated on")
        if all(isinstance(s, dict) and s.get("type") == "photos" for s in (development, test)):
            if development.get("split") == test.get("split") and development.get("photos") == test.get("photos"):
                raise InputError("images: development and test take the same photos; give each its own split")
        if all(isinstance(s, dict) and s.get("type") == "quarf-shapes" for s in (development, test)):
            train = self.base["data"].get("train", {})
            first = train.get("seed", 0) if isinstance(train, dict) else 0
            used = {first + 1000 * k for k in range(self.pilot_seeds + self.max_seeds)}
            for split, spec in (("development", development), ("test", test)):
                if spec.get("seed", 0) in used:
                    raise InputError(f"images.{split}.seed: {spec.get('seed', 0)} is a training seed of some run; "
                                     "use a seed far from data.train's (e.g. 1000000)")
            if development.get("seed", 0) == test.get("seed", 0):
                raise InputError("images: development and test quarf-shapes need different seeds")

    @classmethod
    def from_dict(cls, data: dict) -> "StudyConfig":
        if not isinstance(data, dict):
            raise InputError(f"CONFIG: expected a mapping, found {type(data).__name__}")
        unknown = sorted(set(data) - set(STUDY_KEYS))
        if unknown:
            raise InputError(f"CONFIG: unknown keys {unknown}; expected some of {list(STUDY_KEYS)}")
        missing = [k for k in ("base", "arms", "kinds", "images", "primary", "effect", "control") if k not in data]
        if missing:
            raise InputError(f"CONFIG: missing {missing}")
        return cls(**copy.deepcopy(data))

    def to_dict(self) -> dict:
        return {k: copy.deepcopy(getattr(self, k)) for k in STUDY_KEYS}

    @property
    def pilot(self) -> list[int]:
        """The pilot seeds (development data only; never in the test table)."""
        return list(range(self.pilot_seeds))

    def test_seeds(self, count: int) -> list[int]:
        """The first ``count`` test seeds: they start after the pilot seeds."""
        return list(range(self.pilot_seeds, self.pilot_seeds + count))

    def diagnostic_names(self) -> list[str]:
        names = [f"expert_d{d}" for d in self.diagnostics.get("dilations", [])] if self.diagnostics else []
        return names + (["oracle"] if self.diagnostics.get("oracle") else [])

    def run_names(self) -> list[str]:
        return [BASE, *self.arms, *self.diagnostic_names()]

    def is_oracle(self, name: str) -> bool:
        return name == "oracle"

    def base_model_dir(self, out_dir, seed: int) -> Path:
        return Path(out_dir) / "runs" / BASE / f"seed{seed}" / "train" / "model"

    def _section(self, name: str) -> dict:
        """The keys run ``name`` lays over ``base``."""
        if name == BASE:
            return copy.deepcopy(self.pretrain)
        if name in self.arms:
            return copy.deepcopy(self.arms[name])
        arm = copy.deepcopy(self.arms[self.diagnostics["arm"]])
        model = arm["model"]
        if name == "oracle":
            model["quality"] = {"type": "constant", "dim": ORACLE_DIM}
        else:  # one expert, the kernel size of the arm's first: the router has nothing to choose
            dilation = int(name[len("expert_d"):])
            size = (model.get("quarf", {}).get("experts") or [[3, 1]])[0][0]
            model["quarf"] = {**model.get("quarf", {}), "experts": [[size, dilation]]}
            model["quality"] = {"type": "constant", "dim": 36}
            model.setdefault("config", {})["conditioning"] = "route"
        return arm

    def train_dict(self, name: str, seed: int, out_dir) -> dict:
        """The training config of one run, as a dict (identical across arms but for the arm's keys)."""
        data = copy.deepcopy(self.base)
        data.update(self._section(name))
        augmentation = dict(data.get("augmentation", {"policy": "none"}))
        if augmentation.get("policy", "none") == "degradation" and "corruptions" not in augmentation:
            augmentation["corruptions"] = list(self.kinds["augmentation"])
        data["augmentation"] = augmentation
        if self.protocol == "finetune" and name != BASE:
            # Every arm of a seed starts from that seed's base network (its block at the identity).
            data["model"] = {**data["model"], "base": str(self.base_model_dir(out_dir, seed))}
        # Each seed draws its own training scenes or crops (and initialisation); arms of a seed share them.
        datasets = copy.deepcopy(data.get("data", {}))
        train_spec = datasets.get("train")
        if isinstance(train_spec, dict) and train_spec.get("type") in SEEDED_DATA:
            train_spec["seed"] = int(train_spec.get("seed", 0)) + 1000 * seed
        data["data"] = datasets
        # Evaluation happens after training, on the study's images (quarf_hf.study.worker).
        data.update(seed=seed, output_dir=str(Path(out_dir) / "runs" / name / f"seed{seed}" / "train"),
                    evaluation={"corruptions": [], "severities": [3]}, max_minutes=None, checkpoint_every=0)
        return data

    def train_config(self, name: str, seed: int, out_dir):
        from ..training import TrainConfig

        try:
            return TrainConfig.from_dict(self.train_dict(name, seed, out_dir))
        except InputError as err:
            raise InputError(f"{_run_label(self, name)} (with base): {err}") from None

    def fingerprint(self, name: str, seed: int) -> str:
        """A hash of what a run trains: results made under another recipe are never mixed in."""
        text = json.dumps(self.train_dict(name, seed, "-"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run_label(config: StudyConfig, name: str) -> str:
    """Where run ``name``'s own keys are in a study config, for messages."""
    return "pretrain" if name == BASE else f"arms.{name}" if name in config.arms else f"diagnostics ({name})"


def load_study_config(path, **overrides) -> StudyConfig:
    from ..yaml_files import read_yaml_mapping

    data = read_yaml_mapping(path, "CONFIG")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return StudyConfig.from_dict(data)
