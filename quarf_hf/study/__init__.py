"""The paper's comparison as a protocol: arms x seeds, disjoint kinds, paired statistics.

``quarf-hf study CONFIG`` (:mod:`quarf_hf.commands.study`) wraps it. Not shipped to the Hub.
"""

from .config import StudyConfig, corruption_family, load_study_config
from .report import build_report, write_study_report
from .runner import StudyAborted, run_study

__all__ = ["StudyConfig", "load_study_config", "corruption_family", "run_study", "StudyAborted", "build_report",
           "write_study_report"]
