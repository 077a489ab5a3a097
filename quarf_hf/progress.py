"""The one progress bar of the package's long loops: live on a terminal, sparse in a log file.

A tqdm bar redraws its line on every refresh, and ``set_postfix`` refreshes on each call. On a
terminal each redraw overwrites the last; in a log file (``quarf-hf demo > demo.log``, a study's
worker logs) every one of them stays. :func:`progress_bar` therefore writes to anything that is
not a terminal (nor a notebook widget) at most once every :data:`LOG_INTERVAL` seconds, plus the
first and the last state. Not shipped to the Hub: no model code imports it.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm
from tqdm.autonotebook import tqdm as notebook_or_std_tqdm
from tqdm.std import tqdm as std_tqdm

LOG_INTERVAL = 30.0
"""Seconds between two writes of a progress bar whose stream is not a terminal."""


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (a stream without ``isatty``, or closed, is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class ProgressBar(tqdm):
    """A tqdm bar whose postfix changes wait for its next write when it is not ``live``."""

    def __init__(self, iterable=None, *, live: bool, **kwargs):
        self.live = live
        super().__init__(iterable, **kwargs)

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        super().set_postfix(ordered_dict, refresh=refresh and self.live, **kwargs)

    def set_postfix_str(self, s="", refresh=True):
        super().set_postfix_str(s, refresh=refresh and self.live)


def progress_bar(iterable=None, **kwargs) -> ProgressBar:
    """A ``tqdm.auto`` progress bar (same arguments) that suits the stream it writes to.

    On a terminal or in a notebook it is tqdm with the arguments given. Written to anything else
    (``file``, by default ``sys.stderr``, redirected to a file or a pipe), it refreshes at most
    every :data:`LOG_INTERVAL` seconds, whatever ``mininterval`` says, and ``set_postfix`` /
    ``set_postfix_str`` no longer force a refresh: a long run adds a few lines to its log, not
    one per step.
    """
    in_notebook = notebook_or_std_tqdm is not std_tqdm  # tqdm.auto's own test: a widget, not a stream
    live = in_notebook or is_terminal(kwargs.get("file") or sys.stderr)
    if not live:
        kwargs.update(mininterval=LOG_INTERVAL, maxinterval=LOG_INTERVAL)
    return ProgressBar(iterable, live=live, **kwargs)
