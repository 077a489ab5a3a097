"""One pixel-input check (quarf_hf/models/input_checks.py) behind every model, quality extractor
and corruption: the same malformed batch gets the same message everywhere, naming the argument,
what was expected and what was found."""

import numpy as np
import pytest
import torch

from quarf_hf.degradations import degrade
from quarf_hf.models.brisque import BrisqueFeatures
from quarf_hf.models.input_checks import PIXEL_SLACK, check_pixel_range, check_pixel_values, to_unit_range


def message(call, *args) -> str:
    """The message of the error ``call(*args)`` raises (a TypeError or ValueError)."""
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
    """The one pixel-range checker: its messages, written out by hand, with the one hint for each likely cause."""
    negative = torch.full((1, 3, 4, 4), -0.5).index_fill_(3, torch.tensor([0]), 0.5)
    assert message(lambda: check_pixel_range(negative, name="x")) == (
        "x: expected values in [0, 1], found min -0.5, max 0.5; negative values: normalised pixels? "
        "un-normalise them to [0, 1] first")
    with pytest.raises(ValueError, match=r"x: expected finite values in \[0, 1\], found NaN$"):
        check_pixel_range(torch.full((1, 3, 4, 4), float("nan")), name="x")
    infinite = torch.zeros(1, 3, 4, 4)
    infinite[0, 0, 0, 0], infinite[0, 1, 0, 0] = float("inf"), float("-inf")
    with pytest.raises(ValueError, match=r"x: expected finite values in \[0, 1\], found \+inf and -inf$"):
        check_pixel_range(infinite, name="x")
    eight_bit = torch.full((1, 3, 4, 4), 200.0).index_fill_(3, torch.tensor([0]), 0.0)
    assert message(lambda: check_pixel_range(eight_bit, name="x")) == (
        "x: expected values in [0, 1], found min 0, max 200; they look like 0-255 values: divide by 255")
    # A network's input un-normalised by the caller: the slack of noisy samples, the messages say so.
    assert message(lambda: check_pixel_range(torch.full((1, 3, 4, 4), 46.0), name="x", slack=PIXEL_SLACK,
                                             normalised=True)) == (
        "x: expected pixel values normalised with the model's image processor (its mean and std), found values "
        "that un-normalise to min 46, max 46, far outside [0, 1]; they look like 0-255 values: use the model's "
        "image processor, or divide by 255 first")
    assert "finite pixel values normalised" in message(
        lambda: check_pixel_range(torch.full((1, 3, 4, 4), float("nan")), slack=PIXEL_SLACK, normalised=True))
    assert check_pixel_range(torch.full((1, 3, 4, 4), 4.5), slack=PIXEL_SLACK) == (4.5, 4.5)
    assert check_pixel_range(torch.rand(2, 3, 8, 8).to(memory_format=torch.channels_last)) is not None  # in range
    check_pixel_range(torch.full((1, 3, 4, 4), 1.0005))  # within the default slack (half an 8-bit step)
    with pytest.raises(ValueError, match="max 1.003"):
        check_pixel_range(torch.full((1, 3, 4, 4), 1.003))  # beyond it


def test_the_pixel_rule():
    """to_unit_range against values computed by hand: integers of every width / 255, uint16 / 65535,
    floats within rounding clamped, everything else refused by name."""
    image = torch.tensor([[0, 51, 255]])
    for dtype in (torch.uint8, torch.int16, torch.int32, torch.int64):
        torch.testing.assert_close(to_unit_range(image.to(dtype)), torch.tensor([[0.0, 0.2, 1.0]]))
    torch.testing.assert_close(to_unit_range(torch.tensor([0, 65535]).to(torch.uint16)), torch.tensor([0.0, 1.0]))
    nudged = torch.tensor([-0.001, 0.5, 1.001])
    torch.testing.assert_close(to_unit_range(nudged), torch.tensor([0.0, 0.5, 1.0]))
    unchanged = torch.rand(5)
    assert to_unit_range(unchanged) is unchanged  # in range: no copy
    for bad, error, text in [
        (torch.tensor([0, 256]), ValueError, "x: expected integer pixels in 0-255, found values from 0 to 256"),
        (torch.tensor([-1, 3], dtype=torch.int32), ValueError, "x: expected integer pixels in 0-255, found values from -1 to 3"),
        (torch.tensor([0.0, 128.0]), ValueError, "x: expected values in [0, 1], found min 0, max 128; they look like 0-255 values: divide by 255"),
        (torch.tensor([float("nan"), float("inf")]), ValueError, "x: expected finite values in [0, 1], found NaN and +inf"),
        (torch.tensor([True]), TypeError, "x: expected RGB values in [0, 1] (floats) or 0-255 (integers), found dtype torch.bool"),
        (torch.ones(2, dtype=torch.complex64), TypeError, "x: expected real RGB values, found dtype torch.complex64"),
        ([0.5], TypeError, "x: expected a torch.Tensor, found list"),
    ]:
        with pytest.raises(error) as caught:
            to_unit_range(bad, name="x")
        assert str(caught.value) == text


def test_same_mistake_same_message_across_the_package(tiny_contrique, tiny_restoration):
    """A 2-channel batch: CONTRIQUE, the restoration model and degrade word it identically (but for
    the argument's name); BRISQUE, which also takes grey images, names the channels it accepts."""
    bad = torch.rand(1, 2, 64, 64)
    texts = [message(tiny_contrique, bad), message(tiny_restoration, bad), message(degrade, bad, "fog", 2)]
    assert texts[0] == texts[1] == texts[2].replace("images:", "pixel_values:")
    assert texts[0] == "pixel_values: expected 3 channels (dim 1 of (batch, 3, height, width)), found shape (1, 2, 64, 64)"
    assert "1 or 3 channels" in message(BrisqueFeatures(), bad)
