"""Sharing an adapter as people share LoRA adapters: ``save_pretrained`` / ``push_to_hub`` write the
adapter only (its weights, config, code and, with quarf_hf installed, a model card naming the base
network: ``hub/model_card.py``), a few kB to MB next to the base network's weights.

Shipped to the Hub with every adapter (see :mod:`.modeling_quarf_adapter`).
"""

from __future__ import annotations

import os
import tempfile


class AdapterSharingMixin:
    """``save_pretrained`` with a model card, and ``push_to_hub`` of that folder, for a ``PreTrainedModel``
    (listed before it among the bases)."""

    # Writes README.md into a saved adapter folder: ``writer(folder, adapter, repo_id)``. quarf_hf sets
    # it to ``hub.model_card.write_adapter_card`` (the one card writer) when imported; models/ may not
    # import the tooling, so an adapter loaded as remote code without quarf_hf saves no card.
    model_card_writer = None

    def save_pretrained(self, save_directory, *args, push_to_hub: bool = False, **kwargs):
        """``PreTrainedModel.save_pretrained`` (adapter weights, config, code) plus a model card (README.md)
        when quarf_hf is installed (see ``model_card_writer``)."""
        repo_id = kwargs.pop("repo_id", None)
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True) and type(self).model_card_writer is not None:
            type(self).model_card_writer(save_directory, self, repo_id)
        if push_to_hub:
            self.push_to_hub(repo_id or os.path.basename(os.path.normpath(save_directory)))

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    commit_message: str = "Upload QuARF adapter", revision: str | None = None,
                    create_pr: bool = False, **kwargs):
        """Creates ``repo_id`` if needed and uploads the adapter folder, model card included.

        (transformers' own ``push_to_hub`` would replace the card with a generic one.)
        """
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        created = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        repo_id = getattr(created, "repo_id", repo_id)
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, repo_id=repo_id)
            return api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="model",
                                     commit_message=commit_message, revision=revision, create_pr=create_pr)
