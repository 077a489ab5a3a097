"""``quarf-hf evaluate``: a model's metrics on clean data and under every corruption x severity."""

from __future__ import annotations

import json
import os
import sys

from ..degradations.registry import parse_corruptions, parse_severities
from ..evaluation.loading import load_model, load_model_config, resolve_device
from ..evaluation.report import REPORT_FILES
from ..models.checks import InputError, check_int, looks_like_hub_id
from ..outputs import check_output_folder
from ..tasks import TaskSpec, task_of


def dataset_spec(args, task: TaskSpec, num_labels: int | None = None):
    """The ``load_dataset_spec`` argument for ``--dataset``; quarf-shapes gets the model's task and classes."""
    value = args.dataset
    if value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise InputError(f"--dataset: not a valid JSON spec ({err})") from None
    if value == "quarf-shapes":
        for name in ("num_samples", "image_size"):
            check_int(f"--{name.replace('_', '-')}", getattr(args, name))
        spec = {"type": "quarf-shapes", "num_samples": args.num_samples, "size": args.image_size, "seed": args.seed,
                "task": task.name}
        if task.classes and num_labels is not None:
            from quarf_hf.data.shapes import CLASS_NAMES

            if not 2 <= num_labels <= len(CLASS_NAMES):
                raise InputError(f"--dataset: quarf-shapes has 2 to {len(CLASS_NAMES)} classes, but the model "
                                 f"predicts {num_labels}: evaluate it on its own data")
            spec["num_classes"] = num_labels
        return spec
    if os.path.isdir(value):
        return {"type": "folder", "path": value, "split": args.split}
    if not looks_like_hub_id(value) or os.path.exists(value):
        raise FileNotFoundError(f"--dataset: no such folder {value!r}")
    return {"type": "datasets", "source": value, "split": args.split}


def run(args) -> int:
    from ..evaluation.report import markdown_table, write_report
    from ..evaluation.runner import evaluate_model

    # Everything the user typed is checked before anything heavy is loaded.
    severities = parse_severities(args.severities)
    corruptions = parse_corruptions(args.corruptions)
    check_int("--batch-size", args.batch_size)
    device = resolve_device(args.device)
    check_output_folder(args.out, REPORT_FILES, "--out", overwrite=args.overwrite)
    config = load_model_config(args.model, args.trust_remote_code, args.revision)
    task = task_of(config)
    spec = dataset_spec(args, task, getattr(config, "num_labels", None))

    from quarf_hf.data import load_dataset_spec

    from quarf_hf.data.checks import check_items, skipped_lines

    dataset = load_dataset_spec(spec)
    # Every item is read now: a damaged image or a wrong-size mask is named before evaluation starts.
    dataset, skipped = check_items(dataset, "--dataset", skip_bad=args.skip_bad, task=task.name)
    for line in skipped_lines(skipped):
        print(line, file=sys.stderr)
    model = load_model(args.model, config, args.trust_remote_code, args.revision).to(device)
    results = evaluate_model(
        model,
        dataset,
        corruptions=corruptions,
        severities=severities,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    results["model"] = args.model
    results["dataset"] = spec
    if skipped:
        results["skipped"] = [{"item": name, "reason": reason} for name, reason in skipped]
    paths = write_report(results, args.out, title=f"{args.model}: evaluation under corruptions")
    print(markdown_table(results))
    print(f"Wrote {', '.join(sorted(os.path.basename(p) for p in paths.values()))} to {args.out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="metrics on clean data and on every corruption x severity, with tables and plots",
        description=(
            "Evaluate a segmentation (mIoU, pixel accuracy) or restoration (PSNR, SSIM) model on clean "
            "images and on each corruption at each severity; writes results.json, results.md and PNG plots."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="a local model folder or a Hub repo id")
    parser.add_argument(
        "--dataset", default="quarf-shapes",
        help="'quarf-shapes' (synthetic), a dataset folder, a `datasets` source, or a JSON spec (default: quarf-shapes)",
    )
    parser.add_argument("--split", default="validation", help="split of a folder or `datasets` source (default: validation)")
    parser.add_argument("--num-samples", type=int, default=32, help="images of quarf-shapes (default: 32)")
    parser.add_argument("--image-size", type=int, default=64, help="image size of quarf-shapes (default: 64)")
    parser.add_argument("--corruptions", default="all", help="'all' or a comma-separated list (default: all)")
    parser.add_argument("--severities", default="1-5", help="'1-5', '1,3,5' or '3' (default: 1-5)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the degradations and quarf-shapes (default: 0)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default: 8)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for results.json, results.md and the plots")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier evaluation's files in --out")
    parser.add_argument("--revision", default=None, metavar="COMMIT", help="a commit hash (or branch, tag) of a Hub MODEL: pins its code and weights")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow running the code saved with a model of a type neither quarf_hf nor transformers "
                             "provides (the types they provide always load with their own classes)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out unreadable items and masks of the wrong size (listed) instead of stopping")
    parser.set_defaults(func=run)


__all__ = ["register", "run", "dataset_spec"]
