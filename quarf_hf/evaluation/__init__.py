"""Robustness evaluation: metrics on clean data and on every corruption x severity.

Not shipped to the Hub. ``quarf-hf evaluate`` (:mod:`quarf_hf.commands.evaluate`) wraps it.
"""

from .metrics import RestorationMeter, SegmentationMeter
from .pixels import model_pixel_normalisation
from .report import markdown_table, routing_table, write_report
from .runner import evaluate_model

__all__ = [
    "evaluate_model",
    "write_report",
    "markdown_table",
    "routing_table",
    "SegmentationMeter",
    "RestorationMeter",
    "model_pixel_normalisation",
]
