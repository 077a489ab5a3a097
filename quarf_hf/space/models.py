"""Which models the Space shows, and loading them once per process.

Four roles (:data:`ROLES`): the QuARF segmenter and its baseline, the QuARF restoration model and
its plain baseline. Sources, in order: the arguments of :func:`load_space_models` (``quarf-hf space
--model ...``), each role's environment variable, and the folders ``quarf-hf demo`` writes
(``quarf/model``, as the baseline the augmentation arm ``augmentation/model``, else
``baseline/model``; ``restoration/quarf/model`` and ``restoration/plain/model``), looked up under
``$QUARF_DEMO_DIR`` if set, else under ``outputs/demo`` of the working directory and of the source
checkout. The demo's folders fill the segmentation pair when neither segmentation role is given,
and the restoration pair when neither restoration role is given.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..models.checks import InputError, check_choice

logger = logging.getLogger(__name__)

DEMO_DIR = Path("outputs") / "demo"


@dataclass(frozen=True)
class Role:
    """One of the page's models: its task, its names in the page, and where it comes from."""

    task: str                       # "segmentation" or "restoration"
    title: str                      # next to the other model of its task (tables, charts)
    name: str                       # alone (the status note)
    variable: str                   # the environment variable naming its folder or Hub id
    revision_variable: str          # the commit (or branch, tag) to load a Hub id at: pins code and weights
    demo_folders: tuple[str, ...]   # where `quarf-hf demo` writes it under its --out; the first that exists wins


ROLES = {
    "quarf": Role("segmentation", "QuARF", "QuARF segmentation", "QUARF_MODEL", "QUARF_REVISION", ("quarf/model",)),
    # the baseline's demo folder: the fair comparison first, the arm with the same augmentation
    "baseline": Role("segmentation", "baseline", "baseline segmentation", "BASELINE_MODEL", "BASELINE_REVISION",
                     ("augmentation/model", "baseline/model")),
    "restoration": Role("restoration", "QuARF", "QuARF restoration", "RESTORATION_MODEL", "RESTORATION_REVISION",
                        ("restoration/quarf/model",)),
    "plain_restoration": Role("restoration", "plain", "plain restoration", "PLAIN_RESTORATION_MODEL",
                              "PLAIN_RESTORATION_REVISION", ("restoration/plain/model",)),
}
# What a visitor runs to get a task's pair of models into outputs/demo (`quarf-hf demo`'s default
# task is restoration).
DEMO_COMMANDS = {"restoration": "quarf-hf demo --quick", "segmentation": "quarf-hf demo --quick --task segmentation"}


def roles_of(task: str) -> tuple[str, ...]:
    """The roles of ``task``, QuARF's first."""
    return tuple(role for role, spec in ROLES.items() if spec.task == task)


@dataclass
class LoadedModel:
    """A model ready for the page: eval mode, on its device, with what the page needs to show it."""

    role: str                 # a key of ROLES: "quarf", "baseline", "restoration" or "plain_restoration"
    source: str               # the folder or Hub id it came from
    model: torch.nn.Module
    task: str                 # "segmentation" or "restoration"
    mean: torch.Tensor        # (1, 3, 1, 1): pixel_values = (pixels - mean) / std
    std: torch.Tensor
    min_side: int             # smallest image side the model accepts
    experts: list[tuple[int, int, int]] | None = None   # (kernel, dilation, receptive field) per expert
    quality: str | None = None                          # the quality extractor's type, for QuARF models
    id2label: dict[int, str] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def title(self) -> str:
        return ROLES[self.role].title if self.role in ROLES else self.role

    @property
    def name(self) -> str:
        return ROLES[self.role].name if self.role in ROLES else self.role


@dataclass
class SpaceModels:
    """The models of one page; ``errors`` maps a role to why its model did not load."""

    quarf: LoadedModel | None = None
    baseline: LoadedModel | None = None
    restoration: LoadedModel | None = None
    plain_restoration: LoadedModel | None = None
    sources: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def of_task(self, task: str) -> list[LoadedModel]:
        """The loaded models of ``task``, QuARF's first."""
        return [model for model in (getattr(self, role) for role in roles_of(task)) if model is not None]

    @property
    def segmenters(self) -> list[LoadedModel]:
        return self.of_task("segmentation")

    @property
    def restorers(self) -> list[LoadedModel]:
        """The restoration models, QuARF's first."""
        return self.of_task("restoration")

    @property
    def empty(self) -> bool:
        return not self.segmenters and not self.restorers


def project_roots() -> list[Path]:
    """Where ``outputs/demo`` may be: the working directory, then the source checkout (if any)."""
    roots = [Path.cwd()]
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and checkout not in roots:
        roots.append(checkout)
    return roots


def demo_folders() -> dict[str, str]:
    """The model folders of a ``quarf-hf demo`` run that exist, by role (``Role.demo_folders``):
    under ``$QUARF_DEMO_DIR`` when it is set (``quarf-hf demo --out`` elsewhere), else under
    ``outputs/demo`` of the first of :func:`project_roots` that has any."""
    override = os.environ.get("QUARF_DEMO_DIR")
    for demo in [Path(override)] if override else [root / DEMO_DIR for root in project_roots()]:
        found = {}
        for role, spec in ROLES.items():
            for folder in spec.demo_folders:
                if (demo / folder / "config.json").is_file():
                    found[role] = str(demo / folder)
                    break
        if found:
            return found
    return {}


def resolve_sources(quarf: str | None = None, baseline: str | None = None, restoration: str | None = None,
                    plain_restoration: str | None = None) -> dict[str, str]:
    """Role -> folder or Hub id: arguments, then environment variables, then the demo's folders
    (for a pair of roles of which neither is given)."""
    given = {"quarf": quarf, "baseline": baseline, "restoration": restoration, "plain_restoration": plain_restoration}
    sources = {}
    for role, value in given.items():
        value = value or os.environ.get(ROLES[role].variable) or None
        if value:
            sources[role] = value
    demo = demo_folders()
    for pair in (roles_of("segmentation"), roles_of("restoration")):
        if not any(role in sources for role in pair):
            sources.update({role: folder for role, folder in demo.items() if role in pair})
    return sources


def _experts(model) -> list[tuple[int, int, int]] | None:
    """(kernel, dilation, receptive field) per routed expert, as predict and evaluate report them."""
    from quarf_hf.evaluation.routing import expert_fields

    fields = expert_fields(model)
    return None if fields is None else [(f["kernel_size"], f["dilation"], f["receptive_field"]) for f in fields]


def _min_side(model) -> int:
    from quarf_hf.models.quality import quality_min_size

    config = model.config
    minimum = getattr(config, "min_image_size", None)
    if minimum is None:
        stride = 1
        for s in getattr(config, "strides", None) or []:
            stride *= int(s)
        minimum = stride
        if getattr(config, "quality", None):
            minimum = max(minimum, quality_min_size(config.quality))
    return max(int(minimum), 1)


def prepare(role: str, source: str, model: torch.nn.Module, device: str | torch.device = "cpu",
            processor_source: str | None = None) -> LoadedModel:
    """Wrap a loaded model for the page (eval mode, on ``device``, normalisation and experts read once).

    ``processor_source``: the folder or Hub id whose saved image processor gives a plain
    SegFormer's normalisation (default: the model's ``name_or_path``; ImageNet's when none).
    """
    from quarf_hf.evaluation import model_pixel_normalisation
    from quarf_hf.tasks import task_of

    check_choice("role", role, ROLES)
    model = model.to(device).eval()
    task = task_of(model).name
    expected = ROLES[role].task
    if task != expected:
        raise InputError(f"{ROLES[role].variable}: expected a {expected} model, found a {task} model ({model.config.model_type})")
    mean, std = model_pixel_normalisation(model, processor_source)
    id2label = {int(k): str(v) for k, v in (getattr(model.config, "id2label", None) or {}).items()}
    quality = getattr(model.config, "quality", None)
    return LoadedModel(
        role=role, source=source, model=model, task=task,
        mean=torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1),
        std=torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1),
        min_side=_min_side(model), experts=_experts(model),
        quality=quality.get("type") if isinstance(quality, dict) else None, id2label=id2label,
    )


def load_one(role: str, source: str, device: str | torch.device = "cpu", revision: str | None = None) -> LoadedModel:
    """Load a folder or Hub id (a Hub id at ``revision`` when given). Model types this package or
    transformers provides load with their own classes, never the code saved beside them; any other
    type runs its repository's code, so it is refused unless the Space's owner sets
    ``QUARF_TRUST_REMOTE_CODE=1``."""
    from quarf_hf.evaluation.loading import TRUST_REMOTE_CODE_ENV, load_model, load_model_config, trust_remote_code_from_env

    trust = trust_remote_code_from_env()
    config = load_model_config(source, trust, revision,
                               option=f"{TRUST_REMOTE_CODE_ENV}=1 (the Space's opt-in to remote code)")
    return prepare(role, source, load_model(source, config, trust, revision), device, processor_source=source)


def resolve_revisions(revisions: dict | None = None) -> dict[str, str]:
    """Role -> revision: the arguments, then the environment (``Role.revision_variable``: ``QUARF_REVISION``,
    ``BASELINE_REVISION``, ``RESTORATION_REVISION``, ``PLAIN_RESTORATION_REVISION``)."""
    given = revisions or {}
    found = {role: given.get(role) or os.environ.get(spec.revision_variable) or None for role, spec in ROLES.items()}
    return {role: value for role, value in found.items() if value}


_CACHE: dict[tuple, SpaceModels] = {}
_LOCK = threading.Lock()


def load_space_models(quarf: str | None = None, baseline: str | None = None, restoration: str | None = None,
                      device: str | torch.device | None = None, revisions: dict | None = None,
                      plain_restoration: str | None = None) -> SpaceModels:
    """The page's models, loaded once per process (later calls with the same sources reuse them).

    ``revisions``: role -> commit hash (or branch, tag) for models given as Hub ids; unset roles
    take the environment's (``Role.revision_variable``).

    A model that fails to load is left out and its error kept in ``errors`` for the page; this
    never raises for a bad model, so the page always opens.
    """
    sources = resolve_sources(quarf, baseline, restoration, plain_restoration)
    pinned = {role: revision for role, revision in resolve_revisions(revisions).items() if role in sources}
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    key = (tuple(sorted(sources.items())), tuple(sorted(pinned.items())), str(device))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        loaded = SpaceModels(sources=dict(sources))
        for role, source in sources.items():
            try:
                setattr(loaded, role, load_one(role, source, device, revision=pinned.get(role)))
            except Exception as err:  # noqa: BLE001 - any failure is shown in the page instead
                logger.warning("could not load the %s model %r: %s", role, source, err)
                loaded.errors[role] = f"{type(err).__name__}: {err}"
        _CACHE[key] = loaded
        return loaded


__all__ = ["LoadedModel", "SpaceModels", "load_space_models", "prepare", "resolve_sources", "resolve_revisions", "demo_folders",
           "Role", "ROLES", "DEMO_COMMANDS", "roles_of"]
