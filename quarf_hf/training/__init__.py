"""Training with accelerate: the one loop (:mod:`.loop`: resume, accumulation, checkpoints, time
budget; :mod:`.settings`: its settings, which every training config inherits) and ``quarf-hf
train``'s task (:mod:`.segmentation`: segmentation and restoration models, their config, building
and export). ``train-quality``'s task is :mod:`quarf_hf.quality_training`."""

from .config import TrainConfig, load_train_config
from .segmentation import train
from .settings import LoopSettings

__all__ = ["LoopSettings", "TrainConfig", "load_train_config", "train"]
