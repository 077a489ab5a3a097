"""``quarf-hf demo``: four arms trained alike on built-in data, then compared; one seed.

By default (``--task restoration``) the four restoration arms of ``configs/restoration/`` (plain /
static / FiLM / QuARF) on the built-in photos, compared on the held-out test photos under kinds
neither the training nor the development evaluation uses (:mod:`quarf_hf.demo.restoration`);
``--task segmentation`` the four SegFormer arms of ``configs/`` on quarf-shapes
(:mod:`quarf_hf.demo.segmentation`).

``--steps`` sets the steps of every arm; ``--max-minutes`` is a wall-clock cap on the whole demo that
aborts it when hit (it never trains one arm less than another; exit status 3); ``--quick`` a short
version. For what holds over seeds, see ``docs/study.md``.
"""

from __future__ import annotations

from pathlib import Path

from ..models.checks import check_choice, check_int, check_number

TASKS = ("restoration", "segmentation")


def run_demo(args) -> int:
    check_choice("--task", args.task, TASKS)
    if args.max_minutes is not None:
        check_number("--max-minutes", args.max_minutes, 0, exclusive=True)
    if args.steps is not None:
        check_int("--steps", args.steps)
    check_int("--seed", args.seed, minimum=0)
    if args.threads is not None:
        check_int("--threads", args.threads)
    options = {"seed": args.seed, "steps": args.steps, "quick": args.quick, "max_minutes": args.max_minutes,
               "overwrite": getattr(args, "overwrite", False)}
    if args.task == "segmentation":
        import torch

        from ..demo.segmentation import run_segmentation_demo

        if args.threads is not None:
            torch.set_num_threads(args.threads)
        run_segmentation_demo(Path(args.out), **options)
    else:
        from ..demo.restoration import DEFAULT_THREADS, run_restoration_demo

        run_restoration_demo(Path(args.out), **options, threads=args.threads or DEFAULT_THREADS)
    return 0


def _run_demo(args) -> int:
    from ..demo import DemoAborted

    try:
        return run_demo(args)
    except DemoAborted as err:
        print(f"quarf-hf demo: stopped: {err}")
        return 3


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="train and compare four arms on built-in data (default: restoration "
                                                "of photographs: plain / static / FiLM / QuARF)")
    parser.add_argument("--task", default="restoration", metavar="TASK",
                        help="restoration (default: four restoration arms on the built-in photos) or segmentation "
                             "(baseline / augmentation / static mixture / QuARF SegFormers on quarf-shapes)")
    parser.add_argument("--quick", action="store_true",
                        help="a short version (restoration: 60 steps, one severity; segmentation: 300 steps, "
                             "smaller images and validation set)")
    parser.add_argument("--steps", type=int, help="training steps of every arm (default: the configs' max_steps, "
                                                  "or the --quick number)")
    parser.add_argument("--max-minutes", type=float,
                        help="wall-clock cap on the whole demo; hitting it aborts the demo (default: restoration "
                             "15, or 5 with --quick; segmentation 30, or 10 with --quick)")
    parser.add_argument("--out", default="outputs/demo",
                        help="output folder (default outputs/demo; restoration writes under OUT/restoration/)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo's outputs in --out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int,
                        help="torch's CPU threads (default: 1 for restoration, whose tiny arms gain nothing from more; "
                             "torch's own for segmentation)")
    parser.set_defaults(func=_run_demo)
