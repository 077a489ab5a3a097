"""The Gradio Space: degrade a photo or an upload, watch QuARF restore (and segment) it next to a
plain model, and its routing adapt.

``spaces/quarf-demo/app.py`` (the Space) and ``quarf-hf space`` (locally) both serve
:func:`build_app`. Models come from ``quarf-hf space --restoration/--plain-restoration/--model/
--baseline``, the environment variables ``RESTORATION_MODEL`` / ``PLAIN_RESTORATION_MODEL`` /
``QUARF_MODEL`` / ``BASELINE_MODEL`` or the folders ``quarf-hf demo`` writes (see
:mod:`quarf_hf.space.models`). What the page computes is in :mod:`quarf_hf.space.inference`
(no gradio needed). Not shipped to the Hub; the page needs the ``space`` extra (gradio), imported
only when the page is built.
"""

from .models import SpaceModels, load_space_models

__all__ = ["build_app", "launch", "load_space_models", "SpaceModels"]


def __getattr__(name):
    if name in ("build_app", "launch"):  # gradio is imported only here
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
