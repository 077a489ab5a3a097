"""The one rule for checks of values (quarf_hf/models/input_checks.value_checks) and its off switch.

A check of values (NaN, pixel range, label ids) reads a result back from the device, so one function
decides where it runs, for the models, the adapter, the extractors and the pixel rule alike; switched off
(``no_value_checks()`` or ``QUARF_VALUE_CHECKS=0``), no check passes over the values; by default a bad
pixel range is one line naming the argument.
"""

from __future__ import annotations

import ast
import contextlib
import re
from pathlib import Path

import pytest
import torch

import quarf_hf
import tiny_models
from quarf_hf import BrisqueFeatures, insert_quarf, no_value_checks
from quarf_hf.models import input_checks
from quarf_hf.models.checks import InputError
from quarf_hf.models.input_checks import VALUE_CHECKS_ENV, value_checks, value_checks_per_call

PACKAGE = Path(quarf_hf.__file__).resolve().parent
BAD_PIXELS = torch.full((1, 3, 32, 32), 200.0)  # 0-255 values where [0, 1] or normalised pixels are expected


def _network_with_adapter():
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1)).eval()
    insert_quarf(network, after="0", quality="brisque", num_groups=2)
    return network


# What each part gives for a batch: a model's forward, a network with an adapter, an extractor.
PARTS = {
    "model forward": lambda pixels: tiny_models.make_restoration()(pixel_values=pixels).reconstruction,
    "adapter": lambda pixels: _network_with_adapter()(pixels),
    "extractor": lambda pixels: BrisqueFeatures()(pixels),
}


@pytest.fixture
def passes_over_values(monkeypatch):
    """Counts the passes over pixel values (each one a host sync): every pixel check goes through _min_max."""
    calls = []
    original = input_checks._min_max
    monkeypatch.setattr(input_checks, "_min_max", lambda tensor: calls.append(1) or original(tensor))
    return calls


@pytest.mark.parametrize("part", sorted(PARTS))
def test_a_bad_pixel_range_is_one_line_by_default(part, passes_over_values):
    """By default (eager, inference) the 0-255 batch is refused in one line naming the argument and the hint."""
    with pytest.raises(InputError) as caught:
        PARTS[part](BAD_PIXELS)
    text = str(caught.value)
    assert "\n" not in text and "look like 0-255 values" in text and "max 200" in text, text
    if part != "adapter":  # the adapter names the network's argument as it finds it
        assert text.startswith("pixel_values: expected ")
    assert passes_over_values


@pytest.mark.parametrize("switch", ["no_value_checks()", f"{VALUE_CHECKS_ENV}=0"])
@pytest.mark.parametrize("part", sorted(PARTS))
def test_the_off_switch_turns_value_checks_off(part, switch, monkeypatch, passes_over_values):
    """Switched off, the same batch runs through without any pass over its values; the structural checks stay."""
    if switch.startswith(VALUE_CHECKS_ENV):
        monkeypatch.setenv(VALUE_CHECKS_ENV, "0")
        off = contextlib.nullcontext()
    else:
        off = no_value_checks()
    with off:
        out = PARTS[part](BAD_PIXELS)
        assert not value_checks()
        if part != "adapter":  # (the adapter's network, a plain CNN, takes unbatched images too)
            with pytest.raises(ValueError, match="4-D"):  # a check of the shape, not of the values: still on
                PARTS[part](BAD_PIXELS[0])
    assert out.shape[0] == 1 and not passes_over_values
    if switch == "no_value_checks()":
        assert value_checks(), "the switch is on again after the with block"
        with pytest.raises(InputError):
            PARTS[part](BAD_PIXELS)


def test_one_forward_decides_once_and_training_checks_the_first_forward_only():
    """A training forward's checks (the pixels, then the labels, in different functions) follow one decision:
    the first forward checks both, later ones neither; inference always checks."""
    model = tiny_models.make_restoration().train()
    good, bad_labels = torch.rand(1, 3, 32, 32), torch.full((1, 3, 32, 32), 2.0)
    with pytest.raises(InputError, match="labels: expected values in \\[0, 1\\], found min 2, max 2"):
        model(pixel_values=good, labels=bad_labels)  # the pixels were checked first, in the same forward
    assert model(pixel_values=good, labels=bad_labels).loss is not None  # the second training forward: no check
    with torch.no_grad(), pytest.raises(InputError, match="labels: expected values in"):
        model(pixel_values=good, labels=bad_labels)


class _Probe(torch.nn.Module):
    """Asks value_checks() inside its forward (once under no_grad) and around an inner probe's forward."""

    def __init__(self, inner: torch.nn.Module | None = None):
        super().__init__()
        self.inner = inner

    @value_checks_per_call
    def forward(self):
        with torch.no_grad():
            first = value_checks()
        inner = self.inner() if self.inner is not None else None
        return first, value_checks(), inner


def test_value_checks_per_call():
    """The decision of a decorated forward holds for everything asked inside it (also under no_grad, which does
    not make a training forward an inference one), a nested module's decision stays inside its forward, and
    outside any forward the answer is yes."""
    inner = _Probe()
    probe = _Probe(inner).train()
    inner.eval()
    assert probe() == (True, True, (True, True, None))
    assert probe() == (False, False, (True, True, None))
    assert probe.eval()() == (True, True, (True, True, None))
    assert value_checks()


def test_nothing_is_checked_while_tracing(monkeypatch):
    """While torch.compile / torch.export trace, the rule says no and the decorator adds nothing to the trace."""
    probe = _Probe().eval()
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert not value_checks() and not value_checks(probe)
    assert probe.forward() == (False, False, None)  # the decorated forward itself, as a trace runs it
    assert input_checks._current_call.get() is None


def _functions(tree):
    return [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _called_names(function) -> set[str]:
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            target = node.func
            names.add(target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))
    return names


def test_one_function_decides_value_checks():
    """Scans quarf_hf/: only input_checks.py asks whether torch.compile / torch.export trace to decide a check
    (the other places that ask do so for other reasons, named here), keeps the first-training-forward
    bookkeeping, or reads the off switch; no function takes a flag saying whether to check values; and every
    function that passes over pixel values (check_pixel_range, check_finite) asks value_checks first."""
    not_checks = {
        "models/adapter_calls.py": "the quality vector is kept on a stack while tracing; strict export runs a view of the extractor",
        "models/quarf.py": "no CPU tiling while tracing",
        "models/brisque.py": "the moment sums on one stacked buffer while tracing",
    }
    rule = "models/input_checks.py"
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        text = path.read_text(encoding="utf-8")
        if name == rule:
            continue
        if re.search(r"is_compiling|is_exporting", text):
            assert name in not_checks, f"{name} asks whether a trace is running: decide checks with value_checks"
        for private in ("_checked_a_training_batch", VALUE_CHECKS_ENV, "_switched_off", "_current_call"):
            assert private not in text, f"{name} uses the rule's own state {private!r}"
        for function in _functions(ast.parse(text)):
            arguments = function.args.args + function.args.kwonlyargs
            flags = {argument.arg for argument in arguments} & {"check", "checks", "check_values", "value_check"}
            assert not flags, f"{name}: {function.name} takes {flags}: ask value_checks() instead"
            called = _called_names(function)
            if called & {"check_pixel_range", "check_finite"}:
                assert "value_checks" in called, f"{name}: {function.name} passes over values without value_checks"
    assert set(not_checks) <= {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
