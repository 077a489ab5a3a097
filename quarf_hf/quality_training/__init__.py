"""Training a quality encoder (a ContriqueModel) with CONTRIQUE's contrastive objective, and probing
what its features carry: the task (config, data, objective, probe, export) that ``train-quality``
plugs into :mod:`quarf_hf.training`'s one loop. Tooling: not shipped with model folders."""

from .config import QualityTrainConfig, load_quality_config
from .task import train_quality

__all__ = ["QualityTrainConfig", "load_quality_config", "train_quality"]
