"""The table of every QuARF configuration tried, on the DEVELOPMENT kinds (benchmarks/study_configurations.md).

    python benchmarks/study/configurations.py [--out outputs/study-tuning] [--main outputs/study-issue11]

Reads the pilot runs (seeds 0-4, development images and kinds) that ``quarf-hf study`` left in
``OUT/runs/<arm>/seed<k>/result.json`` for the two tuning configs next to this file (they share one
output folder, hence the augmentation, static and quarf runs: the demo's block, dilations 1/2/4/8),
and, with ``--main``, the static control of the chosen block (dilations 1/2/3/4) from
``study_issue11.yaml``'s folder. Prints one row per configuration: development mIoU mean ± sd over
seeds, and its paired difference from the static control (dilations 1/2/4/8) and from augmentation
alone (mean, 95% t-interval, seeds won). Test kinds are never read here. The study's own
``report.md`` gives each arm's pilot mean too, but neither paired differences nor runs of two configs.

In issue 11 the runs were renamed after the choice (``static`` -> ``static_d1248``, ``quarf`` ->
``quarf_d1248``, ``quarf_d1234`` -> ``quarf``); the folders here keep the names of the configs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from quarf_hf.study import load_study_config
from quarf_hf.study.report import compare, summarize
from quarf_hf.study.runner import load_result

HERE = Path(__file__).resolve().parent
METRIC, SPLIT = "mIoU", "development"
CONFIGS = {  # arm of the tuning folder -> what it changes
    "quarf": "the demo's block: 8 groups, dilations 1/2/4/8, linear noisy router, soft, residual",
    "quarf_d1234": "dilations 1/2/3/4 (receptive fields 3-9 on the 12x12 map); chosen",
    "quarf_mlp": "MLP router (36 -> 256 -> GELU -> 32)",
}
CONTROLS = {"static": "static (control, dilations 1/2/4/8)", "augmentation": "augmentation (control)"}


def development_results(out: Path, arm: str, seeds: list[int]) -> list[dict] | None:
    """The run's result for every seed, or None unless each has its development evaluation."""
    results = [load_result(out, arm, s) for s in seeds]
    return None if any(r is None or SPLIT not in r["splits"] for r in results) else results


def table(out: Path, main: Path | None = None) -> str:
    seeds = load_study_config(HERE / "quarf_d1234.yaml").pilot
    lines = ["| configuration (run folder) | what changes | seeds | development mIoU | minus static (dilations 1/2/4/8) "
             "| minus augmentation |", "|---|---|---|---|---|---|"]

    def row(label, what, results, with_differences):
        if results is None:
            return f"| {label} | {what} | not run to completion | | | |"
        s = summarize([r["splits"][SPLIT]["mean_corrupted"][METRIC] for r in results])
        cells = ["", ""]
        if with_differences:
            cells = []
            for control in CONTROLS:
                others = development_results(out, control, seeds)
                d = compare(results, others, SPLIT, METRIC) if others else None
                cells.append(f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}], won {d['sign']['won']}/{d['n']}"
                             if d else "")
        return f"| {label} | {what} | {len(results)} | {s['mean']:.3f} ± {s['sd']:.3f} | " + " | ".join(cells) + " |"

    for arm in ("augmentation", "static"):
        lines.append(row(CONTROLS[arm], "-", development_results(out, arm, seeds), False))
    if main is not None:  # study_issue11.yaml's static arm: the chosen block, run after the choice
        lines.append(row("static (control, dilations 1/2/3/4: run after the choice)", "-",
                         development_results(main, "static", seeds), False))
    for arm, what in CONFIGS.items():
        lines.append(row(arm, what, development_results(out, arm, seeds), True))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/study-tuning", help="the tuning configs' output folder")
    parser.add_argument("--main", help="study_issue11.yaml's output folder (its static arm: dilations 1/2/3/4)")
    args = parser.parse_args()
    print(table(Path(args.out), Path(args.main) if args.main else None))


if __name__ == "__main__":
    main()
