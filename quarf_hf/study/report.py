"""The study's report: the diagnostics first, then the regime gate, the power, and the test table.

Numbers go to ``report.json``, the same as text to ``report.md``, the arms as a plot (``arms.png``).
Comparisons are paired by seed (first minus second): mean ± sd of the per-seed differences, the
95% Student-t interval over seeds and its p, the effect detectable with 80% power at the observed
sd, a 95% bootstrap over seeds, photos and crops (:mod:`quarf_hf.study.power`), seeds won, lost
and tied with the sign test's p. The primary comparison is the one the power was computed for; the
others are secondary, read at Holm-adjusted p-values.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path, write_text_atomic
from ..models.checks import InputError
from .config import BASE, StudyConfig
from .power import (cluster_bootstrap_interval, holm, minimum_detectable_effect, paired_power, sign_test, t_interval,
                    t_test_p)
from .runner import load_decisions, load_result, metric_of


def summarize(values: list[float]) -> dict:
    values = [float(v) for v in values]
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"),
            "n": len(values), "values": values}


def _kind_score(evaluation: dict, kind: str, metric: str) -> float:
    by_severity = evaluation["corruptions"][kind]
    return sum(m[metric] for m in by_severity.values()) / len(by_severity)


def split_score(evaluation: dict, metric: str, indices=None) -> float:
    """The split's score over its degraded conditions on the images ``indices`` (repeats allowed;
    ``None``: every image once, which is ``mean_corrupted``). PSNR: the images' mean per condition;
    mIoU: the pooled mIoU of the images' summed confusion matrices per condition (the meter's own
    definition); then the mean over conditions, as ``mean_corrupted``."""
    keys = [k for k in evaluation["per_image"] if k != "clean"]
    if indices is None:
        return float(evaluation["mean_corrupted"][metric])
    indices = np.asarray(indices)
    if metric == "psnr":
        return float(np.mean([np.asarray(evaluation["per_image"][k], dtype=float)[indices].mean() for k in keys]))
    from ..evaluation.metrics import SegmentationMeter

    scores = []
    for k in keys:
        confusion = np.asarray(evaluation["per_image_confusion"][k], dtype=np.int64)[indices].sum(0)
        meter = SegmentationMeter(len(confusion), ignore_index=evaluation.get("ignore_index"))
        meter.confusion = torch.from_numpy(confusion)
        scores.append(meter.compute()["mIoU"])
    return float(np.mean(scores))


def compare(first: list[dict], second: list[dict], split: str, metric: str) -> dict:
    """Paired statistics of two arms' results (one per seed, same seeds) on ``split``'s degraded images:
    mean ± sd, t-interval and p, the minimum detectable effect at the observed sd, seeds won / lost /
    tied with the sign test's p, and the photo-cluster bootstrap of the same statistic."""
    pairs = [(a["splits"][split], b["splits"][split]) for a, b in zip(first, second)]
    diffs = [split_score(a, metric) - split_score(b, metric) for a, b in pairs]
    out = summarize(diffs)
    out.update(ci95=t_interval(diffs), p=t_test_p(diffs), sign=sign_test(diffs),
               mde=minimum_detectable_effect(len(diffs), out["sd"]) if len(diffs) > 1 else float("nan"))
    clusters = pairs[0][0].get("clusters") or [f"image{i}" for i in range(len(pairs[0][0]["per_image"]["clean"]))]
    statistic = lambda idx: [split_score(a, metric, idx) - split_score(b, metric, idx) for a, b in pairs]  # noqa: E731
    out["bootstrap95"] = cluster_bootstrap_interval(statistic, len(pairs), clusters)
    return out


def reading(name: str, stat: dict, effect: float, unit: str) -> str:
    """One sentence on what a comparison shows (said plainly when it shows nothing). A secondary
    comparison (``p_holm`` in ``stat``) is read at its Holm-adjusted p, the primary at its interval."""
    low, high = stat["ci95"]
    first = name.split(" - ")[0]
    if "p_holm" in stat:
        shown = stat["p_holm"] < 0.05
        verdict = (f"{first} is better" if stat["mean"] > 0 else f"{first} loses") if shown else "no difference detected"
    else:
        verdict = f"{first} is better" if low > 0 else f"{first} loses" if high < 0 else "no difference detected"
    text = (f"{name}: {verdict}: {stat['mean']:+.3f} {unit} over {stat['n']} seeds, 95% interval "
            f"[{low:+.3f}, {high:+.3f}]")
    if "p_holm" in stat:
        text += f" (Holm-adjusted p {stat['p_holm']:.3f})"
    if verdict == "no difference detected":
        text += (" includes zero" + (f" and excludes the practical effect of ±{effect:g} {unit}: any difference is "
                                       "smaller than the effect looked for" if -effect < low and high < effect else
                                       f"; {effect:g} {unit} neither shown nor ruled out"))
    return text + "."


def build_report(config: StudyConfig, out_dir) -> dict:
    """Everything the report says, from the runs and decisions on disk."""
    out_dir = Path(out_dir)
    metric = metric_of(config)
    unit = "dB" if metric == "psnr" else metric
    pilot = config.pilot
    runs = {(n, s): load_result(out_dir, n, s) for n in [BASE, *config.arms, *config.diagnostic_names()] for s in pilot}
    if any(runs[(n, s)] is None for n in config.arms for s in pilot):
        raise InputError(f"OUT: the pilot runs of {out_dir} are not all done yet; run the study first")
    report = {"metric": metric, "unit": unit, "protocol": config.protocol, "effect": config.effect,
              "primary": config.primary, "secondary": config.secondary, "pilot_seeds": pilot,
              "kinds": config.kinds, "severities": config.severities}
    # Diagnostics (development only).
    dev = lambda name: [runs[(name, s)]["splits"]["development"] for s in pilot]  # noqa: E731
    diagnostics = {}
    experts = [n for n in config.diagnostic_names() if n.startswith("expert_d")]
    if experts and all(runs[(n, s)] is not None for n in experts for s in pilot):
        table = {}
        for name in experts:
            evaluations = dev(name)
            row = {kind: float(np.mean([_kind_score(e, kind, metric) for e in evaluations]))
                   for kind in config.kinds["development"]}
            for severity in config.severities:
                row[f"s{severity}"] = float(np.mean([np.mean([e["corruptions"][k][str(severity)][metric]
                                                              for k in config.kinds["development"]]) for e in evaluations]))
            table[name] = row
        columns = list(next(iter(table.values())))
        best = {c: max(table, key=lambda n: table[n][c]) for c in columns}
        # What picking per kind/severity could gain over the one network best on average (kinds' mean).
        overall = max(table, key=lambda n: np.mean([table[n][k] for k in config.kinds["development"]]))
        pick_gain = max(table[best[c]][c] - table[overall][c] for c in columns)
        diagnostics["single_experts"] = {"table": table, "best": best, "changes": len(set(best.values())) > 1,
                                         "overall": overall, "pick_gain": float(pick_gain)}
    if "oracle" in config.diagnostic_names() and all(runs[("oracle", s)] is not None for s in pilot):
        oracle = [runs[("oracle", s)] for s in pilot]
        against = {arm: compare(oracle, [runs[(arm, s)] for s in pilot], "development", metric) for arm in config.arms}
        static = config.primary[1]
        diagnostics["oracle"] = {"minus": against, "against": static,
                                 "nothing_to_gain": against[static]["mean"] < config.effect}
    report["diagnostics"] = diagnostics
    report["pilot"] = {arm: summarize([_score_dev(runs[(arm, s)], metric) for s in pilot]) for arm in config.arms}
    decisions = load_decisions(out_dir)
    report["gate"] = decisions.get("gate")
    if not report["gate"] or not report["gate"]["valid"]:
        return report
    report["power"] = {k: decisions.get(k) for k in ("pilot_sd", "planning_sd", "planning_sd_from", "seeds_needed",
                                                     "planned", "detectable", "test_seeds", "stopped", "power_reached")}
    seeds = [s for s in decisions.get("test_seeds", [])
             if all(split in (load_result(out_dir, a, s) or {}).get("splits", {}) for a in config.arms
                    for split in config.test_splits)]
    report["test_seeds"] = seeds
    if len(seeds) < 2:
        return report
    results = {arm: [load_result(out_dir, arm, s) for s in seeds] for arm in config.arms}
    report["arms"] = {arm: {"clean": summarize([r["splits"]["test"]["clean"][metric] for r in rs]),
                            "test": summarize([r["splits"]["test"]["mean_corrupted"][metric] for r in rs]),
                            **{k: summarize([_kind_score(r["splits"]["test"], k, metric) for r in rs])
                               for k in config.kinds["test"]}}
                      for arm, rs in results.items()}
    comparisons = {}
    tests = [("primary", config.primary, "test")] + [("secondary", p, "test") for p in config.secondary]
    if "unseen" in config.kinds:  # the primary pair on kinds no run trained on
        tests.append(("secondary", config.primary, "unseen"))
    for rank, (first, second), split in tests:
        stat = compare(results[first], results[second], split, metric)
        # Power at the pilot's sd (what the plan assumed) and at the test seeds' own sd (what they showed):
        # a pilot sd far below the test's makes the planned power an overstatement, so both are given.
        stat.update(rank=rank, split=split, power=paired_power(len(seeds), decisions["planning_sd"], config.effect),
                    power_test_sd=paired_power(len(seeds), stat["sd"], config.effect) if len(seeds) > 1 else float("nan"))
        comparisons[f"{first} - {second}" + (" (unseen kinds)" if split == "unseen" else "")] = stat
    secondary = [s for s in comparisons.values() if s["rank"] == "secondary"]
    for stat, adjusted in zip(secondary, holm([s["p"] for s in secondary])):
        stat["p_holm"] = adjusted
    for name, stat in comparisons.items():
        stat["reading"] = reading(name, stat, config.effect, unit)
    report["comparisons"] = comparisons
    return report


def _score_dev(result: dict, metric: str) -> float:
    return result["splits"]["development"]["mean_corrupted"][metric]


def _fmt(stat: dict) -> str:
    return f"{stat['mean']:.3f} ± {stat['sd']:.3f}"


def markdown(report: dict) -> str:
    metric, unit = report["metric"], report["unit"]
    lines = [f"# Study report ({metric}, protocol {report['protocol']})", "",
             f"Declared before any run: the primary comparison {report['primary'][0]} - {report['primary'][1]} on the "
             f"test kinds, practical effect {report['effect']:g} {unit}; secondary: "
             + (", ".join(f"{a} - {b}" for a, b in report["secondary"]) or "none") + ".", ""]
    diagnostics = report["diagnostics"]
    lines += [f"## Diagnostics (development images and kinds, pilot seeds {report['pilot_seeds']})", ""]
    if "single_experts" in diagnostics:
        single = diagnostics["single_experts"]
        columns = list(single["best"])
        lines += ["Single-expert networks (one dilation each), mean over pilot seeds; kinds averaged over severities, "
                  "severities over kinds:", "", "| network | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for name, row in single["table"].items():
            lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
        lines.append("| best | " + " | ".join(single["best"][c] for c in columns) + " |")
        if not single["changes"]:
            verdict = (f"is the same ({next(iter(single['best'].values()))}) for every kind and severity: "
                       "there is no receptive field for a router to pick per image.")
        elif single.get("pick_gain", float("inf")) < report["effect"]:
            verdict = (f"changes with the kind or severity, but picking it per kind or severity would gain at most "
                       f"{single['pick_gain']:.3f} {unit} over the best network on average ({single['overall']}), less "
                       f"than the effect of {report['effect']:g} {unit}: nothing worth routing for.")
        else:
            verdict = (f"changes with the kind or severity: picking it would gain up to {single['pick_gain']:.3f} "
                       f"{unit} over the best network on average ({single['overall']}).")
        lines += ["", "The best receptive field " + verdict, ""]
    if "oracle" in diagnostics:
        oracle = diagnostics["oracle"]
        lines += ["Oracle router (told each image's corruption family and severity) minus each arm, paired over pilot "
                  "seeds:", "", "| oracle minus | mean ± sd | 95% interval |", "|---|---|---|"]
        for arm, d in oracle["minus"].items():
            lines.append(f"| {arm} | {d['mean']:+.3f} ± {d['sd']:.3f} | [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |")
        lines.append("")
        if oracle["nothing_to_gain"]:
            lines += [f"The oracle is no better than {oracle['against']} (by less than the effect of {report['effect']:g} "
                      f"{unit}): routing has nothing to gain on this benchmark.", ""]
        else:
            lines += [f"The oracle beats {oracle['against']} by {oracle['minus'][oracle['against']]['mean']:+.3f} {unit}: "
                      "perfect quality information has something to give.", ""]
    if not diagnostics:
        lines += ["None configured.", ""]
    lines += ["Pilot arms on development (mean ± sd over pilot seeds): "
              + "; ".join(f"{a} {_fmt(s)}" for a, s in report["pilot"].items()) + ".", "", "## Regime gate", ""]
    gate = report["gate"]
    if gate is None:
        return "\n".join(lines + ["Not evaluated yet."]) + "\n"
    lines.append(", ".join(f"{k} {v:.3f}" for k, v in gate["numbers"].items()) + ".")
    if not gate["valid"]:
        lines += ["", gate["reason"] + ".", "", "No comparison is reported: fix the recipe (steps, size, model) first."]
        return "\n".join(lines) + "\n"
    power = report["power"]
    if power.get("pilot_sd") is None or power.get("test_seeds") is None:
        return "\n".join(lines + ["", "Passed.", "", "## Power", "", "Not computed yet."]) + "\n"
    lines += ["", "Passed.", "", "## Power", "",
              f"Pilot paired sd of {report['primary'][0]} - {report['primary'][1]} (development, "
              f"{len(report['pilot_seeds'])} seeds): {power['pilot_sd']:.4f} {unit}; planned on {power['planning_sd']:.4f} "
              f"{unit} ({power['planning_sd_from']}); seeds needed for 80% power (paired t-test, two-sided alpha 0.05) "
              f"to detect {report['effect']:g} {unit}: {power['seeds_needed']}; planned {power['planned']} (detectable "
              f"with 80% power: {power['detectable']:.3f} {unit}); run {len(power['test_seeds'] or [])} "
              f"(seeds {power['test_seeds']}, after the pilot seeds); power reached {power['power_reached']:.2f}."
              + (f" Stopped: {power['stopped']}." if power.get("stopped") else "")]
    if "comparisons" not in report:
        return "\n".join(lines + ["", "Fewer than two test seeds finished: no comparison."]) + "\n"
    kinds = report["kinds"]["test"]
    lines += ["", f"## Test (test images and kinds {kinds}, severities {report['severities']}, seeds {report['test_seeds']})",
              "", "| arm | clean | test kinds | " + " | ".join(kinds) + " |", "|---|---|---|" + "---|" * len(kinds)]
    for arm, stats in report["arms"].items():
        lines.append(f"| {arm} | {_fmt(stats['clean'])} | {_fmt(stats['test'])} | "
                     + " | ".join(_fmt(stats[k]) for k in kinds) + " |")
    primary = report["comparisons"][f"{report['primary'][0]} - {report['primary'][1]}"]
    lines += ["", f"On the test seeds the primary comparison's paired sd was {primary['sd']:.4f} {unit} "
                  f"({primary['sd'] / power['planning_sd']:.1f}x the sd planned on): the power to detect {report['effect']:g} {unit} "
                  f"with {primary['n']} seeds at that sd is {primary['power_test_sd']:.2f}."]
    lines += ["", "| comparison | rank | mean ± sd | 95% t-interval | p (Holm for secondary) "
                  "| 95% bootstrap (seeds, photos, crops) | won/lost/tied, sign p | detectable at 80% "
                  "| power (planned sd) | power (test sd) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, d in report["comparisons"].items():
        sign = d["sign"]
        lines.append(f"| {name} | {d['rank']} | {d['mean']:+.3f} ± {d['sd']:.3f} | [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] "
                     f"| {d.get('p_holm', d['p']):.3f} | [{d['bootstrap95'][0]:+.3f}, {d['bootstrap95'][1]:+.3f}] "
                     f"| {sign['won']}/{sign['lost']}/{sign['tied']}, {sign['p']:.3f} | {d['mde']:.3f} {unit} "
                     f"| {d['power']:.2f} | {d['power_test_sd']:.2f} |")
    lines += [""] + [("" if d["rank"] == "primary" else "(secondary) ") + d["reading"]
                     for d in report["comparisons"].values()]
    return "\n".join(lines) + "\n"


def plot_arms(report: dict, path: Path) -> Path:
    from matplotlib.figure import Figure

    arms = list(report["arms"])
    figure = Figure(figsize=(1.5 + 1.2 * len(arms), 3.5))
    axis = figure.subplots()
    for i, arm in enumerate(arms):
        stat = report["arms"][arm]["test"]
        axis.bar(i, stat["mean"], yerr=stat["sd"], capsize=3)
        axis.scatter([i] * len(stat["values"]), stat["values"], s=6, color="black", zorder=3)  # every seed
    axis.set_xticks(range(len(arms)), arms)
    axis.set_ylabel(f"{report['metric']} on test kinds (dots: seeds)")
    lows = [v for arm in arms for v in report["arms"][arm]["test"]["values"]]
    axis.set_ylim(min(lows) - 0.05 * abs(min(lows)), max(lows) + 0.05 * abs(max(lows)))
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    return path


def write_study_report(config: StudyConfig, out_dir) -> dict:
    """Writes ``report.json``, ``report.md`` (and ``arms.png`` when there is a test table); returns them."""
    out_dir = Path(out_dir)
    report = build_report(config, out_dir)
    text = markdown(report)
    write_text_atomic(out_dir / "report.json", json.dumps(report, indent=1))
    write_text_atomic(out_dir / "report.md", text)
    plots = [plot_arms(report, out_dir / "arms.png")] if "arms" in report else []
    return {"report": report, "markdown": text, "plots": plots}
