"""``quarf-hf build``: a ``hub_configs/`` variant as a Hub-ready folder, optionally pushed."""

from __future__ import annotations

from ..hub.build import build


def run_build(args) -> int:
    folder = build(args.config, args.out, base=args.base, quality=args.quality, push=args.push,
                   private=args.private, overwrite=args.overwrite, revision=args.revision)
    print(f"wrote {folder}")
    if args.push:
        print(f"pushed to {args.push}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("build", help="build a hub_configs/ variant into a Hub-ready folder")
    parser.add_argument("config", help="a hub_configs/*.yaml file, or a variant name such as quarf-segformer-b0")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--base", help="base checkpoint: a SegFormer folder/Hub id, CONTRIQUE_checkpoint25.tar, the "
                        "model/ folder of a train-quality run (quarf-quality-small), or the network an adapter variant "
                        "is for (quarf-sam-vit-base: a SAM folder/Hub id such as facebook/sam-vit-base; required)")
    parser.add_argument("--revision", metavar="COMMIT", help="commit hash (or branch, tag) of a Hub --base to build from")
    parser.add_argument("--quality", help="quality extractor: brisque, contrique, or a converted CONTRIQUE folder/Hub id")
    parser.add_argument("--push", metavar="REPO_ID", help="upload the folder to this Hub repo (token from HF_TOKEN)")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--overwrite", action="store_true", help="replace an --out folder that holds a model (config.json)")
    parser.set_defaults(func=run_build)
