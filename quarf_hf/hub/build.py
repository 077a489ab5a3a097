"""``quarf-hf build``: turn a ``hub_configs/`` file into a Hub-ready model folder (and push it).

A folder holds the weights (safetensors), ``config.json`` with ``auto_map``, the model code
(so ``trust_remote_code=True`` works without this package), the image processor and a model
card; an adapter variant (``model: quarf_adapter``, e.g. QuARF-SAM) is the adapter alone, made
for the base network given as ``--base``, without a processor. It is written to a temporary
folder beside ``--out`` and renamed into place at the end, so a failed build leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import replace
from pathlib import Path

from ..atomic import atomic_folder
from ..building import new_quarf_model, quarf_model_from_base
from ..outputs import check_model_folder
from ..models.checks import InputError, looks_like_hub_id, short_repr
from .variants import hub_architecture, hub_block, load_hub_config


def _load_base(load, base):
    """Runs ``load()``; a missing or damaged ``--base`` becomes one line that names it."""
    try:
        return load()
    except OSError as err:
        raise FileNotFoundError(f"--base: cannot load {str(base)!r} as a model folder or Hub id ({_first_line(err)})") from None
    except InputError as err:  # the models' own one line (models/weights.py): a damaged file or config, named
        raise InputError(f"--base: {err}") from None
    except Exception as err:
        if type(err).__name__ == "SafetensorError":  # a truncated or random-bytes weights file
            raise InputError(f"--base: {str(base)!r} holds a damaged safetensors file ({err})") from None
        raise


def _first_line(err) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def build_quarf_segformer(data: dict, base: str | None, quality: str | None, revision: str | None = None):
    """The variant's QuARF-SegFormer: from ``base`` (its architecture must be the variant's), else new."""
    block = hub_block(data)
    block = replace(block, quality=quality or block.quality)
    segformer = hub_architecture(data)
    if base:
        model = _load_base(lambda: quarf_model_from_base(
            "quarf_segformer", base, block, num_labels=segformer.get("num_labels"), revision=revision), base)
        for key in ("hidden_sizes", "depths"):
            if key in segformer and list(getattr(model.config, key)) != list(segformer[key]):
                raise InputError(
                    f"--base: its {key} {list(getattr(model.config, key))} do not match "
                    f"{data['name']}'s {list(segformer[key])}"
                )
        return model, True
    return new_quarf_model("quarf_segformer", segformer, block), False


def _write_segformer_extras(model, data, folder: Path, base, repo_id):
    from transformers import SegformerImageProcessor

    from .model_card import write_model_card

    size = int(data.get("image_size", 512))
    SegformerImageProcessor(
        size={"height": size, "width": size}, image_mean=model.config.image_mean, image_std=model.config.image_std
    ).save_pretrained(folder)
    write_model_card(
        folder, model.config, title=data["name"], reference=repo_id or f"<your-org>/{data['name']}",
        provenance=("Weights: the base SegFormer's, the QuARF block at identity init." if base else
                    "Weights: randomly initialised (no base checkpoint was given): fine-tune before use."),
        base_model=data.get("base_model") if base else None, license=data.get("license", "other"),
    )


def build_quarf_restoration(data: dict, folder: Path, base=None, quality=None, repo_id=None, revision=None):
    """Writes weights, config (auto_map, custom pipeline), code and a model card into ``folder``."""
    from .model_card import write_model_card

    if base:  # a trained restoration model, published as it is
        model = _load_base(lambda: quarf_model_from_base("quarf_restoration", base, revision=revision), base)
    else:
        block = hub_block(data)
        block = replace(block, quality=quality or block.quality)
        model = new_quarf_model("quarf_restoration", hub_architecture(data), block)
    model.save_pretrained(folder)
    write_model_card(
        folder, model.config, title=data["name"], reference=repo_id or f"<your-org>/{data['name']}",
        provenance=f"Weights from {base}." if base else "Weights: randomly initialised (the identity until trained).",
        license=data.get("license"),
    )
    return model


def check_adapter_base(data: dict, base, revision=None) -> None:
    """An adapter variant is built on its base network: refuses a missing ``--base``, and one whose
    ``config.json`` names another model type, before any weights are read."""
    from transformers import PretrainedConfig

    from ..models.weights import check_source

    expected = data["adapter"]["base_type"]
    if not base:
        raise InputError(
            f"--base: {data['name']} is an adapter for {data['base_model']}, built on that network; pass its "
            f"folder or Hub id (--base {data['base_model']})"
        )

    def read_config() -> dict:
        check_source(str(base))  # a config.json too large to be one is refused before parsing
        return PretrainedConfig.get_config_dict(str(base), **({"revision": revision} if revision else {}))[0]

    found = _load_base(read_config, base).get("model_type")
    if found != expected:
        raise InputError(
            f"--base: expected a {expected!r} model such as {data['base_model']}, found model_type "
            f"{short_repr(found)} in {str(base)!r}"
        )


def build_quarf_adapter(data: dict, folder: Path, base, quality=None, repo_id=None, revision=None):
    """Writes the adapter alone into ``folder``, as ``QuarfAdapter.save_pretrained`` does, for the
    network ``base`` (checked by :func:`check_adapter_base`): a block after ``adapter.after`` at its
    identity init. The pixel normalisation is the base's saved image processor's, else the variant's."""
    from transformers import AutoModel

    from ..models.image_utils import processor_normalisation
    from ..models.modeling_quarf_adapter import QuarfAdapter
    from ..models.weights import from_pretrained_checked
    from .model_card import write_adapter_card

    settings = data["adapter"]
    load_kwargs = {"revision": revision} if revision else {}
    # trust_remote_code=False: the base's model_type is transformers' own (checked), so is the code that runs.
    network = _load_base(lambda: from_pretrained_checked(AutoModel.from_pretrained, str(base), trust_remote_code=False,
                                                         **load_kwargs), base)
    mean, std = processor_normalisation(str(base), **load_kwargs) or (
        settings.get("pixel_mean", 0.0), settings.get("pixel_std", 1.0))
    # A Hub id names the base on the card; a local copy stands for the variant's base model.
    recorded = str(base) if not os.path.exists(base) and looks_like_hub_id(str(base)) else data["base_model"]
    block = hub_block(data)
    adapter = QuarfAdapter.for_model(
        network, settings["after"], quality or block.quality or "brisque", entry=settings.get("entry"),
        layout=settings.get("layout", "auto"), pixel_mean=mean, pixel_std=std, base_model=recorded,
        **(block.settings or {}),
    )
    reference = repo_id or f"<your-org>/{data['name']}"
    adapter.save_pretrained(folder, repo_id=reference)
    # The variant's card in place of the generic one: its name, its licence, and that nothing is trained yet.
    residual = all(a["quarf"]["residual"] for a in adapter.config.attachments)
    write_adapter_card(folder, adapter, reference, title=data["name"], license=data.get("license"),
                       note=("The blocks are at their identity init (untrained): attached, they leave the base "
                             "network's outputs unchanged until you train them." if residual else
                             "The blocks are newly initialised (untrained): train them before use."))
    return adapter


def check_trained_encoder(data: dict, base) -> None:
    """A trained variant (a ``training`` recipe) is published from the folder its training wrote."""
    if not base:
        raise InputError(
            f"--base: {data['name']} is trained, not built from a checkpoint; run `quarf-hf train-quality "
            f"{data['name']}` and pass the folder it writes (outputs/{data['name']}/model) as --base"
        )
    if not Path(base).is_dir():
        raise FileNotFoundError(f"--base: no such folder {str(base)!r} (the model/ folder of a train-quality run)")


def build_trained_encoder(data: dict, folder: Path, base, repo_id=None) -> None:
    """Copies a train-quality ``model/`` folder whose architecture is the variant's; the card names the repo."""
    from ..models.modeling_contrique import ContriqueModel

    _copy_trained(data, folder, base, repo_id, ContriqueModel, data.get("contrique", {}))


def build_trained_restoration(data: dict, folder: Path, base, repo_id=None) -> None:
    """Copies a ``quarf-hf train NAME`` ``model/`` folder whose architecture is the variant's (its card,
    with the evaluation and the photos' licences, is kept; it names the repo)."""
    from ..models.modeling_quarf_restoration import QuarfRestorationModel

    if not Path(base).is_dir():
        raise FileNotFoundError(f"--base: no such folder {str(base)!r} (the model/ folder of a `quarf-hf train` run)")
    _copy_trained(data, folder, base, repo_id, QuarfRestorationModel, data.get("unet", {}))


def _copy_trained(data: dict, folder: Path, base, repo_id, model_class, architecture: dict) -> None:
    import shutil

    model = _load_base(lambda: model_class.from_pretrained(base), base)
    for key, expected in architecture.items():
        found = getattr(model.config, key)
        if (list(found) if isinstance(found, (list, tuple)) else found) != expected:
            raise InputError(f"--base: its {key} {found} do not match {data['name']}'s {expected}")
    for path in Path(base).iterdir():
        if path.is_file():
            shutil.copy2(path, folder / path.name)
    card = folder / "README.md"
    if card.is_file():
        reference = repo_id or f"<your-org>/{data['name']}"
        text = re.sub(r'from_pretrained\("[^"]*"', f'from_pretrained("{reference}"', card.read_text())
        text = re.sub(r'(pipeline\("[^"]*", model=)"[^"]*"', rf'\1"{reference}"', text)
        text = re.sub(r'quality="[^"]*"', f'quality="{reference}"', text)
        text = re.sub(r'model="[^"]*"', f'model="{reference}"', text)
        card.write_text(re.sub(r"^# .*$", f"# {data['name']}", text, count=1, flags=re.M))


def build(config_path, out_dir, base=None, quality=None, push=None, private=False, overwrite=False,
          revision=None) -> Path:
    """Builds the variant described by ``config_path`` into ``out_dir``; returns the folder.
    ``revision``: the commit of a Hub ``base`` to build from (refused for a local one)."""
    data = load_hub_config(config_path)
    if revision is not None:
        from ..evaluation.loading import check_revision

        if base is None:
            raise InputError(f"--revision: {revision!r} pins the commit of --base; give --base as a Hub id")
        revision = check_revision(str(base), revision)
    if base is not None:
        # A path that cannot be a Hub id must exist: say so now, not after transformers' traceback.
        if not os.path.exists(base) and not looks_like_hub_id(str(base)):
            raise FileNotFoundError(f"--base: no such folder or file {str(base)!r}")
    out_dir = Path(out_dir)
    check_model_folder(out_dir, "--out", overwrite)
    if data["model"] == "contrique" and "training" in data:
        check_trained_encoder(data, base)
    if data["model"] == "quarf_restoration" and "training" in data and not base:
        raise InputError(
            f"--base: {data['name']} is trained, not built from a checkpoint; run `quarf-hf train {data['name']}` "
            f"and pass the folder it writes (outputs/{data['name']}/model) as --base"
        )
    if data["model"] == "quarf_adapter":
        check_adapter_base(data, base, revision)
    if push:
        from .publish import resolve_token

        resolve_token(None)  # fail before the (long) build when there is no token
    with atomic_folder(out_dir) as staging:
        if data["model"] == "quarf_segformer":
            model, from_base = build_quarf_segformer(data, base, quality, revision)
            if not from_base:
                warnings.warn(f"{data['name']}: no --base given, the model is randomly initialised", stacklevel=2)
            model.save_pretrained(staging)
            _write_segformer_extras(model, data, staging, base, push)
        elif data["model"] == "contrique" and "training" in data:
            build_trained_encoder(data, staging, base, push)
        elif data["model"] == "contrique":
            from .convert_contrique import build_contrique_folder

            build_contrique_folder(staging, checkpoint=base, overwrite=True, name=data["name"])
        elif data["model"] == "quarf_adapter":
            build_quarf_adapter(data, staging, base, quality=quality, repo_id=push, revision=revision)
        elif "training" in data:
            build_trained_restoration(data, staging, base, push)
        else:
            build_quarf_restoration(data, staging, base=base, quality=quality, repo_id=push, revision=revision)
    if push:
        from .publish import push_folder_to_hub

        push_folder_to_hub(out_dir, push, private=private)
    return out_dir
