"""Write an evaluation's results: ``results.json``, ``results.md`` and PNG plots.

Every file is written to a temporary name in ``out_dir`` and then renamed, so a reader never
sees half a file.
"""

from __future__ import annotations

import json
import math
import os

from ..atomic import atomic_path, write_text_atomic

# What write_report writes into its folder.
REPORT_FILES = ("results.json", "results.md", "metric_vs_severity.png", "routing_vs_severity.png")
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D")
METRIC_LABELS = {"mIoU": "mIoU", "pixel_accuracy": "pixel accuracy", "psnr": "PSNR (dB)", "ssim": "SSIM"}


def _json_safe(value):
    """NaN/inf become null (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _format(value, metric: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.2f}" if metric == "psnr" else f"{value:.4f}"


def markdown_table(results: dict, metric: str | None = None) -> str:
    """A Markdown table of one metric (default: the task's main one).

    Rows: clean, each corruption, and the mean over corruptions (restoration: then the same mean
    for the degraded input itself, the identity's floor); columns: the severities and the mean over
    them (the clean row has only its mean).
    """
    metric = metric or results["metric"]
    severities = [str(s) for s in results.get("severities") or sorted({s for v in results["corruptions"].values() for s in v}, key=int)]
    def row(cells) -> str:
        return "| " + " | ".join(cells) + " |"

    lines = [row([METRIC_LABELS.get(metric, metric)] + [f"severity {s}" for s in severities] + ["mean"])]
    lines.append("|" + "---|" * (len(severities) + 2))
    lines.append(row(["clean"] + ["–"] * len(severities) + [_format(results["clean"].get(metric), metric)]))
    columns: dict[str, list[float]] = {s: [] for s in severities}
    for name, by_severity in results["corruptions"].items():
        values = [by_severity.get(s, {}).get(metric) for s in severities]
        for s, value in zip(severities, values):
            if value is not None:
                columns[s].append(value)
        present = [v for v in values if v is not None]
        row_mean = sum(present) / len(present) if present else None
        lines.append(row([name] + [_format(v, metric) for v in values] + [_format(row_mean, metric)]))
    if results["corruptions"]:
        means = [sum(columns[s]) / len(columns[s]) if columns[s] else None for s in severities]
        overall = results.get("mean_corrupted", {}).get(metric)
        lines.append(row(["**mean (corrupted)**"] + [_format(v, metric) for v in means] + [_format(overall, metric)]))
        identity = results.get("identity")
        if identity and identity.get("corruptions"):  # restoration: the degraded input itself, the floor
            by_severity = [[entry[s][metric] for entry in identity["corruptions"].values() if s in entry] for s in severities]
            means = [sum(values) / len(values) if values else None for values in by_severity]
            overall = identity.get("mean_corrupted", {}).get(metric)
            lines.append(row(["*identity (degraded input), mean*"] + [_format(v, metric) for v in means]
                             + [_format(overall, metric)]))
    return "\n".join(lines) + "\n"


def _markdown_document(results: dict, title: str | None) -> str:
    parts = [f"# {title or 'Evaluation under corruptions'}", ""]
    parts.append(
        f"{results['num_images']} images, task {results['task']}, seed {results['seed']}; "
        f"{len(results['corruptions'])} corruptions at severities {', '.join(str(s) for s in results.get('severities', []))}."
    )
    parts += ["", f"## {METRIC_LABELS.get(results['metric'], results['metric'])}", "", markdown_table(results)]
    secondary = results.get("secondary_metric")
    if secondary:
        parts += [f"## {METRIC_LABELS.get(secondary, secondary)}", "", markdown_table(results, secondary)]
    routing = routing_table(results)
    if routing:
        parts += ["## Mean routing weight per expert (receptive field)", "", routing]
    return "\n".join(parts)


def routing_table(results: dict) -> str | None:
    """A Markdown table of a routed QuARF model's mean routing weight per expert (columns, by
    receptive field) for clean and for each corruption at each severity (rows); None for a model
    without routing."""
    if not (results.get("experts") and "routing" in results["clean"]):
        return None
    experts = results["experts"]
    lines = ["| condition | " + " | ".join(f"RF {rf}" for rf in experts) + " |", "|" + "---|" * (len(experts) + 1)]
    rows = [("clean", results["clean"])] + [
        (f"{name} s{s}", entry) for name, by_severity in results["corruptions"].items() for s, entry in by_severity.items()
    ]
    for label, entry in rows:
        lines.append(f"| {label} | " + " | ".join(f"{w:.3f}" for w in entry["routing"]) + " |")
    return "\n".join(lines) + "\n"


def _save_figure(figure, path: str) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100, bbox_inches="tight")


def _metric_figure(results: dict):
    from matplotlib.figure import Figure

    metric = results["metric"]
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot(1, 1, 1)
    for position, (name, by_severity) in enumerate(results["corruptions"].items()):
        severities = sorted(by_severity, key=int)
        axes.plot(
            [int(s) for s in severities], [by_severity[s][metric] for s in severities], label=name,
            # the default cycle has 10 colours: vary line and marker so every corruption stays distinct
            color=f"C{position % 10}", linestyle=LINESTYLES[position // 10 % len(LINESTYLES)],
            marker=MARKERS[position // 10 % len(MARKERS)],
        )
    clean = results["clean"].get(metric)
    if clean is not None and math.isfinite(clean):
        axes.axhline(clean, color="black", linestyle="--", label="clean")
    axes.set_xlabel("severity")
    axes.set_ylabel(METRIC_LABELS.get(metric, metric))
    axes.set_xticks(results.get("severities") or [1, 2, 3, 4, 5])
    axes.set_title(f"{METRIC_LABELS.get(metric, metric)} vs severity")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return figure


def _routing_figure(results: dict):
    from matplotlib.figure import Figure

    experts = results["experts"]
    names = list(results["corruptions"]) or ["clean"]
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(3.2 * columns + 1.5, 2.8 * rows), layout="constrained")
    clean = results["clean"]["routing"]
    for position, name in enumerate(names, start=1):
        axes = figure.add_subplot(rows, columns, position)
        by_severity = results["corruptions"].get(name, {})
        severities = sorted(by_severity, key=int)
        xs = [0] + [int(s) for s in severities]
        for e, rf in enumerate(experts):
            ys = [clean[e]] + [by_severity[s]["routing"][e] for s in severities]
            axes.plot(xs, ys, marker="o", label=f"RF {rf}")
        axes.set_title(name, fontsize="medium")
        axes.set_xticks(xs, ["clean"] + [str(x) for x in xs[1:]])
        axes.set_ylim(0, 1)
        axes.grid(alpha=0.3)
        if (position - 1) % columns == 0:
            axes.set_ylabel("mean routing weight")
        if position > len(names) - columns:
            axes.set_xlabel("severity")
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right center", title="expert (RF)")
    figure.suptitle("QuARF routing: mean weight per expert vs severity")
    return figure


def write_report(results: dict, out_dir, title: str | None = None) -> dict:
    """Write ``results.json``, ``results.md``, ``metric_vs_severity.png`` and (QuARF models)
    ``routing_vs_severity.png`` into ``out_dir`` (created if missing). Returns {kind: path}."""
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FileExistsError(f"out_dir: {out_dir!r} exists and is not a folder")
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        "json": os.path.join(out_dir, "results.json"),
        "markdown": os.path.join(out_dir, "results.md"),
        "metric_plot": os.path.join(out_dir, "metric_vs_severity.png"),
    }
    write_text_atomic(paths["json"], json.dumps(_json_safe(results), indent=2, allow_nan=False) + "\n")
    write_text_atomic(paths["markdown"], _markdown_document(results, title))
    _save_figure(_metric_figure(results), paths["metric_plot"])
    if results.get("experts") and "routing" in results.get("clean", {}):
        paths["routing_plot"] = os.path.join(out_dir, "routing_vs_severity.png")
        _save_figure(_routing_figure(results), paths["routing_plot"])
    return paths


__all__ = ["write_report", "markdown_table", "routing_table"]
