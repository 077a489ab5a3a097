"""``quarf-hf export``: a model folder or Hub id as one ONNX file or ``torch.export`` program.

Loads MODEL as ``predict`` does (``--revision``, ``--trust-remote-code``), exports it with its quality
extractor inside, runs the result on a sample next to the eager model, prints the largest difference and
writes ``--out`` (the file and ``export.json``) only when they agree. The work is :mod:`quarf_hf.export`'s.
"""

from __future__ import annotations


def run(args) -> int:
    from quarf_hf.evaluation.loading import load_model, load_model_config
    from quarf_hf.export import TOLERANCE, check_out_folder, export_model, parse_size

    # Everything the user typed is checked before the model is loaded or anything is written.
    size = parse_size(args.size)
    check_out_folder(args.out, args.overwrite)
    config = load_model_config(args.model, args.trust_remote_code, args.revision)
    model = load_model(args.model, config, args.trust_remote_code, args.revision)
    record = export_model(model, args.format, args.out, size=size, overwrite=args.overwrite, source=args.model,
                          revision=args.revision)
    print(f"max difference from the eager model: {record['max_difference']:.3g} (tolerance {TOLERANCE[args.format]:g})")
    print(f"Wrote {record['file']} and export.json to {args.out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model (quality extractor inside) to ONNX or a torch.export program, checked against eager",
        description=(
            "Export a QuARF-SegFormer or restoration model, its quality extractor inside, as one ONNX file "
            "(run with onnxruntime) or one torch.export program (.pt2). The result is run on a sample next to "
            "the eager model and written only when they agree. Batch size is dynamic; the image size is --size."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="a local model folder or a Hub repo id")
    parser.add_argument("--format", required=True, choices=["onnx", "exported-program"], help="what to write")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the exported file and export.json")
    parser.add_argument("--size", default="512", metavar="N|HxW", help="the image size the export takes (default: 512)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    parser.add_argument("--revision", default=None, metavar="COMMIT", help="a commit hash (or branch, tag) of a Hub MODEL: pins its code and weights")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow running the code saved with a model of a type neither quarf_hf nor transformers "
                             "provides (the types they provide always load with their own classes)")
    parser.set_defaults(func=run)


__all__ = ["register", "run"]
