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
from pathlib import Path

from ..atomic import atomic_folder
from ..outputs import check_model_folder
from ..models.checks import InputError, check_choice, check_int, check_int_list, looks_like_hub_id, short_repr

MODEL_KINDS = ("quarf_segformer", "contrique", "quarf_restoration", "quarf_adapter")
# The ``adapter`` section of a ``quarf_adapter`` variant (base_type and after are required).
ADAPTER_KEYS = ("base_type", "after", "entry", "layout", "pixel_mean", "pixel_std")
# The published variants: hub_configs/ at the top of the repository, installed with the package
# as quarf_hf/hub_configs (a link in the source tree, package data in a wheel).
HUB_CONFIGS = Path(__file__).resolve().parents[1] / "hub_configs"


def published_variants() -> list[str]:
    """The names of the variants in ``hub_configs/`` (``quarf-segformer-b0``, ...), sorted."""
    return sorted(path.stem for path in HUB_CONFIGS.glob("*.yaml"))


def load_hub_config(path) -> dict:
    """Reads and checks one ``hub_configs/*.yaml`` file."""
    path = Path(path)
    if not path.is_file():
        candidate = HUB_CONFIGS / f"{path.name}.yaml"
        if candidate.is_file():
            path = candidate
        else:
            raise FileNotFoundError(
                f"CONFIG: no such file {str(path)!r}, nor a published variant of that name "
                f"(known: {', '.join(published_variants())})"
            )
    from ..yaml_files import read_yaml_mapping

    data = read_yaml_mapping(path, "CONFIG")
    for key in ("name", "model"):
        if key not in data:
            raise InputError(f"CONFIG: {path} is missing the key {key!r}")
    check_choice(f"CONFIG: {path}: model", data["model"], MODEL_KINDS)
    for key in ("quarf", "segformer", "unet", "adapter"):
        if key in data and not isinstance(data[key], dict):
            raise InputError(f"CONFIG: {key}: expected a mapping, found {short_repr(data[key])} in {path}")
    if data["model"] == "quarf_segformer":
        quarf = data.get("quarf", {})
        stage = quarf.get("stage", 0)
        sizes = data.get("segformer", {}).get("hidden_sizes")
        check_int_list(f"CONFIG: {path}: segformer.hidden_sizes", sizes)
        check_int(f"CONFIG: {path}: quarf.stage", stage, 0, len(sizes) - 1)
        width = sizes[stage]
        if quarf.get("width", width) != width:
            raise InputError(
                f"CONFIG: quarf.width: expected stage {stage}'s hidden size {width}, found {quarf['width']} in {path}"
            )
    if data["model"] == "quarf_adapter":
        _check_adapter_section(data, path)
    data["_path"] = str(path)
    return data


def _check_adapter_section(data: dict, path: Path) -> None:
    """A ``quarf_adapter`` variant names its base (``base_model``) and where its block goes (``adapter``)."""
    adapter = data.get("adapter")
    if not isinstance(adapter, dict):
        raise InputError(f"CONFIG: adapter: expected a mapping with base_type and after, found {short_repr(adapter)} in {path}")
    unknown = sorted(set(adapter) - set(ADAPTER_KEYS))
    if unknown:
        raise InputError(f"CONFIG: adapter: unknown keys {unknown}; expected some of {list(ADAPTER_KEYS)} in {path}")
    for where, value in (("base_model", data.get("base_model")), ("adapter.base_type", adapter.get("base_type")),
                         ("adapter.after", adapter.get("after"))):
        if not isinstance(value, str) or not value:
            raise InputError(f"CONFIG: {where}: expected a non-empty string, found {short_repr(value)} in {path}")


def block_settings(data: dict) -> tuple[int, dict]:
    """A hub config's ``quarf`` section -> (the stage it follows, the QuARF block's own settings)."""
    quarf = dict(data.get("quarf", {}))
    stage = quarf.pop("stage", 0)
    quarf.pop("width", None)  # checked against the stage's width by load_hub_config; not a block setting
    return stage, quarf


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


def new_quarf_model(model_type: str, quality="brisque", **config_kwargs):
    """A newly initialised QuARF model from its config's keyword arguments plus a quality spec.

    ``model_type``: ``"quarf_segformer"`` or ``"quarf_restoration"``. ``quality``: anything
    :func:`~quarf_hf.models.quality.resolve_quality` takes (``"brisque"``, ``"contrique"``, a
    converted CONTRIQUE folder or Hub id, a spec dict, an extractor module); its spec goes into the
    config and its weights into the model's frozen extractor.
    """
    from ..models.configuration_quarf_restoration import QuarfRestorationConfig
    from ..models.configuration_quarf_segformer import QuarfSegformerConfig
    from ..models.modeling_quarf_restoration import QuarfRestorationModel
    from ..models.modeling_quarf_segformer import QuarfSegformerForSemanticSegmentation
    from ..models.quality import resolve_quality

    # model type -> config class, model class, where the model keeps its quality extractor
    classes = {
        "quarf_segformer": (QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation, "segformer.quality_extractor"),
        "quarf_restoration": (QuarfRestorationConfig, QuarfRestorationModel, "quality_extractor"),
    }
    check_choice("model_type", model_type, classes)
    config_class, model_class, extractor_path = classes[model_type]
    extractor, spec = resolve_quality(quality)
    with warnings.catch_warnings():  # the extractor's weights are loaded just below, whatever its type
        warnings.filterwarnings("ignore", message="quality: 'contrique' without weights")
        model = model_class(config_class(**config_kwargs, quality=spec))
    model.get_submodule(extractor_path).load_state_dict(extractor.state_dict())
    return model


def build_quarf_segformer(data: dict, base: str | None, quality: str | None, revision: str | None = None):
    from ..models.modeling_quarf_segformer import QuarfSegformerForSemanticSegmentation

    stage, settings = block_settings(data)
    quality = quality or data.get("quality", "brisque")
    segformer = dict(data["segformer"])
    if base:
        model = _load_base(lambda: QuarfSegformerForSemanticSegmentation.from_segformer(
            base, quality=quality, quarf_stage=stage, num_labels=segformer.get("num_labels"), revision=revision, **settings
        ), base)
        for key in ("hidden_sizes", "depths"):
            if key in segformer and list(getattr(model.config, key)) != list(segformer[key]):
                raise InputError(
                    f"--base: its {key} {list(getattr(model.config, key))} do not match "
                    f"{data['name']}'s {list(segformer[key])}"
                )
        return model, True
    return new_quarf_model("quarf_segformer", quality, **segformer, quarf=settings, quarf_stage=stage), False


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
    from ..models.modeling_quarf_restoration import QuarfRestorationModel
    from .model_card import write_model_card

    if base:
        model = _load_base(lambda: QuarfRestorationModel.from_pretrained(base, revision=revision), base)
    else:
        model = new_quarf_model("quarf_restoration", quality or data.get("quality", "brisque"),
                                **data.get("unet", {}), quarf=dict(data.get("quarf", {})))
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
    adapter = QuarfAdapter.for_model(
        network, settings["after"], quality or data.get("quality", "brisque"), entry=settings.get("entry"),
        layout=settings.get("layout", "auto"), pixel_mean=mean, pixel_std=std, base_model=recorded,
        **data.get("quarf", {}),
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
