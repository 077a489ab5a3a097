"""The Gradio Space: degrade an image and watch QuARF's segmentation and routing adapt.

``spaces/quarf-demo/app.py`` (the Space) and ``quarf-hf space`` (locally) both serve
:func:`build_app`. Models come from ``quarf-hf space --model/--baseline/--restoration``, the
environment variables ``QUARF_MODEL`` / ``BASELINE_MODEL`` / ``RESTORATION_MODEL`` or the folders
``quarf-hf demo`` writes (see :mod:`quarf_hf.space.models`). Not shipped to the Hub; needs the
``space`` extra (gradio), imported only when the page is built.
"""

from .models import SpaceModels, load_space_models

__all__ = ["build_app", "launch", "load_space_models", "SpaceModels"]


def __getattr__(name):
    if name in ("build_app", "launch"):  # gradio is imported only here
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
