"""Checkpoints: ``accelerator.save_state`` into a temporary folder renamed into place; keep the last K."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from ..atomic import commit_staging_folder, remove_stale_staging, staging_folder, staging_path
from ..models.checks import check_int

PREFIX = "step-"
_SAVING = "saving__"  # the staging folder's fixed last part (8 characters, as the atomic helpers' random ones)


def checkpoint_dir(output_dir) -> Path:
    return Path(output_dir) / "checkpoints"


def save_checkpoint(accelerator, output_dir, step: int, keep: int) -> Path | None:
    """Saves the full training state at ``step`` (all processes call it; the main one writes)."""
    final = checkpoint_dir(output_dir) / f"{PREFIX}{step:08d}"
    # A fixed staging name: every process saves its part into the same folder.
    staging = staging_path(final, _SAVING)
    if accelerator.is_main_process:
        staging = staging_folder(final, suffix=_SAVING)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (staging / "progress.json").write_text(json.dumps({"step": step}))
        commit_staging_folder(staging, final)
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def list_checkpoints(output_dir) -> list[Path]:
    root = checkpoint_dir(output_dir)
    if not root.is_dir():
        return []
    # Only the names save_checkpoint writes: rotation removes these and nothing else.
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.is_symlink() and re.fullmatch(rf"{PREFIX}\d{{8}}", p.name))


def checkpoint_problem(path) -> str | None:
    """Why the checkpoint folder ``path`` cannot be resumed from, or None when it looks intact.

    Checks ``progress.json`` (a step number), that there are model weights, that every
    safetensors file reads in full (a truncated or overwritten file fails here, named) and that
    no other state file is empty. ``accelerator.load_state`` can still fail on a damaged pickle;
    :func:`train` falls back past that too.
    """
    path = Path(path)
    try:
        step = json.loads((path / "progress.json").read_text())["step"]
        check_int("step", step, minimum=0)
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"progress.json is missing or damaged ({type(err).__name__}: {err})"
    files = sorted(p for p in path.rglob("*") if p.is_file())
    if not any(p.name.startswith(("model", "pytorch_model")) for p in files):
        return "it holds no model weights (model*.safetensors)"
    from safetensors.torch import load_file

    for file in files:
        if file.stat().st_size == 0:
            return f"{file.relative_to(path)} is empty"
        if file.suffix == ".safetensors":
            try:
                load_file(file)
            except Exception as err:  # noqa: BLE001 - SafetensorError and friends
                return f"{file.relative_to(path)} is not a readable safetensors file ({err})"
    return None


def checkpoint_step(path) -> int:
    return int(json.loads((Path(path) / "progress.json").read_text())["step"])


def latest_checkpoint(output_dir) -> tuple[Path, int] | None:
    """The newest checkpoint that :func:`checkpoint_problem` finds intact, with its step."""
    for path in reversed(list_checkpoints(output_dir)):
        if checkpoint_problem(path) is None:
            return path, checkpoint_step(path)
    return None


def remove_stale_checkpoint_staging(output_dir) -> list[Path]:
    """Removes the staging folders that a run killed while saving a checkpoint left behind."""
    return remove_stale_staging(checkpoint_dir(output_dir))
