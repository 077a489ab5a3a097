"""Loading a model given on the command line (a folder or a Hub id), shared by ``evaluate`` and
``predict``: the device, the config (which decides the task), then the model."""

from __future__ import annotations

import os

import torch

from ..hub.ids import looks_like_hub_id
from ..models.checks import InputError
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


def check_revision(model: str, revision: str | None, name: str = "--revision") -> str | None:
    """``revision`` (a branch, tag or commit of a Hub repo) when ``model`` is a Hub id; a local folder
    has no revisions, so one given for it is refused rather than silently ignored."""
    if revision is None:
        return None
    if not isinstance(revision, str) or not revision.strip():
        raise InputError(f"{name}: expected a commit hash, branch or tag, found {revision!r}")
    if os.path.exists(model) or not looks_like_hub_id(model):
        raise InputError(f"{name}: {revision!r} pins a Hub repo's commit, but {model!r} is a local folder; "
                         f"leave {name} out for folders")
    return revision.strip()


def load_model_config(model: str, trust_remote_code: bool, revision: str | None = None):
    """The config of a folder or Hub id (at ``revision``: a commit hash pins the code and weights)."""
    import quarf_hf  # noqa: F401 - registers the QuARF classes with the Auto classes
    from transformers import AutoConfig

    revision = check_revision(model, revision)
    if not os.path.isdir(model) and (not looks_like_hub_id(model) or os.path.exists(model)):
        raise FileNotFoundError(f"MODEL: no such folder {model!r}")
    if os.path.isdir(model) and not os.path.isfile(os.path.join(model, "config.json")):
        raise FileNotFoundError(f"MODEL: {model!r} has no config.json; expected a saved model folder")
    try:
        return AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code, revision=revision)
    except OSError as err:
        raise FileNotFoundError(f"MODEL: cannot load a config from {model!r} ({_first_line(err)})") from None
    except (ValueError, KeyError, TypeError) as err:
        # transformers' own errors for an unknown model_type or a config field of the wrong type
        raise ValueError(f"MODEL: {os.path.join(model, 'config.json')} is not a usable model config "
                         f"({type(err).__name__}: {_first_line(err)})") from None


def load_model(model: str, config, trust_remote_code: bool = False, revision: str | None = None):
    """The model of a folder or Hub id whose config ``load_model_config`` read (the same ``revision``)."""
    from transformers import AutoModel, AutoModelForSemanticSegmentation

    auto = AutoModel if config.model_type == "quarf_restoration" else AutoModelForSemanticSegmentation
    if os.path.isdir(model):
        weights = [name for name in os.listdir(model) if name.endswith((".safetensors", ".bin"))]
        if not weights:
            raise FileNotFoundError(f"MODEL: {model!r} has no weights (model.safetensors); expected a saved model folder")
    try:
        return auto.from_pretrained(model, trust_remote_code=trust_remote_code, revision=check_revision(model, revision))
    except OSError as err:
        raise FileNotFoundError(f"MODEL: cannot load the weights of {model!r} ({_first_line(err)})") from None
    except Exception as err:
        if type(err).__name__ == "SafetensorError":  # truncated, random bytes, bad header
            name = os.path.join(model, "model.safetensors") if os.path.isdir(model) else model
            raise ValueError(f"MODEL: {name} is not a readable safetensors file ({err})") from None
        raise


def _first_line(err) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def config_task(config) -> str:
    """"restoration" for QuARF restoration configs, "segmentation" for every other one."""
    return "restoration" if config.model_type in RESTORATION_MODEL_TYPES else "segmentation"
