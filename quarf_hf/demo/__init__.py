"""``quarf-hf demo``'s work: four arms trained alike, then compared.

- :mod:`.restoration` (the default): the four restoration arms of ``configs/restoration/`` on the
  built-in photos, compared on the held-out test photos under kinds neither the training nor the
  development evaluation uses; a table, a picture grid, QuARF's routing.
- :mod:`.segmentation` (``--task segmentation``): the four SegFormer arms of ``configs/`` on
  quarf-shapes.
- :mod:`.arms`: what both share: the configs folder, the time cap and :class:`DemoAborted`.

:mod:`quarf_hf.commands.demo` parses the command line and calls one of them.
"""

from .arms import DemoAborted, configs_dir, train_arms

__all__ = ["DemoAborted", "configs_dir", "train_arms"]
