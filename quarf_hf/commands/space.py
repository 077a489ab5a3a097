"""``quarf-hf space``: serve the Gradio Space (``spaces/quarf-demo``) locally.

Models, in order: ``--model`` / ``--baseline`` / ``--restoration`` / ``--plain-restoration``, the
environment variables ``QUARF_MODEL`` / ``BASELINE_MODEL`` / ``RESTORATION_MODEL`` /
``PLAIN_RESTORATION_MODEL``, then the folders ``quarf-hf demo`` wrote under ``outputs/demo/``
(``quarf/model``, ``augmentation/model``, ``restoration/quarf/model``, ``restoration/plain/model``).
With none the page opens and says how to get one.
"""

from __future__ import annotations

from ..models.checks import InputError, check_int


def run_space(args) -> int:
    if args.port is not None:
        check_int("--port", args.port, 1, 65535, expected="a port number from 1 to 65535")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise InputError("quarf-hf space needs gradio: pip install 'quarf-hf[space]' (or pip install gradio)") from None
    from ..space import launch

    revisions = {"quarf": args.revision, "baseline": args.baseline_revision, "restoration": args.restoration_revision,
                 "plain_restoration": args.plain_restoration_revision}
    launch(model=args.model, baseline=args.baseline, restoration=args.restoration, host=args.host, port=args.port,
           share=args.share, revisions=revisions, plain_restoration=args.plain_restoration)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "space",
        help="serve the Gradio page: degrade a photo, watch QuARF restore (and segment) it and its routing",
        description=(
            "Serve the Space of spaces/quarf-demo locally: upload an image or pick a built-in photo, degrade it with "
            "any corruption at severity 0-5, and compare QuARF's restoration (and segmentation) and routing with a "
            "plain model's."
        ),
    )
    parser.add_argument("--model", default=None, metavar="MODEL",
                        help="QuARF segmentation model, folder or Hub id (default: $QUARF_MODEL, else outputs/demo/quarf/model)")
    parser.add_argument("--baseline", default=None, metavar="MODEL",
                        help="model shown next to it (default: $BASELINE_MODEL, else the demo's augmentation arm)")
    parser.add_argument("--restoration", default=None, metavar="MODEL",
                        help="QuARF restoration model for the restoration tab (default: $RESTORATION_MODEL, "
                             "else outputs/demo/restoration/quarf/model)")
    parser.add_argument("--plain-restoration", default=None, metavar="MODEL",
                        help="restoration model shown next to it (default: $PLAIN_RESTORATION_MODEL, "
                             "else outputs/demo/restoration/plain/model)")
    for flag, role, variable in (("--revision", "--model", "QUARF_REVISION"), ("--baseline-revision", "--baseline", "BASELINE_REVISION"),
                                 ("--restoration-revision", "--restoration", "RESTORATION_REVISION"),
                                 ("--plain-restoration-revision", "--plain-restoration", "PLAIN_RESTORATION_REVISION")):
        parser.add_argument(flag, default=None, metavar="COMMIT",
                            help=f"commit hash (or branch, tag) of the Hub id given to {role} (default: ${variable})")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=None, help="port (default: gradio's, 7860 or the next free one)")
    parser.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    parser.set_defaults(func=run_space)
