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
from .diagnostics import cells
from .power import (cluster_bootstrap_interval, holm, minimum_detectable_effect, paired_power, sign_test, t_interval,
                    t_test_p)
from .runner import load_decisions, load_result, pilot_diagnostics, proceeds


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
    definition; runs written before the matrices were kept: the mean of per-image mIoU); then the
    mean over conditions, as ``mean_corrupted``."""
    keys = [k for k in evaluation["per_image"] if k != "clean"]
    if indices is None:
        return float(evaluation["mean_corrupted"][metric])
    indices = np.asarray(indices)
    if metric == "psnr" or "per_image_confusion" not in evaluation:  # (runs written before the matrices were kept)
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
    metric, unit = config.task.metric, config.task.unit
    pilot = config.pilot
    runs = {(n, s): load_result(out_dir, n, s) for n in [BASE, *config.arms, *config.diagnostic_names()] for s in pilot}
    if any(runs[(n, s)] is None for n in config.arms for s in pilot):
        raise InputError(f"OUT: the pilot runs of {out_dir} are not all done yet; run the study first")
    report = {"metric": metric, "unit": unit, "protocol": config.protocol, "effect": config.effect,
              "primary": config.primary, "secondary": config.secondary, "pilot_seeds": pilot,
              "kinds": config.kinds, "severities": config.severities}
    # Diagnostics (development only): per-cell single experts, the oracle, the blocks' use.
    diagnostics = pilot_diagnostics(config, out_dir)
    diagnostics.pop("precondition", None)  # the decision on disk is the one the study acted on
    if "oracle" in config.diagnostic_names() and all(runs[("oracle", s)] is not None for s in pilot):
        oracle = [runs[("oracle", s)] for s in pilot]
        diagnostics["oracle_minus"] = {arm: compare(oracle, [runs[(arm, s)] for s in pilot], "development", metric)
                                       for arm in config.arms}
    usage = {}
    for arm in config.arms:
        evaluations = [runs[(arm, s)]["splits"]["development"] for s in pilot]
        if all("block_off" in e for e in evaluations):
            usage[arm] = {"contribution": float(np.mean([e["block_contribution"] for e in evaluations])),
                          "score": summarize([e["mean_corrupted"][metric] for e in evaluations]),
                          "block_off": summarize([e["block_off"]["mean_corrupted"][metric] for e in evaluations])}
    if usage:
        diagnostics["block_usage"] = usage
    report["diagnostics"] = diagnostics
    report["pilot"] = {arm: summarize([_score_dev(runs[(arm, s)], metric) for s in pilot]) for arm in config.arms}
    decisions = load_decisions(out_dir)
    report["gate"], report["precondition"] = decisions.get("gate"), decisions.get("precondition")
    if not report["gate"] or not proceeds(decisions):
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
    # The primary pair per (kind, severity) cell: a severity-dependent best receptive field shows here.
    first, second = config.primary
    diffs = [(cells(a["splits"]["test"], metric), cells(b["splits"]["test"], metric))
             for a, b in zip(results[first], results[second])]
    report["primary_cells"] = {c: {**summarize([a[c] - b[c] for a, b in diffs]), "ci95": t_interval([a[c] - b[c] for a, b in diffs])}
                               for c in diffs[0][0]}
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
    lines += _diagnostics_lines(report)
    lines += ["Pilot arms on development (mean ± sd over pilot seeds): "
              + "; ".join(f"{a} {_fmt(s)}" for a, s in report["pilot"].items()) + ".", "", "## Regime gate", ""]
    gate = report["gate"]
    if gate is None:
        return "\n".join(lines + ["Not evaluated yet."]) + "\n"
    lines.append(", ".join(f"{k} {v:.3f}" for k, v in gate["numbers"].items()) + ".")
    if not gate["valid"]:
        lines += ["", gate["reason"] + ".", "", "No comparison is reported: fix the recipe (steps, size, model) first."]
        return "\n".join(lines) + "\n"
    lines += ["", "Passed.", ""]
    if report.get("precondition"):
        lines += _precondition_lines(report["precondition"], unit)
        if not report["precondition"]["passed"]:
            return "\n".join(lines) + "\n"
    power = report["power"]
    if power.get("pilot_sd") is None or power.get("test_seeds") is None:
        return "\n".join(lines + ["## Power", "", "Not computed yet."]) + "\n"
    lines += ["## Power", "",
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
    lines += ["", f"The primary comparison per test cell (paired over the test seeds; descriptive, not separately "
                  "tested):", "", "| cell | mean ± sd | 95% t-interval |", "|---|---|---|"]
    lines += [f"| {c} | {d['mean']:+.3f} ± {d['sd']:.3f} | [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |"
              for c, d in report.get("primary_cells", {}).items()]
    return "\n".join(lines) + "\n"


def _diagnostics_lines(report: dict) -> list[str]:
    diagnostics, unit, effect = report["diagnostics"], report["unit"], report["effect"]
    lines = [f"## Diagnostics (development images and kinds, pilot seeds {report['pilot_seeds']})", ""]
    single = diagnostics.get("single_experts")
    if single:
        experts = list(single["table"][single["cells"][0]])
        lines += [f"Single-expert networks (one dilation each) per cell, mean over pilot seeds, and in brackets the "
                  f"paired 95% interval of each minus {single['overall']} (the expert best on average):", "",
                  "| cell | " + " | ".join(experts) + " | best |", "|---|" + "---|" * (len(experts) + 1)]
        for cell in single["cells"]:
            row = single["table"][cell]
            lines.append(f"| {cell} | " + " | ".join(
                f"{row[n]['mean']:.3f}" + ("" if n == single["overall"] else
                                           f" [{row[n]['ci95'][0]:+.3f}, {row[n]['ci95'][1]:+.3f}]") for n in experts)
                + f" | {single['best'][cell]} |")
        low, high = single["pick_gain_ci95"]
        if len(set(single["best"].values())) == 1:
            verdict = (f"The best single expert is {single['overall']} in every cell: no receptive-field choice at this "
                       "placement mattered.")
        else:
            verdict = (f"The best single expert changes between cells; picking it per cell would gain "
                       f"{single['pick_gain']:+.3f} {unit} over {single['overall']} (95% interval [{low:+.3f}, {high:+.3f}])"
                       + (f", less than the effect of {effect:g} {unit}: no receptive-field choice at this placement "
                          "mattered by that much." if single["pick_gain"] < effect else "."))
        lines += ["", verdict, ""]
    if "oracle_gain" in diagnostics:
        gain = diagnostics["oracle_gain"]
        lines += [f"Oracle router (told each image's corruption family and severity) minus {report['primary'][1]}: "
                  f"{gain['mean']:+.3f} {unit}, 95% interval [{gain['ci95'][0]:+.3f}, {gain['ci95'][1]:+.3f}], ahead in "
                  f"{gain['won']} of {gain['n']} pilot seeds"
                  + (f"; below the effect of {effect:g} {unit}: perfect quality information gained less than the effect "
                     "looked for here." if gain["mean"] < effect else "."), ""]
    if "oracle_minus" in diagnostics:
        lines += ["| oracle minus | mean ± sd | 95% interval |", "|---|---|---|"]
        for arm, d in diagnostics["oracle_minus"].items():
            lines.append(f"| {arm} | {d['mean']:+.3f} ± {d['sd']:.3f} | [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |")
        lines.append("")
    if "block_usage" in diagnostics:
        lines += ["Block usage per arm (mean over pilot seeds): the block's contribution |block(x) - x| / |x| over the "
                  "degraded images (0: the identity it starts as), and the score with the block switched off:", "",
                  f"| arm | contribution | {report['metric']} | without the block | difference |", "|---|---|---|---|---|"]
        for arm, u in diagnostics["block_usage"].items():
            lines.append(f"| {arm} | {u['contribution']:.4f} | {u['score']['mean']:.3f} | {u['block_off']['mean']:.3f} "
                         f"| {u['score']['mean'] - u['block_off']['mean']:+.3f} |")
        lines.append("")
    if not diagnostics:
        lines += ["None configured.", ""]
    return lines


def _precondition_lines(precondition: dict, unit: str) -> list[str]:
    lines = ["## Precondition", "", "| check | holds |", "|---|---|"]
    lines += [f"| {check} | {'yes' if holds else 'no'} |" for check, holds in precondition["checks"].items()]
    contrast = precondition.get("contrast")
    if contrast:
        lines += ["", f"Clearest contrast: {contrast['experts'][0]} best in {contrast['cells'][0]}, "
                      f"{contrast['experts'][1]} in {contrast['cells'][1]}, each ahead by at least "
                      f"{contrast['margin']:+.3f} {unit} in every pilot seed (margin asked: {precondition['margin']:g})."]
    if precondition["passed"]:
        return lines + ["", "Passed: the test seeds may run.", ""]
    return lines + ["", f"Failed: {precondition['reason']}. The study stops here, before any test seed: in this regime "
                        "the receptive field the router could choose does not matter enough to test routing.", ""]


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
