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
        elif not decisions.get("precondition", {"passed": True})["passed"]:
            print(f"precondition failed: {decisions['precondition']['reason']}")
    written = write_study_report(config, out)
    print()
    print(written["markdown"])
    print("written: " + ", ".join(str(p) for p in [out / "report.md", out / "report.json", *written["plots"]]))
    return 0


DESCRIPTION = """\
Tests whether QuARF's routing helps, as a declared protocol on separate photos and kinds:
  1. pilot seeds (at least 4) train every arm (and single-expert and oracle diagnostics) on
     the development images only;
  2. the regime gate: the networks must beat the degraded input (or the clean base), else stop;
  3. the precondition (where declared): some cells must prefer different receptive fields in
     every pilot seed and an oracle router must beat the static mixture, else stop;
  4. the power: test seeds from the pilot sd's 80% upper bound (or a declared sd), enough for
     80% power at the declared effect, frozen before any test seed runs;
  5. the test seeds, paired by seed: t-interval, photo-cluster bootstrap, Holm for secondary
     comparisons, sign test. Every stop is reported with its numbers."""


def register(subparsers) -> None:
    import argparse

    parser = subparsers.add_parser("study", help="compare arms trained per seed (augmentation / static / FiLM / "
                                                 "QuARF): diagnostics, a regime gate, a precondition, a declared power",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="a study config (YAML): configs/study-receptive-field.yaml, "
                                       "configs/study-restoration.yaml (photos) or configs/study.yaml (quarf-shapes)")
    parser.add_argument("--out", default="outputs/study", help="output folder; a rerun resumes there (default outputs/study)")
    parser.add_argument("--workers", type=int, help="processes side by side, one thread each")
    parser.add_argument("--max-minutes", type=float, help="a cap on the whole study: hitting it aborts (resume later)")
    parser.add_argument("--report-only", action="store_true", help="write the report from the runs on disk")
    parser.set_defaults(func=run_study_command)
