"""``quarf-hf study CONFIG``: does QuARF help? Arms x seeds on disjoint kinds, with paired statistics.

See :mod:`quarf_hf.study` for the config and ``configs/study.yaml`` for the built-in benchmark's study.
"""

from __future__ import annotations


def run_study_command(args) -> int:
    from pathlib import Path

    from ..study import StudyAborted, load_study_config, run_study, write_study_report

    overrides = {}
    if args.evaluate:
        overrides["evaluate"] = args.evaluate
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.max_minutes is not None:
        overrides["max_minutes"] = args.max_minutes
    if args.seeds:
        overrides["seeds"] = args.seeds
    config = load_study_config(args.config, **overrides)  # every check before any run
    out = Path(args.out)
    if not args.report_only:
        print(f"quarf-hf study: {len(config.arms)} arms x {len(config.seeds)} seeds, "
              f"{config.base.get('max_steps', 100)} steps each, evaluated on {config.evaluate} kinds; outputs in {out}/")
        try:
            counts = run_study(config, out)
        except StudyAborted as err:
            print(f"study stopped: {err}")
            return 3
        print(f"{counts['done']} runs done now, {counts['skipped']} already on disk")
    written = write_study_report(config, out)
    print()
    print(written["markdown"])
    print("written: " + ", ".join(str(p) for p in [out / "report.md", out / "report.json", *written["plots"]]))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("study", help="compare arms (baseline / augmentation / static / QuARF) over seeds "
                                                 "on disjoint corruption kinds, with paired statistics")
    parser.add_argument("config", help="a study config (YAML); configs/study.yaml is the built-in benchmark's")
    parser.add_argument("--out", default="outputs/study", help="output folder; a rerun resumes there (default outputs/study)")
    parser.add_argument("--evaluate", nargs="+", choices=["development", "test"],
                        help="override the config's evaluated kinds (add 'test' only once every choice is made)")
    parser.add_argument("--seeds", nargs="+", type=int, help="override the config's seeds")
    parser.add_argument("--workers", type=int, help="processes side by side, one thread each")
    parser.add_argument("--max-minutes", type=float, help="a cap on the whole study: hitting it aborts (resume later)")
    parser.add_argument("--report-only", action="store_true", help="write the report from the runs on disk")
    parser.set_defaults(func=run_study_command)
