"""``quarf-hf convert-contrique``: the official CONTRIQUE checkpoint as a Hub-ready folder."""

from __future__ import annotations

from ..hub.convert_contrique import build_contrique_folder


def run_convert(args) -> int:
    folder = build_contrique_folder(args.out_dir, checkpoint=args.checkpoint, overwrite=args.overwrite)
    print(f"wrote {folder}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("convert-contrique", help="convert the official CONTRIQUE checkpoint to a Hub folder")
    parser.add_argument("checkpoint", help="CONTRIQUE_checkpoint25.tar (a state dict)")
    parser.add_argument("out_dir", help="output folder (Hub-ready: safetensors, config, code, model card)")
    parser.add_argument("--overwrite", action="store_true", help="replace an OUT_DIR that holds a model (config.json)")
    parser.set_defaults(func=run_convert)
