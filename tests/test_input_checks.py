"""One pixel-input check (quarf_hf/models/input_checks.py) behind every model, quality extractor
and corruption: the same malformed batch gets the same message everywhere, naming the argument,
what was expected and what was found."""

import numpy as np
import pytest
import torch

from quarf_hf.degradations import degrade
from quarf_hf.models.brisque import BrisqueFeatures
from quarf_hf.models.configuration_contrique import ContriqueConfig
from quarf_hf.models.configuration_quarf_restoration import QuarfRestorationConfig
from quarf_hf.models.input_checks import check_pixel_range, check_pixel_values
from quarf_hf.models.modeling_contrique import ContriqueModel
from quarf_hf.models.modeling_quarf_restoration import QuarfRestorationModel


def message(call, *args) -> str:
    with pytest.raises((TypeError, ValueError)) as caught:
        call(*args)
    return str(caught.value)


@pytest.mark.parametrize(
    "bad, error, fragments",
    [
        (np.zeros((1, 3, 64, 64), np.float32), TypeError, ["x:", "torch.Tensor", "ndarray"]),
        (torch.zeros(3, 64, 64), ValueError, ["x:", "4-D", "(3, 64, 64)"]),
        (torch.zeros(1, 2, 64, 64), ValueError, ["x:", "3 channels", "(1, 2, 64, 64)"]),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, ["x:", "floating", "torch.uint8"]),
        (torch.zeros(1, 3, 10, 64), ValueError, ["x:", "at least 14x14", "(1, 3, 10, 64)"]),
        (torch.zeros(0, 3, 64, 64), ValueError, ["x:", "B >= 1", "(0, 3, 64, 64)"]),
    ],
)
def test_structural_errors_name_argument_expected_and_found(bad, error, fragments):
    with pytest.raises(error) as caught:
        check_pixel_values(bad, name="x", min_size=14, min_batch=1)
    for fragment in fragments:
        assert fragment in str(caught.value), (fragment, str(caught.value))


def test_value_errors_and_channels_last_input():
    with pytest.raises(ValueError, match=r"x: expected values in \[0, 1\], found min -0.5, max 0.5 \(hint\)"):
        check_pixel_range(torch.full((1, 3, 4, 4), -0.5).index_fill_(3, torch.tensor([0]), 0.5), name="x", hint=" (hint)")
    with pytest.raises(ValueError, match="x: expected finite values.*NaN or inf"):
        check_pixel_range(torch.full((1, 3, 4, 4), float("nan")), name="x")
    check_pixel_range(torch.rand(2, 3, 8, 8).to(memory_format=torch.channels_last))  # in range: no error
    check_pixel_range(torch.full((1, 3, 4, 4), 1.0005))  # within the default tolerance


def test_same_mistake_same_message_across_the_package():
    """A 2-channel batch: CONTRIQUE, the restoration model and degrade word it identically (but for
    the argument's name); BRISQUE, which also takes grey images, names the channels it accepts."""
    bad = torch.rand(1, 2, 64, 64)
    contrique = ContriqueModel(ContriqueConfig(hidden_sizes=[8, 8, 8, 8], embedding_size=8, depths=[1, 1, 1, 1]))
    restoration = QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[16, 32], norm_num_groups=8, quality="brisque"))
    texts = [message(contrique, bad), message(restoration, bad), message(degrade, bad, "fog", 2)]
    assert texts[0] == texts[1] == texts[2].replace("images:", "pixel_values:")
    assert texts[0] == "pixel_values: expected 3 channels (dim 1 of (batch, 3, height, width)), found shape (1, 2, 64, 64)"
    assert "1 or 3 channels" in message(BrisqueFeatures(), bad)
