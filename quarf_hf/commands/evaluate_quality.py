"""``quarf-hf evaluate-quality MODEL``: probe a quality encoder on held-out corruptions, BRISQUE alongside."""

from __future__ import annotations

import json
from pathlib import Path

from ..models.checks import InputError, check_int_list


def _data_spec(text: str):
    """``quarf-shapes``, a folder of photos, or a YAML/JSON dataset spec."""
    from ..yaml_files import load_yaml_text

    if text == "quarf-shapes":
        return text
    if Path(text).expanduser().is_dir():
        return {"type": "images", "path": text}
    try:
        spec = load_yaml_text(text, "--data")
    except InputError:
        spec = None
    if not isinstance(spec, dict):
        raise FileNotFoundError(f"--data: {text!r} is neither 'quarf-shapes', an existing folder, nor a YAML/JSON spec dict")
    return spec


def _load_encoder(reference: str, revision: str | None = None):
    from ..evaluation.loading import check_revision
    from ..models.modeling_contrique import ContriqueModel

    revision = check_revision(reference, revision)
    try:
        return ContriqueModel.from_pretrained(reference, revision=revision).eval()
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"MODEL: could not load a ContriqueModel from {reference!r}: {err}") from err


def _held_out_kinds(reference: str, model_folder) -> list[str]:
    from ..degradations import CORRUPTIONS
    from ..quality_training.export import TRAINING_FILE

    recipe_path = Path(model_folder) / TRAINING_FILE
    if not recipe_path.is_file():
        raise InputError(f"--corruptions: {reference} has no {TRAINING_FILE} telling which kinds it was trained on; "
                         "name the held-out kinds with --corruptions")
    recipe = json.loads(recipe_path.read_text())
    if recipe.get("probe_corruptions"):
        return list(recipe["probe_corruptions"])
    return [name for name in CORRUPTIONS if name not in recipe["corruptions"]]


def _model_folder(reference: str, revision: str | None = None) -> Path | None:
    if Path(reference).is_dir():
        return Path(reference)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(reference, revision=revision, allow_patterns=["*.json"]))
    except Exception:
        return None


def run_evaluate_quality(args) -> int:
    from ..degradations import CORRUPTIONS
    from ..quality_training.probe import plot_probe, probe_images, probe_table, run_probe

    for name in args.corruptions or []:
        if name not in CORRUPTIONS:
            raise InputError(f"--corruptions: unknown {name!r}; expected names from {sorted(CORRUPTIONS)}")
    if args.severities:
        check_int_list("--severities", args.severities, 1, 5)
    model = _load_encoder(args.model, args.revision)
    from ..outputs import check_output_folder

    check_output_folder(args.out, ("probe.json", "probe.png"), "--out", overwrite=args.overwrite)
    corruptions = args.corruptions or _held_out_kinds(args.model, _model_folder(args.model, args.revision) or Path(args.model))
    data = [_data_spec(text) for text in args.data] if args.data else None
    images = probe_images({"data": data}, args.image_size, min_size=model.config.min_image_size, seed=args.seed)
    results = run_probe(model, images, corruptions, args.severities or [1, 2, 3, 4, 5], seed=args.seed,
                        return_features=True)
    out = Path(args.out)
    from ..atomic import write_text_atomic

    write_text_atomic(out / "probe.json", json.dumps({k: v for k, v in results.items() if k != "_data"}, indent=2))
    plot_probe(results, out / "probe.png")
    print(probe_table(results))
    print(f"wrote {out / 'probe.json'} and {out / 'probe.png'}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("evaluate-quality", help="probe a quality encoder on held-out corruptions (BRISQUE as reference)")
    parser.add_argument("model", help="a ContriqueModel folder or Hub id (e.g. the model/ folder of train-quality)")
    parser.add_argument("--revision", default=None, metavar="COMMIT",
                        help="a commit hash (or branch, tag) of a Hub MODEL: pins its code and weights")
    parser.add_argument("--data", action="append", help="probe images: quarf-shapes, a photo folder or a YAML spec "
                        "(repeatable; default: 48 quarf-shapes scenes of seed 1000)")
    parser.add_argument("--corruptions", nargs="+", help="held-out kinds (default: those the model was not trained on)")
    parser.add_argument("--severities", nargs="+", type=int, help="severities (default: 1 2 3 4 5)")
    parser.add_argument("--image-size", type=int, default=128, help="square tiles of this size (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the degradations and tiles")
    parser.add_argument("--out", default="outputs/evaluate-quality", help="folder for probe.json and probe.png")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier probe.json and probe.png in --out")
    parser.set_defaults(func=run_evaluate_quality)
