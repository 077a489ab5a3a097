"""Training with accelerate: the one loop (:mod:`.loop`: resume, accumulation, checkpoints, time
budget) and ``quarf-hf train``'s task (:mod:`.segmentation`: segmentation and restoration models,
their config, building and export). ``train-quality``'s task is :mod:`quarf_hf.quality_training`."""

from .config import TrainConfig, load_train_config
from .segmentation import train

__all__ = ["TrainConfig", "load_train_config", "train"]
