"""Fine-tuning with accelerate: config, model building, checkpoints and the training loop."""

from .config import TrainConfig, load_train_config
from .loop import train

__all__ = ["TrainConfig", "load_train_config", "train"]
