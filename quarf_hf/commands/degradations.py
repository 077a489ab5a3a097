"""``quarf-hf degradations``: a PNG grid of every corruption kind x severity on one image."""

from __future__ import annotations

from ..degradations import CORRUPTIONS
from ..degradations.gallery import make_gallery


def _run(args) -> int:
    names = None
    if args.names:
        names = [n for item in args.names for n in item.split(",") if n]
    path = make_gallery(args.image, args.out, names=names, seed=args.seed, size=args.size)
    print(f"wrote {path}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "degradations",
        help="write a PNG gallery of every corruption kind x severity applied to one image",
        description="Apply every corruption kind at severities 1-5 to an image and write a labelled PNG grid.",
    )
    parser.add_argument("--image", required=True, help="input image file")
    parser.add_argument("--out", default="gallery.png", help="output PNG path (default: gallery.png)")
    parser.add_argument("--size", type=int, default=256, help="resize the short side to N pixels (default: 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--names", nargs="+", default=None, help=f"kinds to show, space or comma separated (default: all): {', '.join(CORRUPTIONS)}"
    )
    parser.set_defaults(func=_run)
