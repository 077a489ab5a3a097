"""The page's plots: the routing of one image as a table that ``gr.BarPlot`` draws in the browser,
and the severity sweep drawn with matplotlib's object API (no pyplot: thread-safe under the queue's
concurrency) as an (H, W, 3) uint8 array for ``gr.Image``."""

from __future__ import annotations

import numpy as np

EXPERT_COLOURS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _to_array(figure) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def routing_frame(weights: np.ndarray, labels: list[str]):
    """Routing as a table for ``gr.BarPlot`` (drawn in the browser, stacked by expert): one row per
    (channel group, expert), plus the groups' mean.

    ``weights``: (groups, experts), each row summing to 1 (soft routing) or one-hot (hard).
    """
    import pandas as pd

    rows = np.concatenate([weights, weights.mean(0, keepdims=True)], axis=0)
    names = group_names(weights.shape[0])
    return pd.DataFrame([{"channel group": names[g], "expert": labels[e], "weight": float(rows[g, e])}
                         for g in range(rows.shape[0]) for e in range(rows.shape[1])])


def group_names(groups: int) -> list[str]:
    return [f"g{g + 1}" for g in range(groups)] + ["mean"]


def sweep_plot(severities: list[int], routing, labels: list[str], scores: dict[str, list[float]], corruption: str, *,
               score_label: str = "mIoU vs the clean image's prediction",
               score_title: str = "segmentation held against clean",
               score_limits: tuple[float, float] | None = (0, 1.02)) -> np.ndarray:
    """Left: mean routing weight per expert vs severity; right: each model's score vs severity.

    ``routing``: (severities, experts), or title -> (severities, experts) for several routing models
    (drawn solid, dashed, ...), or None (no routing model); ``scores``: title -> one value per
    severity (mIoU against the clean prediction by default; ``score_label``, ``score_title`` and
    ``score_limits`` (None: automatic) name another, such as PSNR).
    """
    from matplotlib.figure import Figure

    if routing is not None and not isinstance(routing, dict):
        routing = {"": routing}
    routing = routing or None
    panels = (routing is not None) + bool(scores)
    figure = Figure(figsize=(5.2 * max(panels, 1), 3.6), dpi=100)
    axes = list(np.atleast_1d(figure.subplots(1, max(panels, 1))))
    if routing is not None:
        axis = axes.pop(0)
        for style, (title, weights) in zip(("-", "--", ":", "-."), routing.items()):
            for e in range(weights.shape[1]):
                name = f"{title}: {labels[e]}" if title and len(routing) > 1 else labels[e]
                axis.plot(severities, weights[:, e], style, marker="o", color=EXPERT_COLOURS[e % len(EXPERT_COLOURS)],
                          label=name)
        axis.set_ylim(0, 1)
        axis.set_xlabel(f"severity of {corruption} (0 = clean)")
        axis.set_ylabel("mean routing weight")
        axis.set_title(f"{' / '.join(t for t in routing if t) or 'QuARF'} routing per expert", fontsize=10)
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    if scores:
        axis = axes.pop(0)
        for title, values in scores.items():
            axis.plot(severities, values, marker="o", label=title)
        if score_limits is not None:
            axis.set_ylim(*score_limits)
        axis.set_xlabel(f"severity of {corruption} (0 = clean)")
        axis.set_ylabel(score_label)
        axis.set_title(score_title, fontsize=10)
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout(rect=(0, 0, 1, 0.93))  # room at the top for the page's label over the image
    return _to_array(figure)


__all__ = ["routing_frame", "group_names", "sweep_plot", "EXPERT_COLOURS"]
