"""The studies' results as run, in one place (``results.json`` next to this file): the demo's
printed reading and the tests that keep docs/study.md and the README in line read them here."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS_FILE = Path(__file__).with_name("results.json")


def study_results() -> dict:
    """``{task: {"config", "what", "seeds", "unit", "effect", "comparisons": [...]}}`` of the studies run."""
    return json.loads(RESULTS_FILE.read_text())


def results_sentence(task: str) -> str:
    """What held over seeds in ``task``'s study, with each comparison's mean, interval and reading."""
    study = study_results()[task]
    parts = [f"{c['name']} {c['mean']:+.3f} {study['unit']}, 95% interval [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}], "
             f"{c['reading']}" for c in study["comparisons"]]
    return (f"What held over {study['seeds']} seeds in the study (quarf-hf study {study['config']}: {study['what']}): "
            + "; ".join(parts) + ".")


__all__ = ["study_results", "results_sentence", "RESULTS_FILE"]
