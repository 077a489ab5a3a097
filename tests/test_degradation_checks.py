"""Corruption names and severities are checked in one place (quarf_hf/degradations/registry.py):
every entry point reports the same mistake the same way, under its own argument name."""

import pytest
import torch

from quarf_hf.degradations import CORRUPTIONS, RandomDegradation, degrade
from quarf_hf.degradations.registry import (
    check_corruptions,
    check_degradation,
    check_severities,
    parse_corruptions,
    parse_severities,
)
from quarf_hf.evaluation import evaluate_model
from quarf_hf.training import TrainConfig

TRAIN = {"data": {"train": {"type": "quarf-shapes"}}}


def error_text(call) -> str:
    with pytest.raises((TypeError, ValueError)) as caught:
        call()
    return str(caught.value)


def test_a_misspelt_corruption_reads_the_same_from_every_entry_point():
    texts = {
        "name": error_text(lambda: degrade(torch.rand(1, 3, 8, 8), "fgo", 2)),
        "names": error_text(lambda: RandomDegradation(names=["fog", "fgo"])),
        "corruptions": error_text(lambda: evaluate_model(None, [0], corruptions=["fgo"], progress=False)),
        "evaluation.corruptions": error_text(lambda: TrainConfig.from_dict({**TRAIN, "evaluation": {"corruptions": ["fgo"]}})),
        "--corruptions": error_text(lambda: parse_corruptions("fog,fgo")),
        "--corruption": error_text(lambda: check_degradation("fgo", None, arguments=("--corruption", "--severity"))),
    }
    for argument, text in texts.items():
        assert text == f"{argument}: unknown corruption 'fgo'; known: {', '.join(CORRUPTIONS)}"


def test_a_bad_severity_reads_the_same_from_every_entry_point():
    texts = {
        "severity": error_text(lambda: degrade(torch.rand(1, 3, 8, 8), "fog", 7)),
        "severities": error_text(lambda: evaluate_model(None, [0], severities=[1, 7], progress=False)),
        "evaluation.severities": error_text(lambda: TrainConfig.from_dict({**TRAIN, "evaluation": {"severities": [7]}})),
        "--severities": error_text(lambda: parse_severities("2,7")),
        "--severity": error_text(lambda: check_degradation("fog", 7, arguments=("--corruption", "--severity"))),
    }
    for argument, text in texts.items():
        assert text == f"{argument}: expected an integer from 1 to 5, found 7"


def test_accepted_forms():
    assert check_corruptions(None) == check_corruptions("all") == list(CORRUPTIONS)
    assert check_corruptions(["fog", "rain", "fog"]) == ["fog", "rain"]  # duplicates dropped, order kept
    assert parse_corruptions("all") == sorted(CORRUPTIONS)  # the command's order: by name
    assert check_severities(3) == [3] and check_severities([5, 1, 5]) == [1, 5]
    assert parse_severities("1-2,5") == [1, 2, 5] and parse_severities("4") == [4]
    assert check_degradation(None, None) == (None, None) and check_degradation("fog", None) == ("fog", 3)
    with pytest.raises(ValueError, match="severity: only meaningful with corruption"):
        check_degradation(None, 2)
    with pytest.raises(ValueError, match="corruptions: expected at least one corruption name"):
        check_corruptions([])
    assert check_corruptions([], allow_empty=True) == []
    with pytest.raises(ValueError, match="augmentation.severities: expected an integer from 1 to 5, found '3'"):
        TrainConfig.from_dict({**TRAIN, "augmentation": {"severities": ["3"]}})  # config errors stay ValueErrors
