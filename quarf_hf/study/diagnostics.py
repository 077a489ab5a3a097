"""What the pilot runs say before any test seed: per (kind, severity) cell, which single expert is
best and by how much; what an oracle router gains over the static mixture; and the precondition
gate that stops a study whose regime gives routing nothing to choose.

Cells are the development conditions ``kind/severity``. Every number is over the pilot seeds
(development images), paired by seed: each seed trains every network from the same draw.

The precondition (``precondition: {margin, pick_gain}`` in the study config) passes when

(a) two cells have different best single experts, each ahead of the other's in its own cell by at
    least ``margin`` in every pilot seed, and picking the best expert per cell gains at least
    ``pick_gain`` (mean over cells and seeds) over the one expert best on average; and
(b) the oracle router beats the static mixture in every pilot seed.
"""

from __future__ import annotations

import numpy as np

from .power import t_interval


def cells(evaluation: dict, metric: str) -> dict:
    """``{"kind/severity": score}`` of one evaluation's degraded conditions."""
    return {f"{kind}/{severity}": float(m[metric]) for kind, by_severity in evaluation["corruptions"].items()
            for severity, m in by_severity.items()}


def _cell_array(evaluations: list[dict], metric: str, names: list[str]) -> np.ndarray:
    """(seeds, cells) scores."""
    return np.array([[cells(e, metric)[c] for c in names] for e in evaluations])


def single_experts(experts: dict, metric: str) -> dict:
    """Per cell: each expert's mean over seeds, its paired 95% interval against the expert best on
    average (``overall``), the best expert, and the gain of picking it over ``overall``.

    ``experts``: name -> one development evaluation per pilot seed (the same seeds for all)."""
    names = list(cells(next(iter(experts.values()))[0], metric))
    scores = {name: _cell_array(evaluations, metric, names) for name, evaluations in experts.items()}
    overall = max(scores, key=lambda n: scores[n].mean())
    table = {c: {} for c in names}
    for j, cell in enumerate(names):
        for name, s in scores.items():
            diffs = s[:, j] - scores[overall][:, j]
            table[cell][name] = {"mean": float(s[:, j].mean()), "minus_overall": float(diffs.mean()),
                                 "ci95": t_interval(diffs)}
    best = {c: max(table[c], key=lambda n: table[c][n]["mean"]) for c in names}
    # per seed: the mean over cells of (best-per-cell expert's score - overall's), best chosen on the mean
    picked = np.array([[scores[best[c]][k, j] - scores[overall][k, j] for j, c in enumerate(names)]
                       for k in range(len(scores[overall]))]).mean(1)
    return {"cells": names, "table": table, "best": best, "overall": overall,
            "scores": {n: v.tolist() for n, v in scores.items()},
            "pick_gain": float(picked.mean()), "pick_gain_ci95": t_interval(picked)}


def expert_contrast(single: dict) -> dict | None:
    """The two cells whose best experts differ with the largest margin that holds in every seed:
    ``{"cells", "experts", "margin"}`` (margin: the smaller of the two cells' worst-seed leads), or
    None when one expert is best in every cell."""
    scores = {n: np.asarray(v) for n, v in single["scores"].items()}
    best, found = single["best"], None
    for i, first in enumerate(single["cells"]):
        for j, second in enumerate(single["cells"]):
            a, b = best[first], best[second]
            if a == b:
                continue
            margin = float(min((scores[a][:, i] - scores[b][:, i]).min(), (scores[b][:, j] - scores[a][:, j]).min()))
            if found is None or margin > found["margin"]:
                found = {"cells": [first, second], "experts": [a, b], "margin": margin}
    return found


def oracle_gain(oracle: list[dict], static: list[dict], metric: str) -> dict:
    """The oracle router minus the static mixture on development, per seed (mean over cells), with
    its interval, the seeds it wins, and its mean per cell."""
    names = list(cells(oracle[0], metric))
    diffs = _cell_array(oracle, metric, names) - _cell_array(static, metric, names)
    per_seed = diffs.mean(1)
    return {"mean": float(per_seed.mean()), "ci95": t_interval(per_seed), "per_seed": [float(v) for v in per_seed],
            "won": int((per_seed > 0).sum()), "n": len(per_seed),
            "cells": {c: float(diffs[:, j].mean()) for j, c in enumerate(names)}}


def precondition(single: dict, oracle: dict, margin: float, pick_gain: float) -> dict:
    """The precondition gate (see the module doc) from :func:`single_experts` and :func:`oracle_gain`."""
    contrast = expert_contrast(single)
    checks = {
        "best expert differs between cells in every seed": contrast is not None and contrast["margin"] >= margin,
        "picking per cell gains the declared amount": single["pick_gain"] >= pick_gain,
        "oracle beats static in every seed": oracle["won"] == oracle["n"],
    }
    reasons = []
    if contrast is None:
        reasons.append(f"one expert ({single['overall']}) is best in every cell")
    elif contrast["margin"] < margin:
        reasons.append(f"the clearest contrast ({contrast['experts'][0]} in {contrast['cells'][0]}, "
                       f"{contrast['experts'][1]} in {contrast['cells'][1]}) holds by {contrast['margin']:+.3f} in the "
                       f"worst seed, under the margin {margin:g}")
    if single["pick_gain"] < pick_gain:
        reasons.append(f"picking the best expert per cell gains {single['pick_gain']:+.3f} over {single['overall']}, "
                       f"under {pick_gain:g}")
    if oracle["won"] < oracle["n"]:
        reasons.append(f"the oracle beats static in {oracle['won']} of {oracle['n']} seeds "
                       f"(mean {oracle['mean']:+.3f})")
    return {"passed": all(checks.values()), "checks": checks, "contrast": contrast, "margin": margin,
            "pick_gain": pick_gain, "reason": "; ".join(reasons) or None}


__all__ = ["cells", "single_experts", "expert_contrast", "oracle_gain", "precondition"]
