"""Public classes and configs carry transformers-style docstrings whose examples run.

For every class exported from quarf_hf/__init__.py: the docstring has an ``Args:`` section with
types and an ``Example:`` section; the example's ```python block is run as a doctest and its
printed values must equal the ones written in the docstring.
"""

from __future__ import annotations

import doctest
import inspect
import re

import pytest

import quarf_hf

CLASSES = [name for name in quarf_hf.__all__ if inspect.isclass(getattr(quarf_hf, name))]
FENCE = re.compile(r"```python\n(.*?)```", re.S)


def test_every_public_class_is_checked():
    assert set(CLASSES) >= {"QuARF", "QuarfConfig", "QuarfSegformerConfig", "QuarfSegformerModel",
                            "QuarfSegformerForSemanticSegmentation", "QuarfRestorationConfig",
                            "QuarfRestorationModel", "ContriqueConfig", "ContriqueModel", "BrisqueFeatures"}


@pytest.mark.parametrize("name", CLASSES)
def test_docstring_has_typed_args_and_a_running_example(name):
    cls = getattr(quarf_hf, name)
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    assert "Args:" in doc and "Example:" in doc, f"{name}: docstring lacks Args: or Example:"
    args = doc.split("Args:", 1)[1]
    assert re.search(r"^\s+\w+ \(\[?`[^`]+`", args, re.M), f"{name}: Args entries need a type, as `name (`type`, ...)`"
    blocks = FENCE.findall(doc)
    assert blocks, f"{name}: the example needs a ```python block"
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for block in blocks:
        test = parser.get_doctest(block, {}, f"{name}.__doc__", None, 0)
        result = runner.run(test, out=lambda text: pytest.fail(f"{name} example:\n{text}"))
        assert result.attempted > 0


def test_quarf_documents_its_three_ways_of_taking_settings():
    doc = quarf_hf.QuARF.__doc__
    for phrase in ("positional", "config=", "keywords", "replaces"):
        assert phrase in doc
