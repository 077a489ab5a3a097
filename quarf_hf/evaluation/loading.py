"""Loading a model given on the command line (a folder or a Hub id), shared by ``evaluate`` and
``predict``: the device, the config (whose model type decides the task: :func:`quarf_hf.tasks.task_of`),
then the model."""

from __future__ import annotations

import os

import torch

from ..models.checks import InputError, looks_like_hub_id, short_repr
from ..models.weights import check_source, load_error
from ..tasks import task_of


def resolve_device(text: str | None) -> torch.device:
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise InputError(f"--device: expected a torch device such as 'cpu' or 'cuda:0', found {short_repr(text)}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device: {text!r} requested but CUDA is not available")
    return device


# Where a run may set the consent for remote code instead of a flag (the Space has no command line).
TRUST_REMOTE_CODE_ENV = "QUARF_TRUST_REMOTE_CODE"


def trust_remote_code_from_env() -> bool:
    """Whether ``QUARF_TRUST_REMOTE_CODE`` is set to 1/true/yes (the Space's opt-in to remote code)."""
    return os.environ.get(TRUST_REMOTE_CODE_ENV, "").strip().lower() in ("1", "true", "yes")


def known_model_type(model_type) -> bool:
    """Whether transformers or this package provides the classes of ``model_type`` (no remote code needed)."""
    import quarf_hf  # noqa: F401 - registers the QuARF classes with the Auto classes
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    return isinstance(model_type, str) and model_type in CONFIG_MAPPING


def check_revision(model: str, revision: str | None, name: str = "--revision") -> str | None:
    """``revision`` (a branch, tag or commit of a Hub repo) when ``model`` is a Hub id; a local folder
    has no revisions, so one given for it is refused rather than silently ignored."""
    if revision is None:
        return None
    if not isinstance(revision, str) or not revision.strip():
        raise InputError(f"{name}: expected a commit hash, branch or tag, found {short_repr(revision)}")
    if os.path.exists(model) or not looks_like_hub_id(model):
        raise InputError(f"{name}: {revision!r} pins a Hub repo's commit, but {model!r} is a local folder; "
                         f"leave {name} out for folders")
    return revision.strip()


def load_model_config(model: str, trust_remote_code: bool = False, revision: str | None = None, *,
                      option: str = "--trust-remote-code"):
    """The config of a folder or Hub id (at ``revision``: a commit hash pins the code and weights), loaded
    with this package's (or transformers') own classes.

    The consent rule: a model type that transformers or this package provides is always loaded with
    those classes, never with the code saved beside it (``trust_remote_code=False``, whatever was
    asked); any other type runs the repository's code, so it is refused unless ``trust_remote_code``
    (``option`` names how the user gives it, for the message).
    """
    import quarf_hf  # noqa: F401 - registers the QuARF classes with the Auto classes
    from transformers import AutoConfig, PretrainedConfig

    revision = check_revision(model, revision)
    if not os.path.isdir(model) and (not looks_like_hub_id(model) or os.path.exists(model)):
        raise FileNotFoundError(f"MODEL: no such folder {model!r}")
    if os.path.isdir(model) and not os.path.isfile(os.path.join(model, "config.json")):
        raise FileNotFoundError(f"MODEL: {model!r} has no config.json; expected a saved model folder")
    config_file = os.path.join(model, "config.json") if os.path.isdir(model) else f"{model} (config.json)"
    check_source(model)  # a config.json too large to be one, before it is parsed
    try:
        data, _ = PretrainedConfig.get_config_dict(model, revision=revision)  # reads config.json only: runs no code
    except OSError as err:
        raise FileNotFoundError(f"MODEL: cannot load a config from {model!r} ({_first_line(err)})") from None
    except ValueError as err:  # not JSON
        raise InputError(f"MODEL: {config_file} is not a usable model config ({_first_line(err)})") from None
    model_type = data.get("model_type")
    known = known_model_type(model_type)
    if not known and not trust_remote_code:
        raise InputError(
            f"MODEL: {model!r} is a {model_type!r} model, which neither quarf_hf nor transformers provides; loading "
            f"it would run the code saved with it. Pass {option} if you trust that code"
        )
    try:
        return AutoConfig.from_pretrained(model, trust_remote_code=not known, revision=revision)
    except OSError as err:
        raise FileNotFoundError(f"MODEL: cannot load a config from {model!r} ({_first_line(err)})") from None
    except Exception as err:
        _raise_load_error(err, model)
        if isinstance(err, (ValueError, KeyError, TypeError)):
            # transformers' own errors for an unknown model_type or a config field of the wrong type
            raise InputError(f"MODEL: {config_file} is not a usable model config "
                             f"({type(err).__name__}: {_first_line(err)})") from None
        raise


def load_model(model: str, config, trust_remote_code: bool = False, revision: str | None = None):
    """The model of a folder or Hub id whose ``config`` :func:`load_model_config` returned (same consent rule,
    same ``revision``), with its task's Auto class."""
    if os.path.isdir(model):
        weights = [name for name in os.listdir(model) if name.endswith((".safetensors", ".bin"))]
        if not weights:
            raise FileNotFoundError(f"MODEL: {model!r} has no weights (model.safetensors); expected a saved model folder")
    known = known_model_type(config.model_type)
    try:
        return task_of(config).load(model, config=config, trust_remote_code=bool(trust_remote_code) and not known,
                                    revision=check_revision(model, revision))
    except OSError as err:
        raise FileNotFoundError(f"MODEL: cannot load the weights of {model!r} ({_first_line(err)})") from None
    except Exception as err:
        _raise_load_error(err, model)
        raise


def _raise_load_error(err: BaseException, model: str) -> None:
    """Raises ``err`` as one line naming MODEL's damaged file or bad key (:func:`models.weights.load_error`),
    when it is such an error; returns otherwise, for the caller to handle or re-raise."""
    converted = load_error(err, model)
    if converted is not None:
        raise InputError(f"MODEL: {converted}") from None


def _first_line(err) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
