"""``quarf-hf study CONFIG``: does QuARF help? Arms x seeds on disjoint kinds, with paired statistics.

See :mod:`quarf_hf.study` for the config and ``configs/study.yaml`` for the built-in benchmark's study.
"""

from __future__ import annotations


def run_study_command(args) -> int:
    from pathlib import Path

    from ..study import StudyAborted, load_study_config, run_study, write_study_report

    overrides = {}
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.max_minutes is not None:
        overrides["max_minutes"] = args.max_minutes
    config = load_study_config(args.config, **overrides)  # every check before any run
    out = Path(args.out)
    if not args.report_only:
        print(f"quarf-hf study: {len(config.arms)} arms ({config.protocol}), {config.pilot_seeds} pilot seeds, then "
              f"{config.min_seeds}-{config.max_seeds} test seeds as the power needs; {config.base.get('max_steps', 100)} "
              f"steps each; outputs in {out}/")
        try:
            decisions = run_study(config, out)
        except StudyAborted as err:
            print(f"study stopped: {err}")
            return 3
        if not decisions["gate"]["valid"]:
            print(decisions["gate"]["reason"])
    written = write_study_report(config, out)
    print()
    print(written["markdown"])
    print("written: " + ", ".join(str(p) for p in [out / "report.md", out / "report.json", *written["plots"]]))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("study", help="compare arms fine-tuned from one base network per seed (augmentation / "
                                                 "static / FiLM / QuARF): diagnostics, a regime gate, a declared power")
    parser.add_argument("config", help="a study config (YAML); configs/study-restoration.yaml (photos) or configs/study.yaml (quarf-shapes)")
    parser.add_argument("--out", default="outputs/study", help="output folder; a rerun resumes there (default outputs/study)")
    parser.add_argument("--workers", type=int, help="processes side by side, one thread each")
    parser.add_argument("--max-minutes", type=float, help="a cap on the whole study: hitting it aborts (resume later)")
    parser.add_argument("--report-only", action="store_true", help="write the report from the runs on disk")
    parser.set_defaults(func=run_study_command)
