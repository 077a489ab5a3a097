"""The study's report: per-arm statistics over seeds, paired differences, routing, per kind.

Numbers (``report.json``), the same as tables (``report.md``) and plots (``*.png``). For every arm
and condition (clean, each evaluated set of kinds, each kind): mean and sample standard deviation
over seeds. For every compared pair of arms: the per-seed differences (first minus second) with
their mean, standard deviation, a 95% Student-t interval over seeds and how many seeds the first
arm won. For every QuARF arm: the mean routing weight per expert at each severity, per seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..atomic import atomic_path, write_text_atomic
from ..models.checks import InputError
from .config import StudyConfig
from .runner import load_result


def t_quantile(df: int, level: float = 0.95) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, df))


def summarize(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return {"mean": mean, "sd": sd, "n": n, "values": values}


def paired(first: list[float], second: list[float]) -> dict:
    diffs = [a - b for a, b in zip(first, second)]
    out = summarize(diffs)
    n = len(diffs)
    half = t_quantile(n - 1) * out["sd"] / math.sqrt(n) if n > 1 else float("nan")
    out.update(ci95=[out["mean"] - half, out["mean"] + half], won=sum(d > 0 for d in diffs))
    return out


def _kind_mean(evaluation: dict, kind: str, metric: str) -> float:
    by_severity = evaluation["corruptions"][kind]
    return sum(m[metric] for m in by_severity.values()) / len(by_severity)


def run_scores(result: dict, metric: str) -> dict:
    """condition -> score of one run: ``clean``, each split's mean, and ``split/kind``."""
    scores = {"clean": result["clean"][metric]}
    for split, evaluation in result["splits"].items():
        scores[split] = evaluation["mean_corrupted"][metric]
        for kind in evaluation["corruptions"]:
            scores[f"{split}/{kind}"] = _kind_mean(evaluation, kind, metric)
    return scores


def run_routing(result: dict) -> dict | None:
    """split -> {"experts": [...], "severity": {"0": weights (clean), "1": mean over kinds, ...}, "kinds": {...}}."""
    if "routing" not in result["clean"]:
        return None
    out = {}
    for split, evaluation in result["splits"].items():
        kinds = evaluation["corruptions"]
        severities = [str(s) for s in evaluation["severities"]]
        per_severity = {"0": result["clean"]["routing"]}
        for s in severities:
            weights = [kinds[k][s]["routing"] for k in kinds]
            per_severity[s] = [sum(w[e] for w in weights) / len(weights) for e in range(len(weights[0]))]
        per_kind = {k: {s: kinds[k][s]["routing"] for s in severities} for k in kinds}
        out[split] = {"experts": evaluation.get("experts"), "severity": per_severity, "kinds": per_kind}
    return out


def build_report(config: StudyConfig, out_dir) -> dict:
    """Everything the report says, from the runs on disk (seeds where every arm is done)."""
    out_dir = Path(out_dir)
    results = {(arm, seed): load_result(out_dir, arm, seed) for arm in config.arms for seed in config.seeds}
    splits = [s for s in ("development", "test")
              if all(r is not None and s in r["splits"] for r in results.values())]
    seeds = [seed for seed in config.seeds if all(results[(arm, seed)] is not None for arm in config.arms)]
    if not seeds:
        raise InputError(f"OUT: no seed of {out_dir} has a result for every arm yet; run the study first")
    metric = next(iter(results[(next(iter(config.arms)), seeds[0])]["splits"].values()), {}).get("metric", "mIoU")
    scores = {arm: [run_scores(results[(arm, s)], metric) for s in seeds] for arm in config.arms}
    conditions = [c for c in scores[next(iter(config.arms))][0]
                  if c == "clean" or c.split("/")[0] in splits]
    arms = {arm: {c: summarize([run[c] for run in scores[arm]]) for c in conditions} for arm in config.arms}
    comparisons = {}
    for first, second in config.comparisons:
        comparisons[f"{first} - {second}"] = {
            c: paired([r[c] for r in scores[first]], [r[c] for r in scores[second]]) for c in conditions}
    routing = {}
    for arm in config.arms:
        per_seed = {str(s): run_routing(results[(arm, s)]) for s in seeds}
        if all(v is not None for v in per_seed.values()):
            routing[arm] = {seed: {split: v[split] for split in splits} for seed, v in per_seed.items()}
    steps = sorted({results[(arm, s)]["steps"] for arm in config.arms for s in seeds})
    return {"metric": metric, "seeds": seeds, "splits": splits, "kinds": {s: config.kinds[s] for s in splits},
            "augmentation_kinds": config.kinds["augmentation"], "severities": config.severities,
            "steps": steps, "arms": arms, "comparisons": comparisons, "routing": routing}


def _fmt(stat: dict) -> str:
    return f"{stat['mean']:.3f} ± {stat['sd']:.3f}"


def markdown(report: dict) -> str:
    metric, splits = report["metric"], report["splits"]
    main = ["clean"] + splits
    lines = [f"# Study report ({metric}, {len(report['seeds'])} seeds: {report['seeds']})", "",
             f"Every run trained {', '.join(map(str, report['steps']))} steps. Trained with the augmentation kinds "
             f"{report['augmentation_kinds']}; evaluated at severities {report['severities']} on "
             + "; ".join(f"{s} kinds {report['kinds'][s]}" for s in splits) + ".", "",
             "## Arms: mean ± sd over seeds", "",
             "| arm | " + " | ".join(main) + " |", "|---|" + "---|" * len(main)]
    for arm, stats in report["arms"].items():
        lines.append(f"| {arm} | " + " | ".join(_fmt(stats[c]) for c in main) + " |")
    if report["comparisons"]:
        lines += ["", "## Paired differences over seeds (first minus second)", "",
                  "Mean ± sd of the per-seed differences, the 95% t-interval over seeds, seeds won by the first arm.", "",
                  "| comparison | condition | mean ± sd | 95% interval | seeds won |", "|---|---|---|---|---|"]
        for name, by_condition in report["comparisons"].items():
            for c in main:
                d = by_condition[c]
                lines.append(f"| {name} | {c} | {d['mean']:+.3f} ± {d['sd']:.3f} | "
                             f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] | {d['won']}/{d['n']} |")
    for split in splits:
        kinds = report["kinds"][split]
        lines += ["", f"## Per {split} kind: mean ± sd over seeds (mean over severities)", "",
                  "| arm | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
        for arm, stats in report["arms"].items():
            lines.append(f"| {arm} | " + " | ".join(_fmt(stats[f"{split}/{k}"]) for k in kinds) + " |")
        for name, by_condition in report["comparisons"].items():
            lines.append(f"| {name} (seeds won) | " + " | ".join(
                f"{by_condition[f'{split}/{k}']['mean']:+.3f} ({by_condition[f'{split}/{k}']['won']}/"
                f"{by_condition[f'{split}/{k}']['n']})" for k in kinds) + " |")
    for arm, by_seed in report["routing"].items():
        for split in splits:
            experts = next(iter(by_seed.values()))[split]["experts"]
            severities = list(next(iter(by_seed.values()))[split]["severity"])
            lines += ["", f"## Routing of {arm} on {split} kinds: mean weight per expert "
                      f"(receptive fields {experts}) by severity (0 = clean), every seed", "",
                      "| seed | " + " | ".join(f"s{s}" for s in severities) + " |", "|---|" + "---|" * len(severities)]
            for seed, splits_routing in by_seed.items():
                row = splits_routing[split]["severity"]
                lines.append(f"| {seed} | " + " | ".join("/".join(f"{w:.2f}" for w in row[s]) for s in severities) + " |")
    return "\n".join(lines) + "\n"


def plot_arms(report: dict, path: Path) -> Path:
    from matplotlib.figure import Figure

    conditions = ["clean"] + report["splits"]
    arms = list(report["arms"])
    figure = Figure(figsize=(1.8 + 1.6 * len(conditions), 4))
    axis = figure.subplots()
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        xs = [c + (i - (len(arms) - 1) / 2) * width for c in range(len(conditions))]
        stats = [report["arms"][arm][c] for c in conditions]
        axis.bar(xs, [s["mean"] for s in stats], width, yerr=[s["sd"] for s in stats], capsize=3, label=arm)
        for x, s in zip(xs, stats):  # every seed, not only the summary
            axis.scatter([x] * len(s["values"]), s["values"], s=6, color="black", zorder=3)
    axis.set_xticks(range(len(conditions)), conditions)
    axis.set_ylabel(f"{report['metric']} (mean ± sd over {len(report['seeds'])} seeds; dots: seeds)")
    lows = [v for arm in arms for c in conditions for v in report["arms"][arm][c]["values"]]
    axis.set_ylim(max(0.0, min(lows) - 0.05), min(1.0, max(lows) + 0.05) if report["metric"] == "mIoU" else None)
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    return path


def plot_routing(report: dict, arm: str, split: str, path: Path) -> Path:
    """One panel per seed: mean routing weight per expert against severity (0 = clean)."""
    from matplotlib.figure import Figure

    by_seed = report["routing"][arm]
    seeds = list(by_seed)
    figure = Figure(figsize=(3 * len(seeds), 3))
    axes = figure.subplots(1, len(seeds), squeeze=False)[0]
    for axis, seed in zip(axes, seeds):
        routing = by_seed[seed][split]
        severities = list(routing["severity"])
        for e, rf in enumerate(routing["experts"] or range(len(routing["severity"]["0"]))):
            axis.plot([int(s) for s in severities], [routing["severity"][s][e] for s in severities], marker="o",
                      label=f"RF {rf}")
        axis.set_title(f"seed {seed}", fontsize=9)
        axis.set_xlabel("severity")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("mean routing weight")
    axes[0].legend(fontsize=7)
    figure.suptitle(f"{arm}: routing per expert vs severity, {split} kinds", fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    return path


def write_study_report(config: StudyConfig, out_dir) -> dict:
    """Writes ``report.json``, ``report.md`` and the plots into ``out_dir``; returns the paths and the report."""
    out_dir = Path(out_dir)
    report = build_report(config, out_dir)
    text = markdown(report)
    write_text_atomic(out_dir / "report.json", json.dumps(report, indent=1))
    write_text_atomic(out_dir / "report.md", text)
    plots = [plot_arms(report, out_dir / "arms.png")]
    for arm in report["routing"]:
        for split in report["splits"]:
            plots.append(plot_routing(report, arm, split, out_dir / f"routing_{arm}_{split}.png"))
    return {"report": report, "markdown": text, "plots": plots}
