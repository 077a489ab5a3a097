"""``quarf-hf convert-contrique``: the official CONTRIQUE checkpoint -> a Hub-ready ContriqueModel folder.

The official ``CONTRIQUE_checkpoint25.tar`` is a plain state dict of the training module:
``encoder.*`` is a torchvision ResNet-50 without its last two children
(``encoder.0`` conv1, ``encoder.1`` bn1, ``encoder.4``-``encoder.7`` layer1-layer4) and
``projector.*`` the MLP head (``projector.0`` Linear, ``.1`` BatchNorm1d, ``.3`` Linear,
``.4`` BatchNorm1d). It is read with ``torch.load(..., weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..atomic import atomic_folder
from ..outputs import check_model_folder
from ..models.checks import InputError
from ..models.configuration_contrique import ContriqueConfig
from ..models.modeling_contrique import ContriqueModel
from .model_card import write_model_card

_BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def official_to_hf_key(key: str) -> str | None:
    """Maps one official key to its ``ContriqueModel`` name; None when it has no counterpart."""
    if key.startswith("projector."):
        return key
    match = re.fullmatch(r"encoder\.([01])\.(\w+)", key)
    if match:
        layer, suffix = match.groups()
        return f"encoder.embedder.embedder.{'convolution' if layer == '0' else 'normalization'}.{suffix}"
    match = re.fullmatch(r"encoder\.([4-7])\.(\d+)\.(conv[123]|bn[123]|downsample\.[01])\.(\w+)", key)
    if not match:
        return None
    stage, block, part, suffix = match.groups()
    prefix = f"encoder.encoder.stages.{int(stage) - 4}.layers.{block}"
    if part.startswith("downsample"):
        kind = "convolution" if part.endswith("0") else "normalization"
        return f"{prefix}.shortcut.{kind}.{suffix}"
    index = int(part[-1]) - 1
    kind = "convolution" if part.startswith("conv") else "normalization"
    return f"{prefix}.layer.{index}.{kind}.{suffix}"


def load_checkpoint(path) -> dict:
    """``torch.load(path, weights_only=True)``: plain tensors only, no pickled code runs. A file that
    is not a checkpoint, or one that would need code to load, is a one-line ``ValueError`` naming it."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        if "weights only" in str(err).lower() or "weights_only" in str(err):
            raise InputError(
                f"CHECKPOINT: {path} holds objects that would run code on loading; refused (only plain "
                f"tensors are read)"
            ) from None
        raise InputError(f"CHECKPOINT: {path} is not a PyTorch checkpoint ({first})") from None
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError, UnicodeDecodeError, AttributeError, ImportError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise InputError(f"CHECKPOINT: {path} is not a readable PyTorch checkpoint ({type(err).__name__}: {first})") from None


def convert_state_dict(official: dict, config: ContriqueConfig | None = None) -> ContriqueModel:
    """A ``ContriqueModel`` holding the official weights; every key is accounted for, or a ValueError says which not."""
    if not isinstance(official, dict) or not all(isinstance(k, str) for k in official):
        raise InputError("checkpoint: expected a state dict (str -> tensor), found " + type(official).__name__)
    if "state_dict" in official and isinstance(official["state_dict"], dict):
        official = official["state_dict"]
    official = {k.removeprefix("module."): v for k, v in official.items()}  # DataParallel checkpoints
    model = ContriqueModel(config or ContriqueConfig())
    expected = model.state_dict()
    mapped, unused, misshaped = {}, [], []
    for key, tensor in official.items():
        target = official_to_hf_key(key)
        if target is None or target not in expected:
            unused.append(key)
        elif tuple(tensor.shape) != tuple(expected[target].shape):
            misshaped.append(f"{key}: expected {tuple(expected[target].shape)}, found {tuple(tensor.shape)}")
        else:
            mapped[target] = tensor
    missing = [k for k in expected if k not in mapped]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[:3]})")
    if unused:
        problems.append(f"{len(unused)} unused (e.g. {unused[:3]})")
    if misshaped:
        problems.append(f"{len(misshaped)} mis-shaped (e.g. {misshaped[:3]})")
    if problems:
        raise InputError("checkpoint: does not match CONTRIQUE's ResNet-50 layout: " + "; ".join(problems))
    model.load_state_dict(mapped, strict=True)
    return model.eval()


def build_contrique_folder(out_dir, checkpoint=None, overwrite: bool = False, name: str = "contrique-resnet50",
                           reference: str | None = None) -> Path:
    """Writes a Hub-ready folder: converted official weights, or random ones when ``checkpoint`` is None."""
    out_dir = Path(out_dir)
    check_model_folder(out_dir, "OUT_DIR", overwrite)
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise FileNotFoundError(f"CHECKPOINT: no such file {str(checkpoint)!r}")
        official = load_checkpoint(checkpoint)
        model = convert_state_dict(official)
        provenance = f"Weights converted from the official checkpoint `{checkpoint.name}` with `quarf-hf convert-contrique`."
    else:
        model = ContriqueModel(ContriqueConfig()).eval()
        provenance = "Weights: randomly initialised (no checkpoint given). Convert the official one before use."
    with atomic_folder(out_dir) as staging:
        model.save_pretrained(staging)
        write_model_card(staging, model.config, title=name, provenance=provenance,
                         reference=reference or f"<your-org>/{name}")
    return out_dir
