"""Training a quality encoder (a ContriqueModel) with CONTRIQUE's contrastive objective, and probing
what its features carry. Tooling: not shipped with model folders."""

from .config import QualityTrainConfig, load_quality_config
from .loop import train_quality

__all__ = ["QualityTrainConfig", "load_quality_config", "train_quality"]
