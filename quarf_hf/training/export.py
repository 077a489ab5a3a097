"""The end of a run: a Hub-ready ``save_pretrained`` folder with code, processor and model card."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_folder
from ..hub.model_card import write_model_card
from ..tasks import task_of


def _provenance(config, summary) -> str:
    policy = config.augmentation.get("policy", "none")
    if policy == "degradation":
        kinds = config.augmentation.get("corruptions", "all")
        policy = (f"{', '.join(kinds) if isinstance(kinds, list) else kinds} at severities "
                  f"{config.augmentation.get('severities', [1, 5])} (a [low, high] pair is a range), "
                  f"probability {config.augmentation.get('p', 0.5)}, size rule reference_size="
                  f"{config.augmentation.get('reference_size')}")
    verb = "Fine-tuned" if config.model.get("base") else "Trained"
    return (f"{verb} with quarf-hf for {summary['steps']} steps on {summary['num_processes']} process(es), "
            f"degradation augmentation: {policy}.")


def _dataset_name(config) -> str:
    """The validation data's name for the card's model-index: the built-in photos it reads, a Hub
    source, a folder, else its spec type."""
    spec = config.data.get("validation") or {}
    names = _photo_names(spec)
    if names:
        return f"quarf-hf built-in photos ({', '.join(names)})"
    return str(spec.get("source") or spec.get("path") or spec.get("type") or "validation")


def _photo_names(spec) -> list[str]:
    """The built-in photos a dataset spec reads (none for other specs)."""
    from ..data.photos import photo_names

    if not isinstance(spec, dict) or spec.get("type") != "photos":
        return []
    names = spec.get("photos") or photo_names(spec.get("split", "train"))
    return [names] if isinstance(names, str) else list(names)


def photos_section(config) -> str | None:
    """The built-in photos a run trained and was evaluated on, with source and licence (the table of
    :mod:`quarf_hf.data.photos`), and the credit each CC BY licence asks for; None without photos."""
    from ..data.photos import get_photo

    used = [(name, "training") for name in _photo_names(config.data.get("train"))]
    used += [(name, "evaluation") for name in _photo_names(config.data.get("validation"))]
    if not used:
        return None
    rows = ["| photo | used for | shipped by | source | licence |", "|---|---|---|---|---|"]
    credits = []
    for name, role in used:
        photo = get_photo(name)
        rows.append(f"| {name} | {role} | {photo.package} (`{photo.accessor}`) | {photo.source} | {photo.licence} |")
        if photo.licence.startswith("CC BY"):
            credits.append(f"{name}: {photo.source}, {photo.licence.split(' (')[0]}")
    text = ("Photographs that ship inside installed packages (no download); crops of them, degraded on the fly.\n\n"
            + "\n".join(rows))
    if credits:
        text += "\n\nCredits (CC BY 2.0, https://creativecommons.org/licenses/by/2.0/): " + "; ".join(credits) + "."
    return text


def _hub_datasets(config) -> list[str]:
    """Hub ids of the training and validation data (specs with a Hub ``source``), for the card's ``datasets``."""
    from ..models.checks import looks_like_hub_id

    found = []
    for name in ("train", "validation"):
        spec = config.data.get(name)
        for item in spec if isinstance(spec, list) else [spec]:
            source = item.get("source") if isinstance(item, dict) else item
            if isinstance(source, str) and "/" in source and looks_like_hub_id(source) and not Path(source).exists():
                found.append(source)
    return list(dict.fromkeys(found))


def export_model(model, folder, config, summary: dict, push_to_hub: str | None = None,
                 image_size: tuple[int, int] | None = None, state_dict: dict | None = None) -> Path:
    """Writes ``folder`` atomically (staging folder renamed into place); pushes it when asked.

    ``image_size``: (height, width) the saved image processor resizes to (the training size).
    ``state_dict``: the weights to save, gathered by ``accelerator.get_state_dict`` (under FSDP or
    DeepSpeed ZeRO-3 the unwrapped model's own ``state_dict()`` holds only this process's shards).
    """
    from ..evaluation import model_pixel_normalisation

    folder = Path(folder)
    with atomic_folder(folder) as staging:
        model.save_pretrained(staging, state_dict=state_dict)
        if not task_of(model).raw_pixels:  # a model of [0, 1] pixels needs no processor to normalise them
            from transformers import SegformerImageProcessor

            mean, std = model_pixel_normalisation(model)
            size = {"height": image_size[0], "width": image_size[1]} if image_size else None
            SegformerImageProcessor(size=size, image_mean=mean, image_std=std).save_pretrained(staging)
        sections = {}
        photos = photos_section(config)
        if photos:
            sections["Training and evaluation data"] = photos
        if config.limitations:
            sections["Limitations"] = config.limitations
        write_model_card(
            staging, model.config, title=config.name or folder.name, provenance=_provenance(config, summary),
            extra_sections=sections, reference=push_to_hub or str(folder), base_model=config.model.get("base"),
            evaluation=summary.get("evaluation") or None, dataset=_dataset_name(config),
            datasets=_hub_datasets(config), base_model_relation="finetune" if config.model.get("base") else None,
        )
    if push_to_hub:
        from ..hub.publish import push_folder_to_hub

        push_folder_to_hub(folder, push_to_hub)
    return folder
