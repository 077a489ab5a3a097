"""The published variants: one ``hub_configs/*.yaml`` file each, read and checked here for ``quarf-hf
build`` (hub/build.py) and for the training configs that name one (``model.hub_config``, a recipe)."""

from __future__ import annotations

from pathlib import Path

from ..building import check_stage_width, read_block
from ..models.checks import InputError, check_choice, check_int, check_int_list, short_repr

MODEL_KINDS = ("quarf_segformer", "contrique", "quarf_restoration", "quarf_adapter")
# The ``adapter`` section of a ``quarf_adapter`` variant (base_type and after are required).
ADAPTER_KEYS = ("base_type", "after", "entry", "layout", "pixel_mean", "pixel_std")
# model kind -> the mapping that holds its architecture (config keyword arguments)
ARCHITECTURE_SECTIONS = {"quarf_segformer": "segformer", "quarf_restoration": "unet"}
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
        block = hub_block(data)
        sizes = data.get("segformer", {}).get("hidden_sizes")
        check_int_list(f"CONFIG: {path}: segformer.hidden_sizes", sizes)
        stage = check_int(f"CONFIG: {path}: quarf.stage", 0 if block.stage is None else block.stage, 0, len(sizes) - 1)
        check_stage_width(block.width, stage, sizes, "CONFIG: quarf.width", f" in {path}")
    if data["model"] == "quarf_adapter":
        _check_adapter_section(data, path)
    data["_path"] = str(path)
    return data


def hub_architecture(data: dict) -> dict:
    """A variant's architecture (its ``segformer`` or ``unet`` mapping; empty for other kinds)."""
    key = ARCHITECTURE_SECTIONS.get(data["model"])
    return dict(data.get(key) or {}) if key else {}


def hub_block(data: dict):
    """A variant's block (:class:`~quarf_hf.building.BlockSpec`), read as every block is read."""
    return read_block(data, hub_architecture(data))


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
