"""Checkpoints: ``accelerator.save_state`` into a temporary folder renamed into place; keep the last K."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

PREFIX = "step-"


def checkpoint_dir(output_dir) -> Path:
    return Path(output_dir) / "checkpoints"


def save_checkpoint(accelerator, output_dir, step: int, keep: int) -> Path | None:
    """Saves the full training state at ``step`` (all processes call it; the main one writes)."""
    root = checkpoint_dir(output_dir)
    final = root / f"{PREFIX}{step:08d}"
    staging = root / f".{PREFIX}{step:08d}.tmp"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (staging / "progress.json").write_text(json.dumps({"step": step}))
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def list_checkpoints(output_dir) -> list[Path]:
    root = checkpoint_dir(output_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def latest_checkpoint(output_dir) -> tuple[Path, int] | None:
    checkpoints = list_checkpoints(output_dir)
    if not checkpoints:
        return None
    latest = checkpoints[-1]
    return latest, json.loads((latest / "progress.json").read_text())["step"]
