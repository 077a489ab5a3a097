"""The page's two plots, drawn with matplotlib's object API (no pyplot: thread-safe under the
queue's concurrency) and returned as (H, W, 3) uint8 arrays for ``gr.Image``."""

from __future__ import annotations

import numpy as np

EXPERT_COLOURS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _to_array(figure) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def routing_chart(weights: np.ndarray, labels: list[str], title: str) -> np.ndarray:
    """Stacked bars: one bar per channel group (and their mean), the weight of each expert.

    ``weights``: (groups, experts), each row summing to 1 (soft routing) or one-hot (hard).
    """
    from matplotlib.figure import Figure

    groups, experts = weights.shape
    rows = np.concatenate([weights, weights.mean(0, keepdims=True)], axis=0)
    names = [f"g{g + 1}" for g in range(groups)] + ["mean"]
    figure = Figure(figsize=(6.4, 3.4), dpi=100)
    axis = figure.subplots()
    bottom = np.zeros(len(rows))
    for e in range(experts):
        axis.bar(names, rows[:, e], bottom=bottom, color=EXPERT_COLOURS[e % len(EXPERT_COLOURS)], label=labels[e],
                 edgecolor="white", linewidth=0.5)
        bottom += rows[:, e]
    axis.set_ylim(0, max(1.0, float(bottom.max())) * 1.02)
    axis.set_ylabel("routing weight")
    axis.set_xlabel("channel group")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="expert", title_fontsize=8)
    figure.tight_layout()
    return _to_array(figure)


def sweep_plot(severities: list[int], routing: np.ndarray | None, labels: list[str], miou: dict[str, list[float]],
               corruption: str) -> np.ndarray:
    """Left: mean routing weight per expert vs severity; right: each model's mIoU against its clean prediction.

    ``routing``: (severities, experts) or None (no QuARF model); ``miou``: title -> one value per severity.
    """
    from matplotlib.figure import Figure

    panels = (routing is not None) + bool(miou)
    figure = Figure(figsize=(5.2 * max(panels, 1), 3.6), dpi=100)
    axes = list(np.atleast_1d(figure.subplots(1, max(panels, 1))))
    if routing is not None:
        axis = axes.pop(0)
        for e in range(routing.shape[1]):
            axis.plot(severities, routing[:, e], marker="o", color=EXPERT_COLOURS[e % len(EXPERT_COLOURS)], label=labels[e])
        axis.set_ylim(0, 1)
        axis.set_xlabel(f"severity of {corruption} (0 = clean)")
        axis.set_ylabel("mean routing weight")
        axis.set_title("QuARF routing per expert", fontsize=10)
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    if miou:
        axis = axes.pop(0)
        for title, values in miou.items():
            axis.plot(severities, values, marker="o", label=title)
        axis.set_ylim(0, 1.02)
        axis.set_xlabel(f"severity of {corruption} (0 = clean)")
        axis.set_ylabel("mIoU vs the clean image's prediction")
        axis.set_title("segmentation held against clean", fontsize=10)
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return _to_array(figure)


__all__ = ["routing_chart", "sweep_plot"]
