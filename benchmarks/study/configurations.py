"""The table of every QuARF configuration tried, on the DEVELOPMENT kinds (benchmarks/study_configurations.md).

    python benchmarks/study/configurations.py [--out outputs/study]

Reads the runs that ``quarf-hf study`` left in ``--out`` for configs/study.yaml and the tuning
configs next to this file (they share base recipe, kinds and seeds, hence the baseline,
augmentation and static runs). After the choice, the runs of the first QuARF block and its
static control were moved to ``runs/quarf_d1248`` and ``runs/static_d1248``, and the chosen
``quarf_d1234`` runs to ``runs/quarf`` (configs/study.yaml's arm, same recipe and fingerprint), and prints one row per configuration: development mIoU mean ± sd
over seeds, and its paired difference from the static control and from augmentation alone
(mean, 95% t-interval, seeds won). Test kinds are never read here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from quarf_hf.study import load_study_config
from quarf_hf.study.report import paired, run_scores, summarize
from quarf_hf.study.runner import load_result

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFIGS = {  # arm -> (config file, what it changes)
    "quarf_d1248": (HERE / "quarf_mlp.yaml", "the demo's block: 8 groups, dilations 1/2/4/8, linear noisy router, soft, residual"),
    "quarf": (REPO / "configs" / "study.yaml", "dilations 1/2/3/4 (receptive fields 3-9 on the 12x12 map); chosen"),
    "quarf_mlp": (HERE / "quarf_mlp.yaml", "MLP router (36 -> 256 -> GELU -> 32)"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/study")
    args = parser.parse_args()
    out = Path(args.out)
    seeds = load_study_config(CONFIGS["quarf"][0]).seeds
    lines = ["| configuration (run folder) | what changes | seeds | development mIoU | minus static (dilations 1/2/4/8) | minus augmentation |",
             "|---|---|---|---|---|---|"]

    def dev(arm):
        results = [load_result(out, arm, s) for s in seeds]
        if any(r is None or "development" not in r["splits"] for r in results):
            return None
        return [run_scores(r, "mIoU")["development"] for r in results]

    for name in ("augmentation", "static_d1248", "static"):
        values = dev(name)
        if values:
            s = summarize(values)
            lines.append(f"| {name} (control) | - | {len(values)} | {s['mean']:.3f} ± {s['sd']:.3f} | | |")
        elif name == "static":
            lines.append("| static (control, dilations 1/2/3/4) | - | not run yet | | | |")
    for arm, (path, what) in CONFIGS.items():
        values = dev(arm)
        if values is None:
            lines.append(f"| {arm} | {what} | not run to completion | | | |")
            continue
        s = summarize(values)
        cells = []
        for other in ("static_d1248", "augmentation"):
            d = paired(values, dev(other))
            cells.append(f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}], won {d['won']}/{d['n']}")
        lines.append(f"| {arm} | {what} | {len(values)} | {s['mean']:.3f} ± {s['sd']:.3f} | " + " | ".join(cells) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
