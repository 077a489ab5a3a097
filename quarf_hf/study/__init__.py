"""The paper's comparison as a protocol: base networks, arms fine-tuned from them, controls and
diagnostics, a regime gate, a declared power, separate development and test images.

``quarf-hf study CONFIG`` (:mod:`quarf_hf.commands.study`) wraps it. Not shipped to the Hub.
"""

from .config import StudyConfig, corruption_family, load_study_config
from .power import paired_power, seeds_needed
from .report import build_report, write_study_report
from .runner import StudyAborted, regime_gate, run_study

__all__ = ["StudyConfig", "load_study_config", "corruption_family", "run_study", "StudyAborted", "build_report",
           "write_study_report", "regime_gate", "paired_power", "seeds_needed"]
