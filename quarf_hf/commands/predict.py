"""``quarf-hf predict``: run a segmentation or restoration model on image files and save what it sees.

For each IMAGE (any PIL mode, read to RGB by :func:`quarf_hf.models.image_utils.load_image`:
16-bit PNGs at full depth, transparency composited on white) the command optionally degrades it with
:func:`quarf_hf.degradations.degrade` (``--corruption`` / ``--severity`` / ``--seed``; the
degraded image is saved as ``<stem>_input.png``), runs the model at the image's own size and
writes, into ``--out``:

- segmentation (QuARF-SegFormer or a plain SegFormer): ``<stem>_segmentation.png``, the
  predicted classes in a fixed palette blended over the (possibly degraded) image, and
  ``<stem>_mask.png``, the class ids (8-bit grey PNG; 16-bit when the model has more than 256
  classes). Pixels are normalised as :func:`~quarf_hf.evaluation.model_pixel_normalisation`
  says, logits are upsampled bilinearly to the image size and arg-maxed.
- restoration (QuARF restoration): ``<stem>_restored.png``.

and ``predictions.json``: per image the input path, the degradation, the class histogram
(segmentation) or the PSNR of the output against the model's input (restoration), and, for
QuARF models, the mean routing weight of each expert (also printed, labelled with the expert's
receptive field). Every file is written under a temporary name and then renamed into place.

Image ``i`` (0-based, in the order given) is degraded on the CPU with a generator seeded from
``(seed, corruption, severity, i)`` exactly as ``quarf-hf evaluate`` seeds its images, so the
degraded input does not depend on the device.

This module parses, checks and prints; the work is :mod:`quarf_hf.prediction`'s
(``setup_prediction`` / ``predict_image`` / ``finish_prediction``).
"""

from __future__ import annotations

import glob
import warnings
from pathlib import Path

import torch
from PIL import Image

# Reused from ``quarf-hf evaluate`` so both commands load models and pick devices alike.
from quarf_hf.evaluation.loading import load_model, load_model_config, resolve_device
from quarf_hf.models.image_utils import check_pixel_count, load_image
from quarf_hf.prediction import finish_prediction, predict_image, routing_line, setup_prediction

from ..models.checks import InputError
from ..outputs import check_output_folder

OUTPUT_KINDS = ("input", "segmentation", "mask", "restored")  # <stem>_<kind>.png


def _check_images(paths: list[str]) -> list[Path]:
    """Every IMAGE exists and is a readable image; output names (the stems) do not collide."""
    checked, stems = [], {}
    for text in paths:
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"IMAGE: no such file {text!r}")
        try:
            with warnings.catch_warnings():  # PIL's bomb warning: the size rule says it in one line
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(path)  # the header only
        except Exception as err:  # noqa: BLE001 - PIL raises many kinds for unreadable files
            raise InputError(f"IMAGE: cannot read {text!r} as an image ({err})") from None
        with image:
            check_pixel_count(f"IMAGE {text!r}", *image.size)  # before anything is decoded
            try:
                image.verify()
            except Exception as err:  # noqa: BLE001 - as above
                raise InputError(f"IMAGE: cannot read {text!r} as an image ({err})") from None
        if path.stem in stems:
            raise InputError(
                f"IMAGE: {stems[path.stem]!r} and {text!r} share the name {path.stem!r}, so their outputs would collide"
            )
        stems[path.stem] = text
        checked.append(path)
    if not checked:
        raise InputError("IMAGE: expected at least one image")
    return checked


def _check_readable(paths: list[Path], min_size: int) -> None:
    """Decodes every image in full (a truncated file passes ``verify``) and checks its size against
    the model's minimum, so a bad second image fails before the first one's outputs are written."""
    for path in paths:
        try:
            pixels = load_rgb(path)
        except InputError:
            raise  # the loader's one line already names the file
        except Exception as err:  # noqa: BLE001 - PIL raises many kinds for damaged files
            raise InputError(f"IMAGE: cannot read {str(path)!r} as an image ({type(err).__name__}: {err})") from None
        height, width = pixels.shape[-2:]
        if min(height, width) < min_size:
            raise InputError(f"IMAGE: {str(path)!r} is {width}x{height} pixels; this model needs at least "
                             f"{min_size}x{min_size}")


def load_rgb(path) -> torch.Tensor:
    """An image file (any PIL mode) as a (1, 3, H, W) float32 tensor in [0, 1], read by
    :func:`quarf_hf.models.image_utils.load_image` (16-bit PNGs scaled by 65535, transparency
    composited on white), as every entry point of quarf-hf reads images."""
    return load_image(path, "IMAGE")[None]


def run(args) -> int:
    from quarf_hf.degradations.registry import check_degradation

    # Everything the user typed is checked before the model is loaded or anything is written.
    paths = _check_images(args.images)
    corruption, severity = check_degradation(args.corruption, args.severity, arguments=("--corruption", "--severity"))
    out = Path(args.out)
    outputs = ["predictions.json"] + [f"{glob.escape(path.stem)}_{kind}.png" for path in paths for kind in OUTPUT_KINDS]
    check_output_folder(out, outputs, "--out", overwrite=args.overwrite)
    device = resolve_device(args.device)
    config = load_model_config(args.model, args.trust_remote_code, args.revision)
    # A config with a minimum size declares it (QuARF-SegFormer); restoration resizes small images
    # for its quality model and declares none.
    _check_readable(paths, int(getattr(config, "min_image_size", 1) or 1))
    state = setup_prediction(load_model(args.model, config, args.trust_remote_code, args.revision), device)
    out.mkdir(parents=True, exist_ok=True)

    records = []
    for index, path in enumerate(paths):
        original = load_rgb(path)
        record, summary = predict_image(state, original, out, path.stem, index=index, corruption=corruption,
                                        severity=severity, seed=args.seed, source=str(path))
        records.append(record)
        label = f"{path}" + (f" ({corruption}, severity {severity})" if corruption else "")
        print(f"{label}: {summary}")
        if "routing" in record:
            print("  " + routing_line(record["routing"]))

    finish_prediction(state, records, out, args.model)
    print(f"Wrote {sum(len(r['outputs']) for r in records)} images and predictions.json to {out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="run a model on image files (optionally degraded) and save masks / restored images",
        description=(
            "Run a segmentation (QuARF-SegFormer, SegFormer) or restoration (QuARF) model on image files, "
            "optionally degraded first, and write colour-coded segmentations and class-id masks or restored "
            "images, plus predictions.json with the routing of QuARF models."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="a local model folder or a Hub repo id")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files (any mode; read as RGB, transparency on white)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the output images and predictions.json")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier prediction's files (predictions.json, the images' outputs) in --out")
    parser.add_argument("--corruption", default=None, metavar="NAME", help="degrade each image with this corruption first")
    parser.add_argument("--severity", type=int, default=None, metavar="N", help="severity 1..5 of --corruption (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the degradation (default: 0)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--revision", default=None, metavar="COMMIT", help="a commit hash (or branch, tag) of a Hub MODEL: pins its code and weights")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow running the code saved with a model of a type neither quarf_hf nor transformers "
                             "provides (the types they provide always load with their own classes)")
    parser.set_defaults(func=run)


__all__ = ["register", "run", "load_rgb"]
