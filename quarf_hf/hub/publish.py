"""Uploading a built folder to the Hub with huggingface_hub (repo creation + folder upload)."""

from __future__ import annotations

import os
from pathlib import Path

from ..models.checks import InputError, looks_like_hub_id, short_repr


def resolve_token(token: str | None) -> str:
    """The token to push with: the argument, ``HF_TOKEN``, or the one saved by ``hf auth login``."""
    from huggingface_hub import get_token

    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise InputError(
            "token: no Hugging Face token found; set HF_TOKEN or run `hf auth login` (a write token is needed to push)"
        )
    return token


def push_folder_to_hub(folder, repo_id: str, private: bool = False, token: str | None = None,
                       commit_message: str = "Upload QuARF model built with quarf-hf") -> str:
    """Creates ``repo_id`` (if needed) and uploads ``folder``; returns the commit URL."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder: no such directory {str(folder)!r}")
    if not isinstance(repo_id, str) or not looks_like_hub_id(repo_id) or "/" not in repo_id:
        raise InputError(f"repo_id: expected 'namespace/name', found {short_repr(repo_id)}")
    api = HfApi(token=resolve_token(token))
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", commit_message=commit_message)
    return str(getattr(info, "commit_url", info))
