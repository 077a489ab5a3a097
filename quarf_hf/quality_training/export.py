"""The end of a quality-encoder run: a Hub-ready ContriqueModel folder with its recipe, probe and card."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_folder
from ..hub.model_card import write_model_card

TRAINING_FILE = "quality_training.json"  # what the encoder was trained on: evaluate-quality reads it


def probe_section(probe: dict) -> str:
    from .probe import probe_table

    setup = probe["setup"]
    return (f"Measured by `quarf-hf evaluate-quality` on {setup['images']} held-out images (tiles of "
            f"{setup.get('source_images', setup['images'])} source images, "
            f"{setup['image_size'][0]}x{setup['image_size'][1]}) and corruption kinds never seen in training "
            f"({', '.join(setup['corruptions'])}; severities {setup['severities']} and clean), probes fitted on "
            f"half of the source images and scored on the other half, next to BRISQUE's 36 features on the same images:\n\n"
            + probe_table(probe) + "\n\n![probe](probe.png)")


def export_encoder(model, folder, config, summary: dict, probe: dict | None = None,
                   push_to_hub: str | None = None, name: str | None = None, state_dict: dict | None = None) -> Path:
    """Writes ``folder`` atomically: weights, config + code (auto_map), recipe, probe figures, card.
    ``state_dict``: the weights gathered by ``accelerator.get_state_dict`` (the model's own when None)."""
    from .probe import plot_probe

    folder = Path(folder)
    recipe = {"corruptions": summary["corruptions"], "severities": summary["severities"],
              "clean_class": config.clean_class, "image_size": config.image_size, "crop_size": config.crop_size,
              "authentic_fraction": config.authentic_fraction, "temperature": config.temperature,
              "batch_size": config.batch_size, "steps": summary["steps"], "data": summary["data"],
              "probe_corruptions": (config.probe or {}).get("corruptions")}
    with atomic_folder(folder) as staging:
        model.save_pretrained(staging, state_dict=state_dict)
        (staging / TRAINING_FILE).write_text(json.dumps(recipe, indent=2))
        sections = {}
        if probe is not None:
            (staging / "probe.json").write_text(json.dumps({k: v for k, v in probe.items() if k != "_data"}, indent=2))
            if "_data" in probe:
                plot_probe(probe, staging / "probe.png")
            sections["Probe"] = probe_section(probe)
        reference = push_to_hub or str(folder)
        width = model.config.feature_dim
        write_model_card(
            staging, model.config, title=name or folder.name, reference=reference, license="apache-2.0",
            extra_tags=["contrastive-learning"], extra_sections=sections,
            description=(
                f"A quality encoder (CONTRIQUE's architecture: a ResNet with bottleneck blocks, depths "
                f"{list(model.config.depths)}, widths {list(model.config.hidden_sizes)}) trained by quarf-hf with "
                f"CONTRIQUE's contrastive objective (Madhusudana et al., IEEE TIP 2022) for {summary['steps']} steps: "
                f"{summary['classes']} synthetic classes (each of {len(summary['corruptions'])} corruption kinds x "
                f"{len(summary['severities'])} severities{', plus clean' if config.clean_class else ''}), two crops "
                f"per image at full and half scale. Input: RGB in [0, 1], at least {model.config.min_image_size}"
                f"x{model.config.min_image_size} pixels; output: {width}-d quality features. Use it wherever "
                f"quarf-hf takes a quality model: `quality=\"{reference}\"`."),
            provenance="Trained on: " + "; ".join(summary["data"]) + ".",
        )
    if push_to_hub:
        from ..hub.publish import push_folder_to_hub

        push_folder_to_hub(folder, push_to_hub)
    return folder
