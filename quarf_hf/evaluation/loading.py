"""Loading a model given on the command line (a folder or a Hub id), shared by ``evaluate`` and
``predict``: the device, the config (which decides the task), then the model."""

from __future__ import annotations

import os

import torch

from ..hub.ids import looks_like_hub_id
from .pixels import RESTORATION_MODEL_TYPES


def resolve_device(text: str | None) -> torch.device:
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device: expected a torch device such as 'cpu' or 'cuda:0', found {text!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device: {text!r} requested but CUDA is not available")
    return device


def load_model_config(model: str, trust_remote_code: bool):
    import quarf_hf  # noqa: F401 - registers the QuARF classes with the Auto classes
    from transformers import AutoConfig

    if not os.path.isdir(model) and (not looks_like_hub_id(model) or os.path.exists(model)):
        raise FileNotFoundError(f"MODEL: no such folder {model!r}")
    try:
        return AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except OSError as err:
        raise FileNotFoundError(f"MODEL: cannot load a config from {model!r} ({err})") from None


def load_model(model: str, config, trust_remote_code: bool = False):
    from transformers import AutoModel, AutoModelForSemanticSegmentation

    auto = AutoModel if config.model_type == "quarf_restoration" else AutoModelForSemanticSegmentation
    return auto.from_pretrained(model, trust_remote_code=trust_remote_code)


def config_task(config) -> str:
    """"restoration" for QuARF restoration configs, "segmentation" for every other one."""
    return "restoration" if config.model_type in RESTORATION_MODEL_TYPES else "segmentation"
